"""The public API is typed: py.typed, the extension's stubs (generated from
its signatures at build time) naming every function it has, and type hints
on every parameter and return of the public functions and methods, which
typing.get_type_hints resolves."""

import ast
import inspect
import pathlib
import typing

import pytest

import flashkmeans
from flashkmeans import _flashkmeans

PACKAGE = pathlib.Path(flashkmeans.__file__).resolve().parent


def public_callables():
    names = list(flashkmeans.__all__)
    if _has_sklearn():
        names.append("KMeans")
    for name in names:
        obj = getattr(flashkmeans, name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr == "__init__" or (not attr.startswith("_") and inspect.isfunction(member)):
                    yield f"{name}.{attr}", member
                elif isinstance(member, (property, classmethod)):
                    f = member.fget if isinstance(member, property) else member.__func__
                    yield f"{name}.{attr}", f
        elif callable(obj):
            yield name, obj


def _has_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name, function", list(public_callables()),
                         ids=[name for name, _ in public_callables()])
def test_every_public_parameter_and_return_is_annotated(name, function):
    hints = typing.get_type_hints(function)  # resolves every annotation
    params = [p for p in inspect.signature(function).parameters.values()
              if p.name not in ("self", "cls")]
    missing = [p.name for p in params if p.name not in hints]
    assert missing == [], f"{name}: parameters without a type: {missing}"
    assert "return" in hints, f"{name}: no return type"


def test_the_package_is_marked_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_the_extension_stubs_declare_every_function_it_has():
    stub = PACKAGE / "_flashkmeans.pyi"
    tree = ast.parse(stub.read_text())
    declared = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    functions = {name for name in dir(_flashkmeans)
                 if not name.startswith("_") and callable(getattr(_flashkmeans, name))}
    assert functions and declared == functions
    # and with the parameters of the real signatures
    train = next(node for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == "train_clustering")
    assert [a.arg for a in train.args.args][-1] == "tol"
