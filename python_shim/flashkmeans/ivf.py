"""flashkmeans.train_ivf: train a faiss IVF index with the coarse k-means run
by flashkmeans.

    index = faiss.index_factory(d, "OPQ16_64,IVF4096,PQ16")
    flashkmeans.train_ivf(index, xt)      # instead of index.train(xt)
    index.add(xb)

Only faiss's own Python API touches the index (no C++ object crosses between
the faiss wheel and flashkmeans): the pre-transforms are trained as
IndexPreTransform.train does, flashkmeans.Kmeans clusters the transformed
points with the IVF's own ClusteringParameters (`ivf.cp`) and metric, the
centroids fill the quantizer, and ivf.train() then finds a trained quantizer
and trains only the encoder (PQ, SQ, ...).
"""

from typing import Any

from . import _arrays
from ._typing import Points
from .kmeans import OPTION_NAMES, ClusteringParameters, Kmeans

__all__ = ["train_ivf"]


def _import_faiss():
    try:
        import faiss
    except ImportError as e:
        raise ImportError("flashkmeans.train_ivf needs faiss (pip install faiss-cpu)") from e
    return faiss


def _as_int(v):
    return ord(v) if isinstance(v, str) else int(v)  # SWIG maps `char` to str


def train_ivf(index: Any, x: Points, **kwargs: Any) -> Kmeans:
    """Trains a faiss IVF index, its coarse k-means run by flashkmeans.

    The pre-transforms are trained as IndexPreTransform.train does, the
    transformed points are clustered with the IVF's own ClusteringParameters
    (``ivf.cp``) and metric, the centroids fill the quantizer, and the IVF's
    own train() then trains only the encoder (PQ, SQ, ...).

    Parameters
    ----------
    index : faiss.Index
        An untrained faiss IndexIVF*, or an IndexPreTransform around one
        (e.g. from index_factory("PCA64,IVF1024,PQ16")).
    x : array of shape (n, d)
        Training points (numpy, or a torch / cupy array), brought to the
        host as float32, where faiss trains.
    **kwargs
        ClusteringParameters fields overriding the IVF's ``cp`` (niter,
        seed, max_points_per_centroid, ...) and flashkmeans options
        (backend, device, dtype, precision, init, ...). verbose defaults to
        index.verbose or cp.verbose.

    Returns
    -------
    Kmeans
        The flashkmeans.Kmeans that trained the quantizer.

    Raises
    ------
    ImportError
        Without faiss.
    ValueError
        For an index of another kind or dimension, already trained, or whose
        quantizer trains itself, or for fewer than nlist training points.
    AttributeError
        For a keyword that is neither a ClusteringParameters field nor an
        option.
    """
    faiss = _import_faiss()
    pts = _arrays.as_points(x, 2, "x")
    # faiss trains on float32 host arrays
    if pts.kind == "numpy" and pts.dtype == "float32":
        xt = pts.source
    else:
        xt = _arrays.host_float32(pts.source, "x", ndim=2)
    n, d = xt.shape

    top = faiss.downcast_index(index)
    if top.d != d:
        raise ValueError(f"x has dimension {d}, the index has d={top.d}")
    pretransform = top if isinstance(top, faiss.IndexPreTransform) else None
    ivf = faiss.try_extract_index_ivf(top) if hasattr(faiss, "try_extract_index_ivf") else None
    if ivf is None:
        try:
            ivf = faiss.extract_index_ivf(top)
        except RuntimeError as e:
            raise ValueError("train_ivf: no IndexIVF found in the index") from e
    ivf = faiss.downcast_index(ivf)
    if pretransform is not None and int(faiss.downcast_index(pretransform.index).this) != int(ivf.this):
        raise ValueError("train_ivf: the IndexPreTransform must wrap the IndexIVF directly")
    if pretransform is None and int(ivf.this) != int(top.this):
        raise ValueError(
            "train_ivf: supported indexes are an IndexIVF or an IndexPreTransform around one "
            f"(got {type(top).__name__})"
        )
    if top.is_trained:
        raise ValueError("train_ivf: the index is already trained")
    if _as_int(ivf.quantizer_trains_alone) == 1:
        raise ValueError(
            "train_ivf: this IVF's quantizer trains itself (quantizer_trains_alone=1); "
            "use index.train()"
        )

    verbose = bool(top.verbose or ivf.verbose)

    # The pre-transform chain, as IndexPreTransform::train: each transform
    # trained on the previous one's output.
    if pretransform is not None:
        for i in range(pretransform.chain.size()):
            vt = pretransform.chain.at(i)
            if not vt.is_trained:
                if verbose:
                    print(f"   Training chain component {i}/{pretransform.chain.size()}", flush=True)
                vt.train(xt)
            xt = vt.apply_py(xt) if hasattr(vt, "apply_py") else vt.apply(xt)

    if ivf.d != xt.shape[1]:
        raise ValueError(f"train_ivf: transformed points have d={xt.shape[1]}, the IVF has d={ivf.d}")
    if xt.shape[0] < ivf.nlist:
        raise ValueError(f"train_ivf: {xt.shape[0]} training points for nlist={ivf.nlist}")

    # The coarse k-means: the IVF's cp, overridden by kwargs.
    cp = ClusteringParameters.from_faiss(ivf.cp)
    if verbose:
        cp.verbose = True
    options = {}
    for key, v in kwargs.items():
        if key in OPTION_NAMES:
            options[key] = v
        else:
            getattr(cp, key)  # AttributeError for an unknown name
            setattr(cp, key, v)
    quantizer = faiss.downcast_index(ivf.quantizer)
    ip = quantizer.metric_type == faiss.METRIC_INNER_PRODUCT
    if not isinstance(quantizer, faiss.IndexFlat):
        ip = ivf.metric_type == faiss.METRIC_INNER_PRODUCT

    km = Kmeans(ivf.d, ivf.nlist, **options)
    km.cp = cp
    km.index = faiss.IndexFlatIP(ivf.d) if ip else faiss.IndexFlatL2(ivf.d)
    if verbose:
        print(f"Training level-1 quantizer on {xt.shape[0]} vectors in {ivf.d}D (flashkmeans)",
              flush=True)
    km.train(xt)

    quantizer.reset()
    if not quantizer.is_trained:
        quantizer.train(km.centroids)
    quantizer.add(km.centroids)
    quantizer.is_trained = True
    # FAISS sees a filled quantizer ("does not need training") and trains
    # only the encoder.
    ivf.train(xt)
    if pretransform is not None:
        pretransform.is_trained = True
    return km
