"""scikit-learn stays optional: `import flashkmeans` neither needs nor imports
it, and flashkmeans.KMeans says what is missing when it is absent. Each test
runs a fresh interpreter, so what this session imported does not count."""

import subprocess
import sys

import pytest


# run first in a script, this makes `import sklearn` fail as if it were not installed
WITHOUT_SKLEARN = "import sys\nsys.modules['sklearn'] = None\n"


def output_of(script):
    """What `script` prints, run by a fresh interpreter; it must succeed."""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_import_flashkmeans_does_not_import_sklearn():
    out = output_of(
        "import sys, flashkmeans\n"
        "flashkmeans.Kmeans, flashkmeans.batch_kmeans\n"
        "assert 'KMeans' in dir(flashkmeans)\n"
        "print(sorted(m for m, mod in sys.modules.items()\n"
        "             if mod is not None and m.split('.')[0] == 'sklearn'))\n"
    )
    assert out.strip() == "[]"


def test_import_star_does_not_need_sklearn():
    out = output_of(
        WITHOUT_SKLEARN +
        "from flashkmeans import *\n"
        "print(Kmeans.__name__)\n"
    )
    assert out.strip() == "Kmeans"


def test_flashkmeans_works_without_sklearn_and_KMeans_names_what_is_missing():
    out = output_of(
        WITHOUT_SKLEARN +
        "import numpy as np, flashkmeans\n"
        "km = flashkmeans.Kmeans(4, 3, niter=2, backend='cpu')\n"
        "km.train(np.random.RandomState(0).rand(100, 4).astype(np.float32))\n"
        "try:\n"
        "    from flashkmeans import KMeans\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
    )
    assert "ImportError: flashkmeans.KMeans needs scikit-learn" in out


def test_KMeans_is_the_estimator_when_sklearn_is_installed():
    pytest.importorskip("sklearn")
    import flashkmeans
    from flashkmeans.sklearn_kmeans import KMeans

    assert flashkmeans.KMeans is KMeans
    with pytest.raises(AttributeError):
        flashkmeans.NoSuchName  # noqa: B018
