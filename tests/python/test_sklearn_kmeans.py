"""flashkmeans.KMeans, the scikit-learn estimator: scikit-learn's own
estimator checks, agreement with sklearn.cluster.KMeans(algorithm='lloyd')
from the same initial centres, tol's meaning, n_init, sample weights, and use
inside Pipeline and GridSearchCV. Skipped without scikit-learn."""

import pydoc
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn  # noqa: E402
from sklearn.cluster import KMeans as SklearnKMeans  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import flashkmeans  # noqa: E402
from flashkmeans import KMeans  # noqa: E402
from flashkmeans import sklearn_kmeans  # noqa: E402

from conftest import blobs  # noqa: E402

# The one check sklearn.cluster.KMeans also fails (scikit-learn marks it
# expected-to-fail for its own KMeans, MiniBatchKMeans, ...): weight 2 is not
# the same as a repeated point because the initial centres are drawn from a
# different random sequence when n_samples differs.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "the random initial centres depend on n_samples, so integer weights and "
        "repeated points start elsewhere (as for sklearn.cluster.KMeans)"
    ),
}


@parametrize_with_checks([KMeans()], expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_passes_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # the checks fit n_clusters=8 on data with fewer distinct points
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        check(estimator)


@pytest.fixture
def x():
    return blobs(3000, 6, 10, seed=3, spread=0.4).astype(np.float64)


def initial_centres(x, k, seed=0):
    return x[np.random.RandomState(seed).choice(len(x), k, replace=False)].copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_inertia_as_sklearn_lloyd_from_the_same_initial_centres(x, dtype, weighted):
    x = x.astype(dtype)
    c0 = initial_centres(x, 12)
    w = np.random.RandomState(1).uniform(0.5, 2.0, len(x)) if weighted else None
    ours = KMeans(12, init=c0, n_init=1).fit(x, sample_weight=w)
    ref = SklearnKMeans(12, init=c0, n_init=1, algorithm="lloyd").fit(x, sample_weight=w)
    # the engine computes in float32 whatever the dtype of X
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.cluster_centers_.dtype == dtype


@pytest.mark.parametrize("tol", [0.0, 1e-4, 1e-2, 0.3])
def test_tol_stops_where_sklearn_stops(x, tol):
    c0 = initial_centres(x, 16, seed=2)
    ours = KMeans(16, init=c0, n_init=1, tol=tol).fit(x)
    ref = SklearnKMeans(16, init=c0, n_init=1, tol=tol, algorithm="lloyd").fit(x)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)


def test_tol_is_relative_to_the_mean_feature_variance(x):
    # scaling X scales the variances and the centre shifts alike: same run
    c0 = initial_centres(x, 16, seed=2)
    runs = [KMeans(16, init=c0 * s, n_init=1, tol=1e-2).fit(x * s) for s in (1.0, 1000.0)]
    assert runs[0].n_iter_ == runs[1].n_iter_
    assert 1 < runs[0].n_iter_ < KMeans(16, init=c0, n_init=1, tol=0).fit(x).n_iter_
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)


class CountingEngine:
    """The extension module, counting the calls that take the points."""

    def __init__(self, ext):
        self._ext = ext
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self._ext, name)
        if name in ("train_clustering", "assign"):
            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)
            return counted
        return attr


@pytest.mark.parametrize("init, n_init, calls", [
    ("k-means++", 1, 1), ("random", 3, 3), ("array", 1, 1), ("weighted k-means++", 1, 1)])
def test_fit_makes_one_engine_call_per_run(x, monkeypatch, init, n_init, calls):
    engine = CountingEngine(sklearn_kmeans._ext)
    monkeypatch.setattr(sklearn_kmeans, "_ext", engine)
    w = None
    if init == "array":
        init = x[:5]
    elif init == "weighted k-means++":
        init, w = "k-means++", np.arange(len(x)) % 3
    km = KMeans(5, init=init, n_init=n_init, random_state=0, tol=0, backend="cpu")
    km.fit(x, sample_weight=w)
    assert km.n_iter_ > 2  # several iterations, in one call each run
    assert engine.calls == ["train_clustering"] * calls


