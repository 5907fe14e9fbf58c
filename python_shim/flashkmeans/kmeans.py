"""flashkmeans.Kmeans: faiss.Kmeans's surface, the flashkmeans engine below.

    from flashkmeans import Kmeans          # instead of: from faiss import Kmeans
    km = Kmeans(d, k, niter=20, verbose=True)
    km.train(x)                             # x: (n, d) numpy / torch / cupy
    D, I = km.index.search(x, 1)            # or km.assign(x)

Keyword arguments set ClusteringParameters fields exactly as in faiss (an
unknown name raises AttributeError), `gpu=` keeps faiss's meaning, and the
flashkmeans options (OPTION_NAMES: backend, device, dtype, precision, init,
memory_budget, prune, cpu_kernel, devices) are accepted as keywords too; help(Kmeans)
lists them all.
"""

from __future__ import annotations

import operator
import sys
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

from . import _arrays
from . import _flashkmeans as _ext
from ._typing import Points

__all__ = ["Kmeans", "ClusteringParameters", "FlatIndex", "OPTION_NAMES"]

#: flashkmeans options accepted as keywords next to the ClusteringParameters.
OPTION_NAMES = ("backend", "device", "dtype", "precision", "init", "memory_budget", "prune",
                "cpu_kernel", "devices")

# faiss's metric constants (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2)
METRIC_INNER_PRODUCT = 0
METRIC_L2 = 1

# a pruned run's stats add the share of the assignment skipped and the near-ties
_STAT_FIELDS = ("obj", "time", "time_search", "imbalance_factor", "nsplit", "skipped", "near_ties")


