"""flashkmeans.KMeans: scikit-learn's KMeans estimator, the flashkmeans engine below.

    from flashkmeans import KMeans          # instead of: from sklearn.cluster import KMeans
    km = KMeans(n_clusters=8, random_state=0).fit(X)
    km.cluster_centers_, km.labels_, km.inertia_, km.n_iter_
    km.predict(X), km.transform(X), km.score(X)

This module imports scikit-learn; flashkmeans/__init__.py loads it on the
first access to flashkmeans.KMeans, so `import flashkmeans` never needs it.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable, Optional, Union

import numpy as np
import numpy.typing as npt

try:
    from sklearn.base import (
        BaseEstimator,
        ClassNamePrefixFeaturesOutMixin,
        ClusterMixin,
        TransformerMixin,
    )
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics.pairwise import euclidean_distances
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_array, check_is_fitted, validate_data
except ImportError as e:  # validate_data is public from scikit-learn 1.6 on
    raise ImportError(
        "flashkmeans.KMeans needs scikit-learn >= 1.6 (pip install scikit-learn); "
        "flashkmeans.Kmeans (faiss's interface) does not"
    ) from e

from . import _flashkmeans as _ext
from ._arrays import _ext_dtype
from .kmeans import _flush

__all__ = ["KMeans"]

# An engine call runs Lloyd's iterations on every point: no FAISS subsampling
# (max_points_per_centroid past any n) and no "too few points" warning
# (min_points_per_centroid 0), as scikit-learn uses every point.
_ITERATIONS = {"max_points_per_centroid": 2**31 - 1, "min_points_per_centroid": 0}
# rows of X converted to float64 at a time when summing squared distances
_CHUNK = 65536

# The parameters of fit, fit_predict and fit_transform, for their docstrings.
_FIT_PARAMETERS = """X : array-like of shape (n_samples, n_features)
            Training points (converted to float32 for the engine; sparse
            matrices are not supported).

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), float or None, default=None
            Weight of each point (>= 0, not all zero); None gives every point
            weight 1. Weights enter the centre updates, the inertia and the
            initialisation."""


def _fit_parameters(method):
    if method.__doc__:  # None under python -OO
        method.__doc__ = method.__doc__.replace("FIT_PARAMETERS", _FIT_PARAMETERS)
    return method


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means clustering with scikit-learn's KMeans interface, run by flashkmeans.

    The parameters, attributes and methods are those of
    ``sklearn.cluster.KMeans`` (Lloyd's algorithm); the iterations run on the
    flashkmeans engine, on the CPU or a CUDA GPU (``backend``). On the same data
    and the same initial centres it reaches the same centres and inertia as
    ``sklearn.cluster.KMeans(algorithm='lloyd')``, up to float32 rounding: the
    engine computes in float32 whatever the dtype of X.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters to form, and of centres to find.

    init : {'k-means++', 'random'}, callable or array-like, default='k-means++'
        How the initial centres are chosen:

        - 'k-means++': D^2 sampling (Arthur and Vassilvitskii, 2007): each new
          centre is a point drawn with probability proportional to its weight
          times its squared distance to the nearest centre chosen so far. It
          runs on the engine (on the backend, so on the GPU when there is one)
          when the points are unweighted, and in numpy for weighted points.
          scikit-learn's greedy variant (several candidates per step) is not
          used, so the centres differ from scikit-learn's for the same
          ``random_state``.
        - 'random': ``n_clusters`` distinct rows of X, drawn with probability
          proportional to their weight.
        - an array of shape (n_clusters, n_features): the initial centres.
        - a callable: ``init(X, n_clusters, random_state)`` returns the
          initial centres.

    n_init : 'auto' or int, default='auto'
        Number of runs from different initial centres; the run of lowest
        inertia is kept. 'auto' means 10 runs for ``init='random'`` or a
        callable and 1 for 'k-means++' or an array, as in scikit-learn. An
        array ``init`` always gives one run (with a RuntimeWarning when
        ``n_init`` asks for more).

    max_iter : int, default=300
        Maximum number of Lloyd iterations of one run.

    tol : float, default=1e-4
        Relative tolerance, as in scikit-learn: a run stops once the squared
        Frobenius norm of the change of the centres in one iteration is at most
        ``tol`` times the mean of the per-feature variances of X. A run also
        stops once an iteration leaves every label unchanged (strict
        convergence), whatever ``tol``.

        A run is one engine call: the engine applies this rule between its
        iterations (on a GPU, X is copied to the device once per run), and
        labels the training points with the final centres.

    verbose : int, default=0
        When > 0, prints one line per iteration (objective at the assignment,
        unweighted as FAISS reports it, and the centre shift) and how each run
        ended, once the run has returned.

    random_state : int, RandomState instance or None, default=None
        Determines the initial centres (for 'k-means++', 'random' and a
        callable). An int makes the results deterministic.

    copy_x : bool, default=True
        Accepted for scikit-learn compatibility, with no effect: X is never
        modified, so what ``copy_x=True`` guarantees always holds, and no
        copy is made for it (X is converted to float32 for the engine unless
        it is C-contiguous float32 already).

    algorithm : {'lloyd', 'elkan'}, default='lloyd'
        Both run Lloyd's algorithm. 'elkan', as in scikit-learn, skips the
        distances that bounds prove useless: on the CPU backend it turns on
        the engine's exact pruning (``flashkmeans.Kmeans(prune=True)``: the
        same labels except counted near-ties); on CUDA, where the engine does
        not prune yet, it runs as 'lloyd'.

    backend : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the engine runs: 'auto' takes a CUDA GPU when one is visible.

    device : int or None, default=None
        CUDA device ordinal (None: device 0).

    dtype : {'float32', 'float16', 'bfloat16'}, default='float32'
        The type the points are converted to for the assignment on a GPU
        (centres stay float32). The CPU backend computes in float32 only:
        'float16' and 'bfloat16' raise ValueError there.

    precision : {'exact', 'tf32'}, default='exact'
        'tf32' lets the GPU assignment of float32 points use TF32 tensor cores.

    cpu_kernel : {'auto', 'fused', 'faiss'}, default='auto'
        The CPU backend's assignment kernel. 'fused': flashkmeans' FMA
        micro-kernel with the argmin fused (x86-64 with AVX2 and FMA), exact
        to float rounding, and with algorithm='elkan' bitwise the 'lloyd'
        run. 'faiss': faiss's own sgemm calls, bitwise faiss.Kmeans's
        results. 'auto': 'fused' where the CPU runs it, else 'faiss'. With
        the CUDA backend only 'auto' is accepted.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centres, in the dtype of X (float64 or float32).

    labels_ : ndarray of shape (n_samples,), dtype=int32
        The index of the nearest centre of each training point: the same as
        ``predict(X)`` for the training X.

    inertia_ : float
        Sum of the (weighted) squared distances of the training points to
        their nearest centre.

    n_iter_ : int
        Number of iterations of the kept run.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit; only when X has string column
        names (a DataFrame).

    See Also
    --------
    flashkmeans.Kmeans : faiss.Kmeans's interface to the same engine.
    sklearn.cluster.KMeans : the estimator whose interface this follows.

    Examples
    --------
    >>> import numpy as np
    >>> from flashkmeans import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0, backend="cpu").fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> bool((km.predict([[0, 0], [12, 3]]) == km.labels_[[0, 3]]).all())
    True
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Union[str, Callable[..., npt.ArrayLike], npt.ArrayLike] = "k-means++",
        n_init: Union[str, int] = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: int = 0,
        random_state: Union[int, np.random.RandomState, None] = None,
        copy_x: bool = True,
        algorithm: str = "lloyd",
        backend: str = "auto",
        device: Optional[int] = None,
        dtype: str = "float32",
        precision: str = "exact",
        cpu_kernel: str = "auto",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.precision = precision
        self.cpu_kernel = cpu_kernel

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # transform() returns distances in the dtype of X and of the centres
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -- fitting ------------------------------------------------------------------------

    @_fit_parameters
    def fit(self, X: npt.ArrayLike, y: Any = None,
            sample_weight: Union[npt.ArrayLike, float, None] = None) -> KMeans:
        """Compute the k-means clustering of X.

        Parameters
        ----------
        FIT_PARAMETERS

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C")
        n, d = X.shape
        k, n_init, max_iter, tol = self._checked_params(n)
        init = self.init
        if not (isinstance(init, str) or callable(init)):
            init = self._checked_centres(init, X, "init")
        w = self._checked_weights(sample_weight, n)
        random_state = check_random_state(self.random_state)
        opts = self._engine_options()
        x32 = np.ascontiguousarray(X, dtype=np.float32)
        w32 = None if w is None else np.ascontiguousarray(w, dtype=np.float32)
        tol_abs = self._absolute_tol(X, tol)

        best = None
        for run in range(n_init):
            if self.verbose:
                print(f"Run {run + 1} of {n_init}", flush=True)
            centres, labels, n_iter = self._run(init, X, x32, w, w32, k, random_state, max_iter,
                                                tol_abs, opts)
            inertia = _inertia(X, w, centres, labels)
            if best is None or inertia < best[2]:
                best = (centres, labels, inertia, n_iter)
        centres, labels, inertia, n_iter = best

        distinct = np.unique(labels).size
        if distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than "
                f"n_clusters ({k}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.cluster_centers_ = centres.astype(X.dtype)
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self._n_init = n_init
        self._n_features_out = k
        return self

    @_fit_parameters
    def fit_predict(self, X: npt.ArrayLike, y: Any = None,
                    sample_weight: Union[npt.ArrayLike, float, None] = None
                    ) -> npt.NDArray[np.int32]:
        """Fit on X and return the label of each of its points (``labels_``).

        Parameters
        ----------
        FIT_PARAMETERS

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype=int32
            Index of the nearest centre of each point.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    @_fit_parameters
    def fit_transform(self, X: npt.ArrayLike, y: Any = None,
                      sample_weight: Union[npt.ArrayLike, float, None] = None
                      ) -> npt.NDArray[np.floating]:
        """Fit on X and return its distances to the centres (:meth:`transform`).

        Parameters
        ----------
        FIT_PARAMETERS

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            Euclidean distance of each point to each centre.
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # -- using the centres ------------------------------------------------------------

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Index of the nearest centre of each point of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype=int32
            Index of the nearest centre (the lowest index on exact ties).
        """
        X = self._checked_input(X)
        return self._nearest(np.ascontiguousarray(X, dtype=np.float32),
                             self._engine_centres(), self._engine_options())

    def transform(self, X: npt.ArrayLike) -> npt.NDArray[np.floating]:
        """Euclidean distance of each point of X to each centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to transform.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            ``distances[i, j]`` is the Euclidean (not squared) distance of
            point i to centre j, in the dtype of X.
        """
        X = self._checked_input(X)
        return euclidean_distances(X, self.cluster_centers_)

    def score(self, X: npt.ArrayLike, y: Any = None,
              sample_weight: Union[npt.ArrayLike, float, None] = None) -> float:
        """Opposite of the inertia of X with respect to the centres.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        y : Ignored
            Not used, present for API consistency by convention.

        sample_weight : array-like of shape (n_samples,), float or None, default=None
            Weight of each point; None gives every point weight 1.

        Returns
        -------
        score : float
            Minus the sum of the (weighted) squared distances of the points to
            their nearest centre: larger is better.
        """
        X = self._checked_input(X)
        w = self._checked_weights(sample_weight, X.shape[0])
        centres = self._engine_centres()
        labels = self._nearest(np.ascontiguousarray(X, dtype=np.float32), centres,
                               self._engine_options())
        return -float(_inertia(X, w, self.cluster_centers_, labels))

    # -- the engine ---------------------------------------------------------------------

    def _engine_options(self):
        opts = {"backend": self.backend, "device": self.device, "dtype": self.dtype,
                "precision": self.precision, "cpu_kernel": self.cpu_kernel}
        _ext.check_options(opts)  # ValueError naming a bad value
        # a scikit-learn user has no use for faiss's bits: the faster kernel
        if (str(self.cpu_kernel).lower() == "auto" and _ext.cpu_fused_assign_available()
                and _ext.resolve_backend(self.backend or "auto") == "cpu"):
            opts["cpu_kernel"] = "fused"
        # Elkan's algorithm is Lloyd's with bounds that skip distances: the
        # engine's exact pruning with bounds, on the CPU backend (the CUDA
        # backend's pruning is the moved-centroid filter, which refuses
        # streamed runs: elkan there runs Lloyd's iterations as they are)
        if self.algorithm == "elkan" and _ext.resolve_backend(self.backend or "auto") == "cpu":
            opts["prune"] = True
        if (_ext_dtype(self.dtype or "float32") != "float32"
                and _ext.resolve_backend(self.backend or "auto") == "cpu"):
            raise ValueError(f"dtype={self.dtype!r} needs the CUDA backend; the CPU backend "
                             "computes in float32")
        return opts

    def _engine_centres(self):
        return np.ascontiguousarray(self.cluster_centers_, dtype=np.float32)

    def _run(self, init, X, x32, w, w32, k, random_state, max_iter, tol_abs, opts):
        """One run, initial centres and Lloyd's iterations in one engine call
        (X goes to the device once): (centres, labels, iterations run)."""
        cp, opts, centres = self._seeding(init, X, x32, w, k, random_state, opts)
        if self.verbose:
            print("Initialization complete", flush=True)
        _flush()
        new, stats, labels, shifts, stop, _ = _ext.train_clustering(
            x32, "float32", k, "l2", dict(cp, niter=max_iter), opts, w32, centres, tol=tol_abs)
        if self.verbose:
            _print_iterations(stats, shifts, stop, tol_abs)
        # n_samples == n_clusters has no assignment: the points are the centres
        labels = labels.astype(np.int32) if labels.size else self._nearest(x32, new, opts)
        return new, labels, len(stats)

    def _seeding(self, init, X, x32, w, k, random_state, opts):
        """How a run starts: (engine fields, engine options, initial centres
        or None when the engine seeds them itself)."""
        if isinstance(init, str) and init == "k-means++" and (w is None or np.all(w == w[0])):
            # the engine's D^2 sampling (draws from std::mt19937_64(seed + 1))
            seed = int(random_state.randint(0, 2**31 - 2))
            return dict(_ITERATIONS, seed=seed), dict(opts, init="kmeans++"), None
        return _ITERATIONS, opts, self._given_centres(init, X, x32, w, k, random_state)

    @staticmethod
    def _nearest(x32, centres, opts):
        """Index of the nearest centre of each row of x32, by the engine."""
        n = x32.shape[0]
        distances = np.empty(n, dtype=np.float32)
        labels = np.empty(n, dtype=np.int64)
        _flush()
        _ext.assign(x32, "float32", np.ascontiguousarray(centres, dtype=np.float32), "l2",
                    distances, labels, opts)
        return labels.astype(np.int32)

    # -- initial centres -------------------------------------------------------------------

    def _initial_centres(self, init, X, x32, w, w32, k, random_state, opts):
        """(k, d) float32 initial centres for one run, as fit starts from them."""
        cp, opts, centres = self._seeding(init, X, x32, w, k, random_state, opts)
        if centres is None:
            centres, *_ = _ext.train_clustering(x32, "float32", k, "l2", dict(cp, niter=0),
                                                opts, w32, None)
        return centres

    def _given_centres(self, init, X, x32, w, k, random_state):
        """(k, d) float32 initial centres chosen here, not by the engine."""
        if isinstance(init, str):
            if init == "random":
                p = None if w is None else w / w.sum()
                rows = random_state.choice(X.shape[0], size=k, replace=False, p=p)
                return np.ascontiguousarray(x32[rows])
            return _weighted_kmeanspp(X, w, k, random_state).astype(np.float32)
        if callable(init):
            init = self._checked_centres(init(X, k, random_state=random_state), X, "init callable")
        return np.ascontiguousarray(init, dtype=np.float32)

    # -- checks --------------------------------------------------------------------------

    def _checked_params(self, n):
        """(n_clusters, n_init, max_iter, tol), checked; ValueError or
        TypeError name the bad parameter."""
        k = _integer(self.n_clusters, "n_clusters", 1)
        if n < k:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
        max_iter = _integer(self.max_iter, "max_iter", 1)
        tol = self.tol
        if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not tol >= 0:
            raise ValueError(f"tol must be a float >= 0, got {self.tol!r}")
        if self.algorithm not in ("lloyd", "elkan"):
            raise ValueError(f"algorithm must be 'lloyd' or 'elkan', got {self.algorithm!r}")
        init = self.init
        if isinstance(init, str) and init not in ("k-means++", "random"):
            raise ValueError(
                f"init must be 'k-means++', 'random', a callable or an array of shape "
                f"(n_clusters, n_features), got {init!r}")
        given_centres = not (isinstance(init, str) or callable(init))
        if isinstance(self.n_init, str):
            if self.n_init != "auto":
                raise ValueError(f"n_init must be 'auto' or an int >= 1, got {self.n_init!r}")
            # scikit-learn's 'auto': one run where the seeding is already careful
            n_init = 1 if given_centres or init == "k-means++" else 10
        else:
            n_init = _integer(self.n_init, "n_init", 1)
        if given_centres and n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{type(self).__name__} instead of n_init={n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            n_init = 1
        return k, n_init, max_iter, float(self.tol)

    def _checked_centres(self, centres, X, what):
        centres = check_array(centres, dtype=X.dtype, copy=True, order="C", input_name=what)
        expected = (_integer(self.n_clusters, "n_clusters", 1), X.shape[1])
        if centres.shape != expected:
            raise ValueError(
                f"{what}: the initial centres have shape {centres.shape}, expected "
                f"(n_clusters, n_features) = {expected}")
        return centres

    @staticmethod
    def _checked_weights(sample_weight, n):
        """float64 weights of shape (n,), or None for unit weights."""
        if sample_weight is None:
            return None
        if isinstance(sample_weight, numbers.Number):
            w = np.full(n, sample_weight, dtype=np.float64)
        else:
            w = check_array(sample_weight, ensure_2d=False, dtype=np.float64, copy=True,
                            input_name="sample_weight")
            if w.ndim != 1:
                raise ValueError(f"sample_weight must be 1-D, got shape {w.shape}")
            if w.shape[0] != n:
                raise ValueError(f"sample_weight has {w.shape[0]} values, X has {n} samples")
        if not np.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
            raise ValueError("sample_weight must be finite, >= 0 and not all zero")
        return w

    def _checked_input(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=False)

    @staticmethod
    def _absolute_tol(X, tol):
        """scikit-learn's tol in X's units: tol times the mean per-feature variance."""
        if tol == 0:
            return 0.0
        return float(np.mean(np.var(X, axis=0, dtype=np.float64)) * tol)


def _print_iterations(stats, shifts, stop, tol_abs):
    """The verbose lines of a run, once the engine has returned."""
    for i, (s, shift) in enumerate(zip(stats, shifts)):
        print(f"Iteration {i}: objective {s[0]:.8g}, centre shift {shift:.8g}", flush=True)
    last = len(stats) - 1
    if stop == "unchanged":
        print(f"Converged at iteration {last}: strict convergence.", flush=True)
    elif stop == "tol":
        print(f"Converged at iteration {last}: centre shift {shifts[-1]:.8g} within "
              f"tolerance {tol_abs:.8g}.", flush=True)


def _integer(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _inertia(X, w, centres, labels):
    """Sum of w_i ||x_i - centre(label_i)||^2 in float64, a chunk of rows at a time."""
    centres = np.asarray(centres, dtype=np.float64)
    total = 0.0
    for i0 in range(0, X.shape[0], _CHUNK):
        diff = X[i0 : i0 + _CHUNK].astype(np.float64) - centres[labels[i0 : i0 + _CHUNK]]
        sq = np.einsum("ij,ij->i", diff, diff)
        total += float(sq.sum() if w is None else sq @ w[i0 : i0 + _CHUNK])
    return total


def _weighted_kmeanspp(X, w, k, random_state):
    """D^2 sampling with weights: the first centre drawn with probability
    proportional to w, each next one proportional to w times the squared
    distance to the nearest centre so far. (k, d) float64 centres."""
    x = np.asarray(X, dtype=np.float64)
    centres = np.empty((k, x.shape[1]))

    def sq_dist(c):
        # from the differences, so a point already chosen has exactly 0
        diff = x - c
        return np.einsum("ij,ij->i", diff, diff)

    row = random_state.choice(x.shape[0], p=w / w.sum())
    centres[0] = x[row]
    closest = sq_dist(centres[0])
    for j in range(1, k):
        potential = np.cumsum(w * closest)
        if potential[-1] > 0:
            draw = random_state.uniform() * potential[-1]
            row = int(np.searchsorted(potential, draw, side="right"))
            # u * total rounding up to total would step past the last candidate
            row = min(row, int(np.flatnonzero(w * closest > 0)[-1]))
        else:  # every weighted point already is a centre
            row = random_state.choice(x.shape[0], p=w / w.sum())
        centres[j] = x[row]
        closest = np.minimum(closest, sq_dist(centres[j]))
    return centres
