"""flashkmeans: exact Lloyd k-means, IO-aware, as a drop-in for faiss.Kmeans.

    from flashkmeans import Kmeans             # instead of: from faiss import Kmeans
    from flashkmeans import batch_kmeans       # B problems (B, n, d) at once
    from flashkmeans import train_ivf          # faiss IVF coarse quantizer training
    from flashkmeans import KMeans             # scikit-learn's KMeans estimator

numpy is the only requirement; faiss (faiss-cpu) is used when importable
(Kmeans.index is then a real faiss index, and train_ivf works), and
scikit-learn by flashkmeans.KMeans only, which imports it on first access.
"""

from . import _flashkmeans
from .batch import BatchKMeansResult, batch_kmeans
from .ivf import train_ivf
from .kmeans import ClusteringParameters, FlatIndex, Kmeans

__version__ = "0.1.0"

__all__ = [
    "Kmeans",
    "ClusteringParameters",
    "FlatIndex",
    "batch_kmeans",
    "BatchKMeansResult",
    "train_ivf",
    "cuda_available",
    "cuda_compiled",
    "cuda_device_count",
    "nccl_compiled",
    "empty_cache",
    "cached_memory_bytes",
    "__version__",
]


def __getattr__(name):
    # flashkmeans.KMeans imports scikit-learn, so it is loaded on first access
    # and `import flashkmeans` works without scikit-learn. It stays out of
    # __all__ for the same reason (`from flashkmeans import *` needs no sklearn).
    if name == "KMeans":
        from .sklearn_kmeans import KMeans

        globals()["KMeans"] = KMeans
        return KMeans
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"KMeans"})


def cuda_compiled() -> bool:
    """Whether this build of flashkmeans has the CUDA kernels.

    Returns
    -------
    bool
        True when the extension was compiled with CUDA.
    """
    return bool(_flashkmeans.cuda_compiled())


def cuda_device_count() -> int:
    """Number of CUDA devices flashkmeans can use.

    Returns
    -------
    int
        The visible CUDA devices; 0 without CUDA (or a build without it).
    """
    return int(_flashkmeans.cuda_device_count())


def nccl_compiled() -> bool:
    """Whether this build trains on several GPUs of one process.

    Returns
    -------
    bool
        True when the extension was built with NCCL, so that
        ``Kmeans(gpu=n > 1)`` and ``Kmeans(devices=[...])`` run one rank per
        GPU. The wheels are built without it (one GPU per process).
    """
    return bool(_flashkmeans.nccl_compiled())


def cuda_available() -> bool:
    """Whether backend='auto' runs on a GPU here.

    Returns
    -------
    bool
        True when the build has CUDA and a CUDA device is visible.
    """
    return cuda_compiled() and cuda_device_count() > 0


def empty_cache() -> None:
    """Give back the GPU memory flashkmeans keeps between calls.

    On CUDA, the device buffers of a finished call stay in a per-device
    memory pool, so the next call of the same shape allocates nothing; the
    pool holds at most what the largest call so far used and empties itself
    when an allocation would otherwise fail. Like torch.cuda.empty_cache().

    See Also
    --------
    cached_memory_bytes : what the pool holds.
    """
    _flashkmeans.empty_cache()


def cached_memory_bytes() -> int:
    """Memory flashkmeans keeps between calls (see :func:`empty_cache`).

    Returns
    -------
    int
        Bytes of GPU memory (and pinned host buffers) kept between calls.
    """
    return int(_flashkmeans.cached_memory_bytes())
