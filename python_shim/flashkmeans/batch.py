"""flashkmeans.batch_kmeans: B independent k-means problems in one call.

    labels, centroids, objective = flashkmeans.batch_kmeans(x, k)   # x: (B, n, d)

On the GPU the B problems run in one set of kernel launches; a torch or cupy
CUDA tensor is used in place and the results come back as tensors on its
device.
"""

from __future__ import annotations

import operator
from typing import Any, Optional

import numpy as np

from . import _arrays
from . import _flashkmeans as _ext
from ._typing import Points

__all__ = ["batch_kmeans", "BatchKMeansResult", "parse_metric"]


def parse_metric(metric):
    """'l2' or 'ip' from 'l2' / 'L2' / 'ip' / 'inner_product' or faiss's
    METRIC_L2 (1) / METRIC_INNER_PRODUCT (0).

    Parameters
    ----------
    metric : str or int
        'l2', 'euclidean', 'sqeuclidean' or 1 give 'l2'; 'ip',
        'inner_product', 'dot' or 0 give 'ip' (strings in any case).

    Returns
    -------
    str
        'l2' or 'ip'.

    Raises
    ------
    ValueError
        For any other metric.
    """
    if isinstance(metric, str):
        m = metric.lower()
        if m in ("l2", "euclidean", "sqeuclidean"):
            return "l2"
        if m in ("ip", "inner_product", "dot"):
            return "ip"
    elif isinstance(metric, (int, np.integer)) and not isinstance(metric, bool):
        if int(metric) == 1:
            return "l2"
        if int(metric) == 0:
            return "ip"
    raise ValueError(f"unknown metric {metric!r} (expected 'l2' or 'ip')")


class BatchKMeansResult(tuple):
    """(labels, centroids, objective), with the per-iteration history too.

    A tuple of three, so ``labels, centroids, objective = batch_kmeans(x, k)``
    unpacks it. All four attributes are numpy arrays for numpy input, torch
    tensors for torch input and cupy arrays for cupy input, on the input's
    device.

    Attributes
    ----------
    labels : array of shape (B, n), int64
        Cluster of each point at the last assignment.
    centroids : array of shape (B, k, d), float32
    objective : array of shape (B,), float64
        Objective of the last iteration (sum of squared distances for 'l2',
        of inner products for 'ip'); 0 if niter=0.
    history : array of shape (B, niter), float64
        Objective of every iteration.
    """

    def __new__(cls, labels: Any, centroids: Any, objective: Any, history: Any) -> BatchKMeansResult:
        self = tuple.__new__(cls, (labels, centroids, objective))
        self.history = history
        return self

    history: Any

    @property
    def labels(self) -> Any:
        """(B, n) int64: cluster of each point (the tuple's item 0)."""
        return self[0]

    @property
    def centroids(self) -> Any:
        """(B, k, d) float32 (the tuple's item 1)."""
        return self[1]

    @property
    def objective(self) -> Any:
        """(B,) float64: objective of the last iteration (item 2)."""
        return self[2]

    def __repr__(self):
        return "BatchKMeansResult(labels={!r}, centroids={!r}, objective={!r})".format(*self)


def _on_place(points, a):
    """A small host numpy result (objectives) as an array of the caller's
    library on the caller's device."""
    if points.kind == "torch":
        t = _arrays._torch().from_numpy(a)
        return t.to(points.source.device) if points.on_device else t
    if points.kind == "cupy":
        cp = _arrays._cupy()
        with cp.cuda.Device(points.device):
            return cp.asarray(a)
    return a