def chained_one_iteration_calls(x, c0, max_iter, tol_abs, w=None):
    """The estimator's former fit: one engine call per Lloyd iteration, each
    from the centres the previous one returned, stopping on unchanged labels
    or a centre shift within tol_abs; labels by a final assignment."""
    ext = sklearn_kmeans._ext
    one = {"niter": 1, "max_points_per_centroid": 2**31 - 1, "min_points_per_centroid": 0}
    opts = {"backend": "cpu"}
    centres, previous, n_iter = c0, None, 0
    for i in range(max_iter):
        new, _, labels, *_ = ext.train_clustering(x, "float32", len(c0), "l2", one, opts, w,
                                                  centres)
        n_iter = i + 1
        shift = float(np.square(new.astype(np.float64) - centres).sum())
        unchanged = previous is not None and np.array_equal(labels, previous)
        centres, previous = new, labels
        if unchanged or shift <= tol_abs:
            break
    distances, nearest = np.empty(len(x), np.float32), np.empty(len(x), np.int64)
    ext.assign(x, "float32", centres, "l2", distances, nearest, opts)
    return centres, nearest, n_iter


@pytest.mark.parametrize("tol", [0.0, 1e-4, 1e-2, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_call_run_equals_one_call_per_iteration(x, tol, weighted):
    x = x.astype(np.float32)
    c0 = initial_centres(x, 40).astype(np.float32)
    w = np.random.RandomState(1).uniform(0.5, 2.0, len(x)) if weighted else None
    ours = KMeans(40, init=c0, n_init=1, tol=tol, backend="cpu").fit(x, sample_weight=w)
    tol_abs = KMeans._absolute_tol(x, tol)
    w32 = None if w is None else w.astype(np.float32)
    centres, labels, n_iter = chained_one_iteration_calls(x, c0, 300, tol_abs, w32)
    assert ours.n_iter_ == n_iter
    np.testing.assert_array_equal(ours.cluster_centers_, centres)
    np.testing.assert_array_equal(ours.labels_, labels)


@pytest.mark.parametrize("max_iter", [1, 2, 5])
def test_max_iter_runs_exactly_that_many_iterations_like_faiss(x, max_iter):
    x = x.astype(np.float32)
    c0 = initial_centres(x, 40).astype(np.float32)
    ours = KMeans(40, init=c0, n_init=1, max_iter=max_iter, tol=0, backend="cpu").fit(x)
    assert ours.n_iter_ == max_iter
    engine = flashkmeans.Kmeans(6, 40, niter=max_iter, max_points_per_centroid=10**6,
                                early_stop_threshold=-1, backend="cpu")
    engine.train(x, init_centroids=c0)
    np.testing.assert_array_equal(ours.cluster_centers_, engine.centroids)


def test_kmeanspp_in_the_run_call_starts_from_the_seeding_alone(x):
    # the one-call run seeds as the engine's seeding-only call does
    x32 = x.astype(np.float32)
    km = KMeans(9, random_state=5, max_iter=1, tol=0, backend="cpu")
    c0 = km._initial_centres("k-means++", x, x32, None, None, 9, np.random.RandomState(5),
                             km._engine_options())
    km.fit(x32)
    centres, _, _ = chained_one_iteration_calls(x32, c0, 1, 0.0)
    np.testing.assert_array_equal(km.cluster_centers_, centres)


def test_labels_are_predict_of_the_training_points_and_score_is_minus_inertia(x):
    km = KMeans(7, random_state=0).fit(x)
    np.testing.assert_array_equal(km.labels_, km.predict(x))
    assert km.labels_.dtype == np.int32
    assert km.score(x) == pytest.approx(-km.inertia_, rel=1e-12)
    d2 = ((x[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    assert km.inertia_ == pytest.approx(d2.min(1).sum(), rel=1e-10)
    w = np.arange(len(x)) % 3
    assert km.score(x, sample_weight=w) == pytest.approx(-(d2.min(1) * w).sum(), rel=1e-10)


def test_transform_is_the_euclidean_distance_to_each_centre(x):
    km = KMeans(5, random_state=0)
    t = km.fit_transform(x)
    expected = np.sqrt(((x[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(t, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(km.transform(x), t)
    np.testing.assert_array_equal(t.argmin(1), km.labels_)
    assert list(km.get_feature_names_out()) == [f"kmeans{j}" for j in range(5)]


def test_fit_predict_equals_fit_then_labels(x):
    a = KMeans(6, random_state=3).fit_predict(x)
    np.testing.assert_array_equal(a, KMeans(6, random_state=3).fit(x).labels_)


def test_float32_input_keeps_float32(x):
    km = KMeans(4, random_state=0).fit(x.astype(np.float32))
    assert km.cluster_centers_.dtype == np.float32
    assert km.transform(x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_random_state_makes_the_fit_deterministic_and_finds_the_blobs(init):
    x = blobs(2000, 5, 6, seed=7, spread=0.05)
    truth = KMeans(6, init=init, n_init=10, random_state=0).fit(x)
    again = KMeans(6, init=init, n_init=10, random_state=0).fit(x)
    np.testing.assert_array_equal(truth.cluster_centers_, again.cluster_centers_)
    # the blobs' own labels, drawn as conftest.blobs draws them
    rs = np.random.RandomState(7)
    rs.randn(6, 5)
    assert adjusted_rand_score(rs.randint(6, size=2000), truth.labels_) > 0.99
    assert truth.inertia_ < 2000 * 5 * 0.05**2 * 1.5


def test_n_init_keeps_the_run_of_lowest_inertia(x):
    starts = []

    def record(X, n_clusters, random_state):
        starts.append(X[random_state.choice(len(X), n_clusters, replace=False)])
        return starts[-1]

    best = KMeans(20, init=record, n_init=6, random_state=0).fit(x)
    assert len(starts) == 6
    single = [KMeans(20, init=c, n_init=1).fit(x).inertia_ for c in starts]
    assert best.inertia_ == min(single)
    assert len(set(single)) > 1  # the runs really differ


@pytest.mark.parametrize("init, runs", [("k-means++", 1), ("random", 10), ("callable", 10),
                                        ("array", 1)])
def test_n_init_auto_is_scikit_learns(x, init, runs):
    if init == "callable":
        init = lambda X, k, random_state: X[:k]  # noqa: E731
    elif init == "array":
        init = x[:3]
    km = KMeans(3, init=init, random_state=0).fit(x)
    assert km._n_init == runs


def test_initial_centres_with_n_init_above_one_warn_and_run_once(x):
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        km = KMeans(3, init=x[:3], n_init=4).fit(x)
    assert km._n_init == 1


def test_integer_weights_equal_repeated_points(x):
    w = np.random.RandomState(0).randint(0, 4, len(x))
    c0 = initial_centres(x[w > 0], 8)
    weighted = KMeans(8, init=c0, n_init=1).fit(x, sample_weight=w)
    repeated = KMeans(8, init=c0, n_init=1).fit(np.repeat(x, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-5,
                               atol=1e-6)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-5)
    np.testing.assert_array_equal(weighted.predict(x), repeated.predict(x))


def test_unit_weights_equal_no_weights(x):
    a = KMeans(8, random_state=0).fit(x)
    b = KMeans(8, random_state=0).fit(x, sample_weight=np.ones(len(x)))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


@pytest.mark.parametrize("init", ["k-means++", "random"])
@pytest.mark.parametrize("weighted", [False, True])
def test_initial_centres_are_distinct_points_of_positive_weight(rs, init, weighted):
    x = rs.rand(300, 2)
    x32 = x.astype(np.float32)
    w = np.where(np.arange(300) % 2 == 0, 1.0, 0.0) if weighted else None
    w32 = None if w is None else w.astype(np.float32)
    km = KMeans(10, init=init)
    for seed in range(5):
        c = km._initial_centres(init, x, x32, w, w32, 10, np.random.RandomState(seed),
                                km._engine_options())
        rows = [np.flatnonzero((x32 == ci).all(1)) for ci in c]
        assert all(len(r) == 1 for r in rows)
        assert len({int(r[0]) for r in rows}) == 10
        if weighted:
            assert all(w[r[0]] > 0 for r in rows)


def test_weighted_kmeanspp_draws_far_points(rs):
    # two tight groups far apart: the second centre lands in the other group
    x = np.vstack([rs.rand(100, 2) * 0.01, 100 + rs.rand(100, 2) * 0.01])
    w = np.ones(200)
    for seed in range(5):
        c = sklearn_kmeans._weighted_kmeanspp(x, w, 2, np.random.RandomState(seed))
        assert (c[:, 0] > 50).sum() == 1


@pytest.mark.parametrize("weights, message", [
    (np.ones(5), "5 values"),
    (np.ones((3000, 1)), "1-D"),
    (-np.ones(3000), ">= 0"),
    (np.zeros(3000), "not all zero"),
])
def test_bad_sample_weight_raises(x, weights, message):
    with pytest.raises(ValueError, match=message):
        KMeans(3).fit(x, sample_weight=weights)


@pytest.mark.parametrize("params, message", [
    (dict(n_clusters=0), "n_clusters"),
    (dict(n_clusters=2.5), "n_clusters"),
    (dict(n_init=0), "n_init"),
    (dict(n_init="sometimes"), "n_init"),
    (dict(max_iter=0), "max_iter"),
    (dict(tol=-1.0), "tol"),
    (dict(init="kmeans"), "init"),
    (dict(init=np.zeros((2, 6))), "shape"),
    (dict(init=np.zeros((3, 5))), "shape"),
    (dict(algorithm="full"), "algorithm"),
    (dict(backend="tpu"), "tpu"),
    (dict(precision="fp8"), "fp8"),
    (dict(backend="cpu", dtype="float16"), "needs the CUDA backend"),
])
def test_bad_parameters_raise_at_fit_naming_the_parameter(x, params, message):
    km = KMeans(**dict(dict(n_clusters=3), **params))  # constructing never checks
    with pytest.raises(ValueError, match=message):
        km.fit(x)


def test_more_clusters_than_samples_raises(x):
    with pytest.raises(ValueError, match="n_samples=5 should be >= n_clusters=6"):
        KMeans(6).fit(x[:5])


def test_as_many_samples_as_clusters_puts_a_centre_on_each(x):
    km = KMeans(5, random_state=0).fit(x[:5])
    assert km.inertia_ == 0
    np.testing.assert_array_equal(np.sort(km.labels_), np.arange(5))


def test_verbose_prints_each_iteration(x, capsys):
    KMeans(4, init=x[:4], n_init=1, verbose=1).fit(x)
    out = capsys.readouterr().out
    assert "Initialization complete" in out
    assert "Iteration 0: objective" in out
    assert "Converged at iteration" in out


def test_works_in_a_pipeline(x):
    pipe = Pipeline([("scale", StandardScaler()), ("kmeans", KMeans(4, random_state=0))])
    labels = pipe.fit_predict(x)
    np.testing.assert_array_equal(labels, pipe.predict(x))
    assert pipe.transform(x).shape == (len(x), 4)
    assert pipe.score(x) == pytest.approx(-pipe.named_steps["kmeans"].inertia_, rel=1e-9)
    # and as a transformer followed by another step
    chained = Pipeline([("kmeans", KMeans(4, random_state=0)), ("scale", StandardScaler())])
    assert chained.fit_transform(x).shape == (len(x), 4)


def test_works_in_grid_search(x):
    search = GridSearchCV(KMeans(random_state=0, backend="cpu"),
                          {"n_clusters": [2, 5, 10], "init": ["k-means++", "random"]}, cv=3)
    search.fit(x)
    assert search.best_params_["n_clusters"] == 10  # more centres, lower held-out inertia
    assert isinstance(search.best_estimator_, KMeans)
    assert search.best_estimator_.cluster_centers_.shape == (10, 6)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_get_params_set_params_and_clone_carry_the_flashkmeans_keywords():
    km = KMeans(3, backend="cpu", device=0, dtype="float16", precision="tf32", algorithm="elkan")
    params = km.get_params()
    assert {k: params[k] for k in ("backend", "device", "dtype", "precision")} == dict(
        backend="cpu", device=0, dtype="float16", precision="tf32")
    km.set_params(n_clusters=5, backend="auto")
    copy = clone(km)
    assert copy.get_params() == km.get_params() and copy is not km
    assert copy.n_clusters == 5 and copy.backend == "auto"


def test_feature_names_are_kept_from_a_dataframe(x):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    km = KMeans(3, random_state=0).fit(df)
    assert list(km.feature_names_in_) == [f"f{i}" for i in range(6)]
    assert km.n_features_in_ == 6
    np.testing.assert_array_equal(km.predict(df), km.labels_)
    with pytest.warns(UserWarning, match="feature names"):
        km.predict(x)
    assert not hasattr(KMeans(3, random_state=0).fit(x), "feature_names_in_")


def test_help_shows_every_parameter_and_method():
    text = pydoc.render_doc(KMeans, renderer=pydoc.plaintext)
    for name in KMeans().get_params():
        assert f"{name} :" in text, name
    for method in ("fit", "predict", "fit_predict", "transform", "fit_transform", "score",
                   "get_params", "set_params"):
        assert f"{method}(" in text, method
    for attribute in ("cluster_centers_", "labels_", "inertia_", "n_iter_", "n_features_in_",
                      "feature_names_in_"):
        assert f"{attribute} :" in text, attribute


@pytest.mark.gpu
def test_cuda_backend_matches_cpu_backend(x):
    c0 = initial_centres(x, 10)
    cpu = KMeans(10, init=c0, n_init=1, backend="cpu").fit(x)
    gpu = KMeans(10, init=c0, n_init=1, backend="cuda").fit(x)
    np.testing.assert_array_equal(cpu.labels_, gpu.labels_)
    assert gpu.inertia_ == pytest.approx(cpu.inertia_, rel=1e-5)
    np.testing.assert_array_equal(gpu.labels_, gpu.predict(x))
    kpp = KMeans(10, random_state=0, backend="cuda").fit(x)
    np.testing.assert_array_equal(kpp.labels_, kpp.predict(x))
