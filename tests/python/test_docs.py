"""help() shows every parameter: the public docstrings are numpydoc, and the
sections of what pydoc prints (a title line over a line of dashes as long)
name every keyword, every signature parameter and every fitted attribute.
A name only mentioned in the prose, or in another docstring, does not count."""

import inspect
import pydoc
import re

import pytest

import flashkmeans
from flashkmeans.kmeans import (OPTION_NAMES, ClusteringParameters,
                               ProgressiveDimClusteringParameters)

# what pydoc prints after a class's docstring (the inherited and own members)
_MEMBER_LISTINGS = re.compile(
    r"^(Method resolution order|Methods defined here|Methods inherited from|Class methods|"
    r"Static methods|Readonly properties|Data descriptors|Data and other attributes)")
# a numpydoc entry: "name : type", "a, b : type" or a bare "name" ("**kwargs" too)
_ENTRY = re.compile(r"^(\**\w+(?:\s*,\s*\**\w+)*)\s*(?::.*)?$")


def docstring_lines(text, first_line):
    """The lines of a docstring in pydoc's text, from its first line on, with
    pydoc's " |  " class margin removed and the docstring's indentation taken
    off; the member listings that follow a class's docstring are cut."""
    lines = [re.sub(r"^ \|  ?", "", line) if line.startswith(" |") else line
             for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.strip() == first_line)
    indent = len(lines[start]) - len(lines[start].lstrip())
    out = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        line = line[indent:]
        if _MEMBER_LISTINGS.match(line):
            break
        out.append(line.rstrip())
    return out


def sections(lines):
    """{title: [entry names]} of numpydoc sections: a title line followed by a
    line of dashes of its length, then entries at the title's indentation
    (descriptions are indented below them) up to the next title."""
    out = {}
    title = None
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if (line and not line[0].isspace() and re.fullmatch(r"-+", nxt)
                and len(nxt) == len(line)):
            title = line
            out.setdefault(title, [])
            continue
        if title is None or not line or line[0].isspace() or re.fullmatch(r"-+", line):
            continue
        m = _ENTRY.match(line)
        if m:
            out[title].extend(name.strip().lstrip("*") for name in m.group(1).split(","))
    return out


def help_sections(obj):
    """The numpydoc sections of obj's own docstring, as help(obj) prints it."""
    text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    first_line = inspect.getdoc(obj).splitlines()[0].strip()
    return sections(docstring_lines(text, first_line))


def signature_names(function):
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.name not in ("self", "cls")]


def test_the_section_parser_counts_only_entries_under_a_title():
    doc = ["Summary naming alpha in the prose.", "", "Parameters", "----------",
           "beta : int", "    Mentions gamma : not an entry.", "delta, epsilon", "",
           "Notes", "-----", "zeta : here, but in Notes", "Attributes", "---",
           "eta : int"]
    assert sections(doc) == {"Parameters": ["beta", "delta", "epsilon"],
                             "Notes": ["zeta", "Attributes", "eta"]}


def test_help_of_Kmeans_names_every_keyword_under_parameters():
    params = help_sections(flashkmeans.Kmeans).get("Parameters", [])
    expected = (["d", "k"] + list(ClusteringParameters._FIELDS)
                + list(ProgressiveDimClusteringParameters._FIELDS) + ["gpu", "comm"]
                + list(OPTION_NAMES))
    missing = [name for name in dict.fromkeys(expected) if name not in params]
    assert missing == []


def test_help_of_Kmeans_names_its_results_under_attributes():
    attributes = help_sections(flashkmeans.Kmeans).get("Attributes", [])
    for name in ("centroids", "obj", "iteration_stats", "index", "memory_plan"):
        assert name in attributes, name


def test_help_of_ClusteringParameters_names_every_field_under_attributes():
    attributes = help_sections(ClusteringParameters).get("Attributes", [])
    assert [n for n in ClusteringParameters._FIELDS if n not in attributes] == []


def test_help_of_KMeans_names_every_init_parameter_and_fitted_attribute():
    pytest.importorskip("sklearn")
    KMeans = flashkmeans.KMeans
    found = help_sections(KMeans)
    params = found.get("Parameters", [])
    assert [n for n in signature_names(KMeans.__init__) if n not in params] == []
    attributes = found.get("Attributes", [])
    for name in ("cluster_centers_", "labels_", "inertia_", "n_iter_", "n_features_in_"):
        assert name in attributes, name


@pytest.mark.parametrize("name", ["batch_kmeans", "train_ivf", "Kmeans.train", "Kmeans.assign",
                                  "Kmeans.reset", "ClusteringParameters.from_faiss"])
def test_help_of_a_function_names_every_parameter_under_parameters(name):
    obj = flashkmeans
    for part in name.split("."):
        obj = getattr(obj, part)
    params = help_sections(obj).get("Parameters", [])
    assert [n for n in signature_names(obj) if n not in params] == []


def test_help_of_BatchKMeansResult_names_its_fields_under_attributes():
    attributes = help_sections(flashkmeans.BatchKMeansResult).get("Attributes", [])
    for name in ("labels", "centroids", "objective", "history"):
        assert name in attributes, name


@pytest.mark.parametrize("name", ["cuda_compiled", "cuda_device_count", "cuda_available", "nccl_compiled",
                                  "cached_memory_bytes", "batch_kmeans", "train_ivf"])
def test_help_of_a_function_that_returns_has_a_returns_section(name):
    assert "Returns" in help_sections(getattr(flashkmeans, name))