def batch_kmeans(x: Points, k: int, niter: int = 25, init_centroids: Optional[Points] = None,
                 seed: int = 1234, metric: str = "l2", spherical: bool = False,
                 verbose: bool = False, **options: Any) -> BatchKMeansResult:
    """Runs `niter` Lloyd iterations on each of the B problems of x (B, n, d).

    No subsampling: every point of every problem is used.

    Parameters
    ----------
    x : array of shape (B, n, d)
        numpy (float32, float16, bfloat16; float64 converted to float32), or
        a torch / cupy array on the CPU or a CUDA device (used in place).
    k : int
        Clusters per problem (n >= k).
    niter : int, default=25
        Lloyd iterations (>= 0).
    init_centroids : array of shape (B, k, d) or (k, d), optional
        The initial centroids ((k, d): the same for every problem); default:
        k distinct points per problem from FAISS's seeding
        (rand_perm(n, seed + 1), as faiss.Kmeans with the same seed when no
        subsampling happens), or k-means++ with init='kmeans++'.
    seed : int, default=1234
        Seed of the initial centroids.
    metric : {'l2', 'ip'}, default='l2'
        'ip': largest inner product (use with spherical=True for spherical
        k-means); faiss's METRIC_L2 / METRIC_INNER_PRODUCT are accepted too.
    spherical : bool, default=False
        Normalise the centroids after each iteration.
    verbose : bool, default=False
        Print the progress of the run.
    **options
        flashkmeans options: backend, device, dtype, precision, init,
        memory_budget, prune, cpu_kernel (see flashkmeans.Kmeans).

    Returns
    -------
    BatchKMeansResult
        Unpacks as (labels, centroids, objective) and carries .history
        (B, niter). labels are int64.

    Raises
    ------
    ValueError
        For a bad k, niter, metric, option or shape, or n < k.

    Examples
    --------
    >>> import numpy as np
    >>> import flashkmeans
    >>> x = np.random.RandomState(0).rand(3, 500, 8).astype(np.float32)
    >>> labels, centroids, objective = flashkmeans.batch_kmeans(x, 4, niter=10, backend="cpu")
    >>> labels.shape, centroids.shape, objective.shape
    ((3, 500), (3, 4, 8), (3,))
    """
    k = operator.index(k)
    niter = operator.index(niter)
    seed = operator.index(seed)
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    if niter < 0:
        raise ValueError(f"niter must be >= 0, got {niter}")
    metric = parse_metric(metric)
    if options.get("devices") is not None:
        raise ValueError("batch_kmeans runs on one GPU: drop devices (pick it with device=)")
    _ext.check_options(options)

    pts = _arrays.as_points(x, 3, "x")
    B, n, d = pts.shape
    if B == 0 or d == 0:
        raise ValueError(f"x: need B >= 1 and d >= 1, got shape {pts.shape}")
    if n < k:
        raise ValueError(
            f"Number of training points ({n}) should be at least as large as number of clusters ({k})"
        )
    ic = None
    if init_centroids is not None:
        # beside CUDA points, CUDA initial centroids stay on the device
        ic = _arrays.device_float32(init_centroids, pts)
        if ic is None:
            ic = _arrays.host_float32(init_centroids, "init_centroids")
        if tuple(ic.shape) == (k, d):
            ic = _arrays.broadcast(ic, (B, k, d))
        if tuple(ic.shape) != (B, k, d):
            raise ValueError(f"init_centroids: expected shape ({B}, {k}, {d}) or ({k}, {d}), got {tuple(ic.shape)}")

    pts, options = _arrays.match_compute_dtype(pts, options)
    options = _arrays.with_stream(pts, options)
    centroids = _arrays.empty(pts, (B, k, d), "float32")
    labels = _arrays.empty(pts, (B, n), "int64")
    history = np.zeros((B, niter), dtype=np.float64)
    from .kmeans import _flush

    _flush()
    _ext.batch_kmeans(pts.array, pts.dtype, k, niter, metric, bool(spherical), seed, bool(verbose),
                      ic, centroids, labels, history if niter > 0 else None, options)
    # one small copy to the caller's device (a blocking one for torch); the
    # last column is taken there
    placed = _on_place(pts, history if niter > 0 else np.zeros((B, 1), dtype=np.float64))
    objective = placed[:, -1].copy() if pts.kind != "torch" else placed[:, -1].clone()
    return BatchKMeansResult(
        _arrays.wrap(pts, labels),
        _arrays.wrap(pts, centroids),
        objective,
        placed if niter > 0 else _on_place(pts, history),
    )