def _faiss():
    """The faiss module when importable (faiss-cpu or a GPU build), else None."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _flush():
    # The engine prints with C stdio; keep Python's buffered output in order.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # closed or odd streams
            pass


class ClusteringParameters:
    """The fields of faiss.ClusteringParameters (faiss 1.15.1), same defaults.

    ``ClusteringParameters(**fields)`` sets the fields named; setting a field
    that does not exist raises AttributeError, as with the SWIG object. Fields
    flashkmeans cannot honour raise ValueError when training starts
    (:meth:`check_supported`), saying what to use instead.

    Attributes
    ----------
    niter : int, default=25
        Lloyd iterations of each run.
    nredo : int, default=1
        Number of runs, each from another seed; the run of best objective is
        kept.
    verbose : bool, default=False
        Print the progress of the run.
    spherical : bool, default=False
        Normalise the centroids after each iteration.
    int_centroids : bool, default=False
        Round the centroids' coordinates to integers after each iteration.
    update_index : bool, default=False
        Train the index on the final centroids, as faiss does; a flat index
        (Kmeans.index) is not changed by training.
    frozen_centroids : bool, default=False
        Keep the initial centroids given to train() fixed.
    min_points_per_centroid : int, default=39
        With fewer than k times this many points, a warning is printed.
    max_points_per_centroid : int, default=256
        With more than k times this many points, training uses a subset of
        that size, drawn with faiss's permutation (the points faiss keeps).
    seed : int, default=1234
        Seed of the initialisation and the subsampling; a negative seed
        draws a random one (as recent faiss).
    decode_block_size : int, default=32768
        Only concerns faiss's train_encoded: no effect.
    check_input_data_for_NaNs : bool, default=True
        False is accepted, but points are always checked (the check costs
        nothing: it reads the norms the engine computes).
    use_faster_subsampling : bool, default=False
        True raises ValueError: flashkmeans subsamples with faiss's exact
        permutation only.
    init_method : int, default=0
        0: random points (faiss's default); 1: k-means++ (exact D^2 sampling
        on the engine); 2 (AFK-MC2) raises ValueError.
    afkmc2_chain_length : int, default=50
        Used only by AFK-MC2, which is rejected: no effect.
    early_stop_threshold : float, default=0.0
        faiss >= 1.14.2 ends a run once the objective changes by at most this
        much (relative); 0 ends it once the objective stops changing, < 0 runs
        every iteration, > 0 raises ValueError. With an older faiss installed
        the default is -1.0 (every iteration runs), as that faiss does.
    use_super_kmeans : bool, default=False
        True (faiss.SuperKMeans, approximate pruned assignment) raises
        ValueError: flashkmeans' assignment is exact.
    """

    # name: (kind, default)
    _FIELDS = {
        "niter": ("int", 25),
        "nredo": ("int", 1),
        "verbose": ("bool", False),
        "spherical": ("bool", False),
        "int_centroids": ("bool", False),
        "update_index": ("bool", False),
        "frozen_centroids": ("bool", False),
        "min_points_per_centroid": ("int", 39),
        "max_points_per_centroid": ("int", 256),
        "seed": ("int", 1234),
        "decode_block_size": ("int", 32768),
        "check_input_data_for_NaNs": ("bool", True),
        "use_faster_subsampling": ("bool", False),
        "init_method": ("int", 0),
        "afkmc2_chain_length": ("int", 50),
        "early_stop_threshold": ("float", 0.0),
        "use_super_kmeans": ("bool", False),
    }
    # the fields the C++ engine takes (faiss::ClusteringParameters of FAISS 1.7.3)
    _ENGINE_FIELDS = (
        "niter", "nredo", "verbose", "spherical", "int_centroids", "update_index",
        "frozen_centroids", "min_points_per_centroid", "max_points_per_centroid", "seed",
        "decode_block_size",
    )
    __slots__ = tuple(_FIELDS)

    def __init__(self, **kwargs: Any) -> None:
        for name, (_, default) in self._FIELDS.items():
            object.__setattr__(self, name, default)
        faiss = _faiss()
        if faiss is not None and not hasattr(faiss.ClusteringParameters(), "early_stop_threshold"):
            # faiss < 1.14.2 runs every iteration: behave as the faiss installed
            object.__setattr__(self, "early_stop_threshold", -1.0)
        for name, value in kwargs.items():
            setattr(self, name, value)

    def __setattr__(self, name, value):
        spec = self._FIELDS.get(name)
        if spec is None:
            raise AttributeError(f"'ClusteringParameters' object has no attribute '{name}'")
        kind = spec[0]
        if kind == "int":
            value = operator.index(value)
        elif kind == "bool":
            value = bool(value)
        else:
            value = float(value)
        object.__setattr__(self, name, value)

    @classmethod
    def from_faiss(cls, cp: Any) -> ClusteringParameters:
        """A copy of a faiss.ClusteringParameters (e.g. an IVF index's cp).

        Parameters
        ----------
        cp : faiss.ClusteringParameters
            The parameters to copy; fields it lacks keep their defaults.

        Returns
        -------
        ClusteringParameters
        """
        out = cls()
        for name in cls._FIELDS:
            if hasattr(cp, name):
                value = getattr(cp, name)
                if isinstance(value, str):  # SWIG chars
                    value = ord(value)
                setattr(out, name, value)
        return out

    def engine_fields(self) -> Dict[str, Any]:
        """The fields the C++ engine takes (those of FAISS 1.7.3), by name."""
        return {name: getattr(self, name) for name in self._ENGINE_FIELDS}

    def check_supported(self) -> None:
        """Checks the fields before training.

        Raises
        ------
        ValueError
            For a field flashkmeans cannot honour (use_faster_subsampling,
            use_super_kmeans, early_stop_threshold > 0, init_method other
            than 0 or 1) or out of range (niter < 0, nredo < 1,
            max_points_per_centroid <= 0), saying what to use instead.
        """
        if self.use_faster_subsampling:
            raise ValueError(
                "use_faster_subsampling=True is not supported by flashkmeans: it subsamples "
                "with faiss's exact permutation only; leave it False (the same points as "
                "faiss's default), raise max_points_per_centroid to use every point, or "
                "subsample x yourself")
        if self.use_super_kmeans:
            raise ValueError(
                "use_super_kmeans=True (faiss.SuperKMeans, approximate pruned assignment) is "
                "not supported by flashkmeans, whose assignment is exact: leave it False "
                "(flashkmeans' exact Lloyd is the fast path), or use faiss.Kmeans for "
                "SuperKMeans")
        if self.early_stop_threshold > 0:
            raise ValueError(
                "early_stop_threshold > 0 is not supported by flashkmeans: use 0 (stop once "
                "the objective is unchanged, as faiss) or < 0 (run all iterations), or "
                "flashkmeans.KMeans(tol=...) for a convergence tolerance"
            )
        if self.init_method not in (0, 1):
            raise ValueError(
                f"init_method={self.init_method} (AFK-MC2) is not supported by flashkmeans: "
                "use init_method=1 (k-means++, exact D^2 sampling on the engine) or 0 "
                "(random points, faiss's default)"
            )
        if self.niter < 0 or self.nredo < 1:
            raise ValueError(f"need niter >= 0 and nredo >= 1 (got {self.niter}, {self.nredo})")
        if self.max_points_per_centroid <= 0:
            raise ValueError(f"max_points_per_centroid must be > 0, got {self.max_points_per_centroid}")

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._FIELDS)
        return f"{type(self).__name__}({fields})"


class ProgressiveDimClusteringParameters(ClusteringParameters):
    """The fields of faiss.ProgressiveDimClusteringParameters: those of
    ClusteringParameters, niter 10 instead of 25, and two more.

    Attributes
    ----------
    progressive_dim_steps : int, default=10
        Number of stages; stage i clusters the leading
        int(d ** ((i + 1) / steps)) dimensions, warm-started from stage
        i - 1's centroids padded with zeros.
    apply_pca : bool, default=True
        First rotate the points onto their principal axes, so the leading
        dimensions are those of largest variance.
    """

    _FIELDS = dict(ClusteringParameters._FIELDS, niter=("int", 10),
                   progressive_dim_steps=("int", 10), apply_pca=("bool", True))
    __slots__ = ("progressive_dim_steps", "apply_pca")

    def check_supported(self) -> None:
        super().check_supported()
        if self.progressive_dim_steps < 1:
            raise ValueError(f"progressive_dim_steps must be >= 1, got {self.progressive_dim_steps}")
        if self.spherical:
            raise ValueError(
                "spherical=True with progressive_dim_steps is not supported (nor by faiss): "
                "drop progressive_dim_steps for spherical k-means")


def _faiss_early_stop(stats, niter, threshold):
    """faiss >= 1.14.2 ends a run at the first iteration i > 0 whose objective
    changed by at most `early_stop_threshold` (relative; default 0: the
    objective did not change, i.e. Lloyd reached a fixed point). The engine
    runs all `niter` iterations of each redo (FAISS 1.7.3's loop); past a fixed
    point they change nothing, so cutting each redo's stats where faiss would
    have stopped gives faiss's stats and the same centroids."""
    if threshold < 0 or niter <= 1 or not stats or len(stats) % niter:
        return stats
    out = []
    for s0 in range(0, len(stats), niter):
        seg = stats[s0 : s0 + niter]
        for i in range(1, len(seg)):
            prev, cur = np.float32(seg[i - 1][0]), np.float32(seg[i][0])
            change = np.inf if prev == 0 else float(abs(prev - cur)) / abs(float(prev))
            if change <= threshold:
                seg = seg[: i + 1]
                break
        out.extend(seg)
    return out


class FlatIndex:
    """A small stand-in for faiss.IndexFlatL2 / IndexFlatIP, used as
    Kmeans.index when faiss is not installed: add, reset, search, ntotal.

    Parameters
    ----------
    d : int
        Dimension of the vectors.
    metric : {'l2', 'ip'}, default='l2'
        Squared L2 distance, or inner product (largest first).
    options : dict, optional
        flashkmeans options for the engine's nearest-neighbour search.
    """

    def __init__(self, d: int, metric: str = "l2", options: Optional[Dict[str, Any]] = None) -> None:
        self.d = int(d)
        self.metric = metric
        self.metric_type = METRIC_INNER_PRODUCT if metric == "ip" else METRIC_L2
        self.is_trained = True
        self.options = dict(options or {})
        self.reset()

    @property
    def ntotal(self) -> int:
        """Number of stored vectors."""
        return int(self._xb.shape[0])

    def reset(self) -> None:
        """Removes every stored vector."""
        self._xb = np.empty((0, self.d), dtype=np.float32)

    def train(self, x: Points) -> None:
        """Does nothing: a flat index needs no training."""

    def add(self, x: Points) -> None:
        """Stores the rows of x (n, d) after those already stored."""
        x = _arrays.host_float32(x, "x", ndim=2)
        if x.shape[1] != self.d:
            raise ValueError(f"x has dimension {x.shape[1]}, index has d={self.d}")
        self._xb = np.concatenate([self._xb, x])

    def reconstruct_n(self, i0: int = 0, ni: Optional[int] = None) -> npt.NDArray[np.float32]:
        """A copy of the ni stored vectors from i0 on (ni=None: to the end)."""
        ni = self.ntotal - i0 if ni is None else ni
        return self._xb[i0 : i0 + ni].copy()

    def search(self, x: Points, k: int) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The k nearest stored vectors of each row of x, in faiss's layout.

        Parameters
        ----------
        x : array of shape (n, d)
            Query vectors.
        k : int
            Neighbours per query (> 0).

        Returns
        -------
        D : ndarray of shape (n, k), float32
            Distances (squared L2, or inner products), nearest first.
        I : ndarray of shape (n, k), int64
            Ids of the stored vectors, -1 where fewer than k exist.
        """
        x = _arrays.host_float32(x, "x", ndim=2)
        if x.shape[1] != self.d:
            raise ValueError(f"x has dimension {x.shape[1]}, index has d={self.d}")
        n, k = x.shape[0], int(k)
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        ip = self.metric_type == METRIC_INNER_PRODUCT
        D = np.full((n, k), -np.inf if ip else np.inf, dtype=np.float32)
        I = np.full((n, k), -1, dtype=np.int64)
        if n == 0 or self.ntotal == 0:
            return D, I
        if k == 1:
            d1 = np.empty(n, dtype=np.float32)
            i1 = np.empty(n, dtype=np.int64)
            opts = {key: v for key, v in self.options.items() if key != "device"}
            _ext.assign(x, "float32", self._xb, self.metric, d1, i1, opts)
            D[:, 0], I[:, 0] = d1, i1
            return D, I
        kk = min(k, self.ntotal)
        xb = self._xb.astype(np.float64)
        nb = (xb * xb).sum(1)
        for i0 in range(0, n, 4096):
            xi = x[i0 : i0 + 4096].astype(np.float64)
            dots = xi @ xb.T
            dis = -dots if ip else (xi * xi).sum(1)[:, None] + nb[None, :] - 2 * dots
            part = np.argpartition(dis, kk - 1, axis=1)[:, :kk] if kk < self.ntotal else np.tile(
                np.arange(self.ntotal), (len(xi), 1))
            pd = np.take_along_axis(dis, part, 1)
            order = np.lexsort((part, pd), axis=1)
            ids = np.take_along_axis(part, order, 1)
            dd = np.take_along_axis(pd, order, 1)
            I[i0 : i0 + len(xi), :kk] = ids
            D[i0 : i0 + len(xi), :kk] = -dd if ip else np.maximum(dd, 0)
        return D, I


class Kmeans:
    """k-means clustering with faiss.Kmeans's interface.

    ``Kmeans(d, k, **kwargs)``: each keyword is a ClusteringParameters field
    (set as in faiss; an unknown name raises AttributeError), ``gpu``,
    ``comm``, or a flashkmeans option (``OPTION_NAMES``). Giving
    ``progressive_dim_steps`` makes a faiss ProgressiveDimClustering: PCA,
    then k-means on d ** ((i + 1) / steps) leading dimensions, each stage
    warm-started; it takes no weights, init_centroids, spherical or comm.

    Parameters
    ----------
    d : int
        Dimension of the points (> 0).
    k : int
        Number of centroids (> 0).
    niter : int, default=25
        Lloyd iterations of each run (10, per stage, with
        progressive_dim_steps).
    nredo : int, default=1
        Number of runs, each from another seed; the run of best objective is
        kept.
    verbose : bool, default=False
        Print the progress of the run (faiss's lines, and the backend and
        memory plan).
    spherical : bool, default=False
        Normalise the centroids after each iteration; ``index`` is then an
        inner-product index.
    int_centroids : bool, default=False
        Round the centroids' coordinates to integers after each iteration.
    update_index : bool, default=False
        faiss's field; ``index`` is a flat index, which training does not
        change.
    frozen_centroids : bool, default=False
        Keep the centroids given to train(init_centroids=...) fixed.
    min_points_per_centroid : int, default=39
        With fewer than k times this many points, a warning is printed.
    max_points_per_centroid : int, default=256
        With more than k times this many points, training uses a subset of
        that size, drawn with faiss's permutation (the points faiss keeps).
    seed : int, default=1234
        Seed of the initialisation and the subsampling; a negative seed
        draws a random one (as recent faiss).
    decode_block_size : int, default=32768
        Only concerns faiss's train_encoded: no effect.
    check_input_data_for_NaNs : bool, default=True
        False is accepted, but points are always checked (the check costs
        nothing: it reads the norms the engine computes).
    use_faster_subsampling : bool, default=False
        True raises ValueError at train(): flashkmeans subsamples with
        faiss's exact permutation only.
    init_method : int, default=0
        0: random points (faiss's seeding); 1: k-means++, as
        ``init='kmeans++'``; 2 (AFK-MC2) raises ValueError at train().
    afkmc2_chain_length : int, default=50
        Used only by AFK-MC2, which is rejected: no effect.
    early_stop_threshold : float, default=0.0
        As faiss >= 1.14.2: 0 ends a run once the objective stops changing
        (obj and iteration_stats end where faiss's do, with the same
        centroids), < 0 runs every iteration, > 0 raises ValueError at
        train() (flashkmeans.KMeans(tol=...) has a tolerance). With an older
        faiss installed the default is -1.0, as that faiss does.
    use_super_kmeans : bool, default=False
        True (faiss.SuperKMeans, approximate) raises ValueError at train():
        flashkmeans' assignment is exact.
    progressive_dim_steps : int, default=10
        Number of stages of a ProgressiveDimClustering; stage i clusters the
        leading int(d ** ((i + 1) / steps)) dimensions, warm-started from
        stage i - 1's centroids padded with zeros. Not given: one plain
        k-means.
    apply_pca : bool, default=True
        With progressive_dim_steps only: first rotate the points onto their
        principal axes, so the leading dimensions are those of largest
        variance.
    gpu : bool or int, default=False
        faiss's meaning: False or 0 runs on the CPU; 1 on the CUDA backend on
        the GPU ``device``; n > 1 on the first n GPUs of this process (the
        rows split across them, one rank per GPU over NCCL, as ``devices``
        does); True and -1 on every visible GPU (one, or the CPU where there
        is none). A build without NCCL (the wheels: ``nccl_compiled()``)
        refuses n > 1 and runs True / -1 on one GPU with a warning.
        ``backend``, when given, wins.
    devices : sequence of int, optional
        The CUDA devices to train on, one rank per GPU in one process
        (``train_on_devices``): host points only, split in contiguous row
        ranges in the listed order. Centroids equal one GPU's to float
        rounding (bit for bit on integer-valued points) and are the same bits
        run to run for a given list. Excludes ``comm``; assign() and the like
        run on the first listed GPU.
    comm : mpi4py communicator, optional
        E.g. MPI.COMM_WORLD, for data-parallel training: every rank calls
        train() with its own rows, in rank order, and gets the centroids of
        one run on all the rows together.
    backend : {'auto', 'cpu', 'cuda'}, default='auto'
        'auto': CUDA when a GPU is visible.
    device : int, default=0
        CUDA device ordinal (CUDA input runs on its own device).
    dtype : {'float32', 'float16', 'bfloat16'}, default='float32'
        The type the points are converted to for the assignment (centroids
        stay float32).
    precision : {'exact', 'tf32'}, default='exact'
        'tf32' lets the GPU assignment of float32 points use TF32 tensor
        cores.
    init : {'random', 'kmeans++'}, default='random'
        'random': FAISS's seeding; 'kmeans++': exact D^2 sampling on the
        engine.
    memory_budget : int, default=0
        Bytes the run may hold where it computes (0: no bound on the CPU,
        the GPU's free memory on CUDA); host points beyond it are streamed
        in chunks every iteration (numpy memmaps are read in place).
    prune : bool, default=False
        Exact pruning: after the first iteration, points whose label
        provably stays are not compared with every centroid. On the CPU,
        with the fused kernel (taken by default), labels, centroids and
        objectives are the unpruned run's bit for bit; with
        cpu_kernel='faiss' labels equal it except counted near-ties. On
        CUDA (the moved-centroid filter: a point is compared only with the
        centroids that moved) labels equal the unpruned run's except counted
        near-ties; points resident or streamed (the filter then sees
        the points a chunk at a time). Either way faiss's
        bitwise parity no longer holds. iteration_stats gain 'skipped'
        (share of the assignment's work skipped) and 'near_ties'.
    cpu_kernel : {'auto', 'faiss', 'fused'}, default='auto'
        The CPU backend's assignment kernel: 'faiss' (faiss's own sgemm
        calls: bitwise faiss.Kmeans's results), 'fused' (flashkmeans' FMA
        micro-kernel with the argmin fused: faster, exact to float rounding,
        not faiss's bits; x86-64 with AVX2 and FMA), 'auto' ('fused' with
        prune, else 'faiss'). Naming 'faiss' or 'fused' with the CUDA
        backend is a ValueError.

    Attributes
    ----------
    d, k : int
        Dimension and number of centroids.
    cp : ClusteringParameters
        The fields above (a ProgressiveDimClusteringParameters with
        progressive_dim_steps).
    gpu : bool or int
        ``gpu`` as given (True and -1 replaced by the GPU count).
    comm : mpi4py communicator or None
    options : dict
        The flashkmeans options given.
    centroids : ndarray of shape (k, d), float32
        After train(), else None.
    obj : ndarray of float64
        The objective of each iteration after train(), else None.
    iteration_stats : list of dict
        After train(), one dict per iteration: obj, time, time_search,
        imbalance_factor, nsplit (and skipped, near_ties with prune).
    index : faiss.IndexFlatL2 or FlatIndex
        Holds the centroids after train(): a faiss.IndexFlatL2
        (IndexFlatIP when spherical) when faiss is importable, else a
        FlatIndex with the same add/reset/search.
    memory_plan : str
        After train(): "resident" or how the points streamed (None before,
        and with progressive_dim_steps).
    backend : str
        The backend training runs on: 'cpu' or 'cuda'.

    Examples
    --------
    >>> import numpy as np
    >>> from flashkmeans import Kmeans
    >>> x = np.random.RandomState(0).rand(1000, 16).astype(np.float32)
    >>> km = Kmeans(16, 10, niter=20, seed=1, backend="cpu")
    >>> obj = km.train(x)
    >>> km.centroids.shape
    (10, 16)
    >>> D, I = km.assign(x)
    """

    d: int
    k: int
    cp: ClusteringParameters
    #: (k, d) float32 after train(), else None
    centroids: Optional[npt.NDArray[np.float32]]
    #: the objective of each iteration after train(), else None
    obj: Optional[npt.NDArray[np.float64]]
    iteration_stats: Optional[List[Dict[str, float]]]
    #: a faiss.IndexFlatL2 / IndexFlatIP when faiss is importable, else a FlatIndex
    index: Any

    def __init__(self, d: int, k: int, **kwargs: Any) -> None:
        d = operator.index(d)
        if d <= 0:
            raise ValueError(f"d must be > 0, got {d}")
        self.d = d
        self.reset(k)
        self.gpu = False
        self.options = {}
        self._gpu_given = False
        self.comm = None
        # faiss: progressive_dim_steps makes a ProgressiveDimClustering (niter 10)
        progressive = "progressive_dim_steps" in kwargs
        self.cp = ProgressiveDimClusteringParameters() if progressive else ClusteringParameters()
        for key, v in kwargs.items():
            if key == "gpu":
                # faiss: True (== 1) or -1 mean all GPUs, 0 the CPU; any GPU
                # count runs on one GPU here (see the class docstring)
                if v == True or v == -1:  # noqa: E712 (faiss's own test)
                    v = _ext.cuda_device_count()
                    if v > 1 and not _ext.nccl_compiled():
                        warnings.warn(
                            f"gpu={kwargs[key]!r}: this build of flashkmeans has no NCCL, so it "
                            f"trains on one of the {v} visible GPUs", stacklevel=2)
                        v = 1
                self.gpu = v
                self._gpu_given = True
            elif key == "comm":
                self.comm = v
            elif key in OPTION_NAMES:
                self.options[key] = v
            else:
                # raises AttributeError for a field that does not exist
                getattr(self.cp, key)
                setattr(self.cp, key, v)
        if self._gpu_given and int(self.gpu) > 1 and "devices" not in self.options:
            self.options["devices"] = list(range(int(self.gpu)))
        if self.options.get("devices") is not None and self.comm is not None:
            raise ValueError("devices (or gpu > 1) and comm exclude each other: "
                             "give one or the other")
        _ext.check_options(self._engine_options())
        self.set_index()

    # -- faiss.Kmeans's methods ------------------------------------------------------

    def set_index(self) -> None:
        """Makes a new empty ``index``: inner product when cp.spherical, else L2."""
        metric = "ip" if self.cp.spherical else "l2"
        faiss = _faiss()
        if faiss is not None:
            self.index = faiss.IndexFlatIP(self.d) if metric == "ip" else faiss.IndexFlatL2(self.d)
        else:
            self.index = FlatIndex(self.d, metric, self._host_options())

    def reset(self, k: Optional[int] = None) -> None:
        """Prepares a new clustering, possibly with another number of centroids.

        Parameters
        ----------
        k : int, optional
            The new number of centroids (> 0); None keeps k.
        """
        if k is not None:
            k = operator.index(k)
            if k <= 0:
                raise ValueError(f"k must be > 0, got {k}")
            self.k = k
        self.centroids = None
        self.obj = None
        self.iteration_stats = None
        self.memory_plan = None

    def train(self, x: Points, weights: Optional[npt.ArrayLike] = None,
              init_centroids: Optional[npt.ArrayLike] = None) -> float:
        """Runs k-means on x and keeps centroids, obj, iteration_stats and index.

        Parameters
        ----------
        x : array of shape (n, d)
            numpy (float32, float16, bfloat16; float64 is converted to
            float32), or a torch / cupy array on the CPU or a CUDA device
            (used in place). n >= k, except across ranks (``comm``), where
            the total over all ranks is checked.
        weights : array of shape (n,), optional
            Per-point weights, >= 0 and not all zero.
        init_centroids : array of shape (m, d), optional
            m <= k: the first m initial centroids (frozen if
            cp.frozen_centroids).

        Returns
        -------
        float
            The objective of the last iteration (0.0 when none ran).

        Raises
        ------
        ValueError
            For a wrong shape, too few points, bad weights, NaN or Inf, or a
            ClusteringParameters field flashkmeans cannot honour.
        TypeError
            For points of an unsupported dtype (integers, bool, complex).
        """
        pts = _arrays.as_points(x, 2, "x")
        n, d = pts.shape
        if d != self.d:
            raise ValueError(f"x has dimension {d}, but this Kmeans has d={self.d}")
        # across ranks the engine checks the total over all ranks
        if n < self.k and self.comm is None:
            raise ValueError(
                f"Number of training points ({n}) should be at least as large as "
                f"number of clusters ({self.k})"
            )
        self.cp.check_supported()
        if isinstance(self.cp, ProgressiveDimClusteringParameters):
            return self._train_progressive(pts, weights, init_centroids)
        w = _arrays.host_float32(weights, "weights", ndim=1)
        if w is not None:
            if w.shape != (n,):
                raise ValueError(f"weights: expected shape ({n},), got {w.shape}")
            if (w < 0).any() or (self.comm is None and not (w > 0).any()):
                raise ValueError("weights must be >= 0 and not all zero")
        ic = _arrays.host_float32(init_centroids, "init_centroids", ndim=2)
        if ic is not None and (ic.shape[1] != d or ic.shape[0] > self.k):
            raise ValueError(f"init_centroids: expected shape (m <= {self.k}, {d}), got {ic.shape}")

        pts, opts = _arrays.match_compute_dtype(pts, self._engine_options())
        opts = _arrays.with_stream(pts, opts)
        if self.comm is not None:
            opts["comm"] = self.comm
        _flush()
        centroids, stats, _, _, _, self.memory_plan = _ext.train_clustering(
            pts.array, pts.dtype, self.k, self._metric(), self._engine_fields(), opts, w, ic,
        )
        return self._trained(centroids, stats)

    def _train_progressive(self, pts: Any, weights: Any, init_centroids: Any) -> float:
        """faiss's ProgressiveDimClustering, each stage on the engine."""
        if weights is not None or init_centroids is not None:
            raise ValueError(
                "progressive_dim_steps takes no weights or init_centroids (nor does faiss's "
                "ProgressiveDimClustering): drop progressive_dim_steps to use them")
        if self.comm is not None or self.options.get("devices") is not None:
            raise ValueError("progressive_dim_steps runs on one process and one GPU: drop comm, "
                             "devices and gpu > 1 to use it")
        # the PCA and each stage's leading columns are computed on the host
        x = _arrays.host_float32(pts.source, "x", ndim=2)
        _flush()
        centroids, stats = _ext.train_progressive_dim(
            x, self.k, self._engine_fields(), self.cp.progressive_dim_steps,
            self.cp.apply_pca, self._engine_options())
        return self._trained(centroids, stats)

    def _engine_fields(self) -> Dict[str, Any]:
        fields = self.cp.engine_fields()
        if fields["seed"] < 0:  # recent faiss: a negative seed means a random one
            fields["seed"] = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        return fields

    def _trained(self, centroids: Any, stats: List[Tuple[float, ...]]) -> float:
        """Keeps a run's results as faiss.Kmeans does; the final objective."""
        stats = _faiss_early_stop(stats, self.cp.niter, self.cp.early_stop_threshold)
        self.centroids = centroids
        self.obj = np.array([s[0] for s in stats])
        self.iteration_stats = [dict(zip(_STAT_FIELDS, s)) for s in stats]
        self.index.reset()
        self.index.add(self.centroids)
        return self.obj[-1] if self.obj.size > 0 else 0.0

    def assign(self, x: Points) -> Tuple[Any, Any]:
        """Distance to and id of the nearest centroid of each row of x.

        Parameters
        ----------
        x : array of shape (n, d)
            numpy, or a torch / cupy array on the CPU or a CUDA device.

        Returns
        -------
        D : array of shape (n,), float32
            Distance to the nearest centroid (squared L2, or inner product
            when spherical).
        I : array of shape (n,), int64
            Its id. numpy in, numpy out; torch / cupy in, the same library
            and device out.

        Raises
        ------
        RuntimeError
            Before train().
        """
        if self.centroids is None:
            raise RuntimeError("should train before assigning")
        pts = _arrays.as_points(x, 2, "x")
        n, d = pts.shape
        if d != self.d:
            raise ValueError(f"x has dimension {d}, but this Kmeans has d={self.d}")
        D = _arrays.empty(pts, (n,), "float32")
        I = _arrays.empty(pts, (n,), "int64")
        if n > 0:
            pts, opts = _arrays.match_compute_dtype(pts, self._engine_options())
            _ext.assign(pts.array, pts.dtype, self.centroids, self._metric(), D, I,
                        _arrays.with_stream(pts, opts))
        return _arrays.wrap(pts, D), _arrays.wrap(pts, I)

    # -- helpers ------------------------------------------------------------------------

    def _metric(self):
        # the index decides, as in faiss (spherical at construction -> IP)
        return "ip" if getattr(self.index, "metric_type", METRIC_L2) == METRIC_INNER_PRODUCT else "l2"

    def _engine_options(self):
        opts = dict(self.options)
        init = opts.get("init")
        if init is None and self.cp.init_method == 1:
            opts["init"] = "kmeans++"
        if opts.get("backend") is None and self._gpu_given:
            opts["backend"] = "cuda" if self.gpu else "cpu"
        return opts

    def _host_options(self):
        return {k: v for k, v in self._engine_options().items() if k != "device"}

    @property
    def backend(self) -> str:
        """The backend training runs on here: 'cpu' or 'cuda'."""
        return _ext.resolve_backend(self._engine_options().get("backend") or "auto")

    def __repr__(self) -> str:
        return f"flashkmeans.Kmeans(d={self.d}, k={self.k}, backend={self.backend!r})"
