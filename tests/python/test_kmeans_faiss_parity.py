"""flashkmeans.Kmeans reproduces faiss.Kmeans on the CPU: with the same seed
(same subsample, same initial centroids) the assignments are equal and the
centroids and per-iteration objectives agree to float rounding (1e-5 rel)."""

import numpy as np
import pytest

import flashkmeans

faiss = pytest.importorskip("faiss")

RTOL = 1e-5


def assert_centroids_close(a, b):
    scale = float(np.abs(b).max())
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)


def run_both(x, k, train_kwargs=None, **kwargs):
    train_kwargs = train_kwargs or {}
    ours = flashkmeans.Kmeans(x.shape[1], k, backend="cpu", **kwargs)
    ref = faiss.Kmeans(x.shape[1], k, **kwargs)
    obj = ours.train(x, **train_kwargs)
    obj_ref = ref.train(x, **train_kwargs)
    return ours, ref, obj, obj_ref


def check_parity(x, ours, ref, obj, obj_ref, obj_atol=0.0):
    assert ours.centroids.shape == ref.centroids.shape
    assert ours.centroids.dtype == np.float32
    assert_centroids_close(ours.centroids, ref.centroids)
    assert len(ours.obj) == len(ref.obj)
    np.testing.assert_allclose(ours.obj, ref.obj, rtol=RTOL, atol=obj_atol)
    assert obj == pytest.approx(obj_ref, rel=RTOL, abs=obj_atol)
    assert [s["nsplit"] for s in ours.iteration_stats] == [s["nsplit"] for s in ref.iteration_stats]
    D, I = ours.assign(x)
    D_ref, I_ref = ref.assign(x)
    np.testing.assert_array_equal(I, I_ref)
    # both compute ||x||^2 + ||c||^2 - 2 x.c: rounding at the scale of ||x||^2
    norm_scale = float((x * x).sum(1).max())
    np.testing.assert_allclose(D, D_ref, rtol=RTOL, atol=RTOL * norm_scale)


def test_parity_default_parameters_gives_same_labels_centroids_and_objectives(make_blobs):
    x = make_blobs(3000, 24, 40, seed=1)
    check_parity(x, *run_both(x, 32, niter=20, seed=123))


def test_parity_with_subsampling_keeps_the_same_points(make_blobs):
    x = make_blobs(4000, 16, 30, seed=2)
    # 32 * 50 = 1600 < 4000: both subsample with FAISS's permutation
    check_parity(x, *run_both(x, 32, niter=10, max_points_per_centroid=50))


def test_parity_weighted(make_blobs, rs):
    x = make_blobs(2000, 8, 20, seed=3)
    w = rs.uniform(0.5, 2.0, size=len(x)).astype(np.float32)
    check_parity(x, *run_both(x, 16, train_kwargs={"weights": w}, niter=10))


def test_parity_nredo_keeps_the_same_best_run(make_blobs):
    x = make_blobs(2000, 8, 20, seed=4)
    check_parity(x, *run_both(x, 16, niter=8, nredo=3))


def test_parity_spherical_uses_inner_product(make_blobs):
    x = make_blobs(2000, 16, 20, seed=5)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ours, ref, obj, obj_ref = run_both(x, 16, niter=10, spherical=True)
    assert ours.index.metric_type == faiss.METRIC_INNER_PRODUCT
    check_parity(x, ours, ref, obj, obj_ref)


def test_parity_int_centroids(rs):
    x = rs.randint(0, 50, size=(2000, 8)).astype(np.float32)
    check_parity(x, *run_both(x, 16, niter=10, int_centroids=True))


def test_parity_frozen_init_centroids(make_blobs):
    x = make_blobs(2000, 8, 20, seed=6)
    init = x[:5] + 0.01
    ours, ref, obj, obj_ref = run_both(x, 16, train_kwargs={"init_centroids": init}, niter=10,
                                       frozen_centroids=True)
    np.testing.assert_array_equal(ours.centroids[:5], init)
    check_parity(x, ours, ref, obj, obj_ref)


def test_parity_empty_clusters_are_split_as_faiss_does():
    # duplicated points: duplicated initial centroids, so clusters start empty
    # and are split (FAISS's RNG, same donors). Fewer than 20 points keep
    # FAISS on its exact (non-BLAS) distance path, so equal centroids tie
    # exactly on both sides.
    rs = np.random.RandomState(2)
    c = rs.randn(4, 3) * 3
    base = (c[rs.randint(4, size=10)] + 0.05 * rs.randn(10, 3)).astype(np.float32)
    x = np.concatenate([base, base[:9]])
    ours, ref, obj, obj_ref = run_both(x, 8, niter=6)
    assert sum(s["nsplit"] for s in ref.iteration_stats) >= 2
    # distances from norms (||x||^2 + ||c||^2 - 2 x.c) round at the scale of
    # ||x||^2, far above these tiny final distances
    obj_atol = 1e-6 * float((x * x).sum())
    check_parity(x, ours, ref, obj, obj_ref, obj_atol=obj_atol)


@pytest.mark.skipif(not hasattr(faiss.ClusteringParameters(), "early_stop_threshold"),
                    reason="faiss < 1.14.2 has no early stopping")
def test_parity_stops_when_the_objective_is_unchanged_as_faiss_does(make_blobs):
    # faiss >= 1.14.2 ends a run at a fixed point (early_stop_threshold=0)
    x = make_blobs(2000, 8, 8, seed=7)
    ours, ref, obj, obj_ref = run_both(x, 8, niter=50)
    assert len(ref.obj) < 50
    check_parity(x, ours, ref, obj, obj_ref)
    # a negative threshold runs every iteration (FAISS 1.7.3's loop)
    ours, ref, obj, obj_ref = run_both(x, 8, niter=30, early_stop_threshold=-1.0)
    assert len(ours.obj) == 30
    check_parity(x, ours, ref, obj, obj_ref)


def test_index_is_a_faiss_index_holding_the_centroids(make_blobs):
    x = make_blobs(1000, 8, 10)
    km = flashkmeans.Kmeans(8, 10, niter=5)
    km.train(x)
    assert isinstance(km.index, faiss.IndexFlatL2)
    assert km.index.ntotal == 10
    np.testing.assert_array_equal(km.index.reconstruct_n(0, 10), km.centroids)
    D, I = km.index.search(x, 1)
    D2, I2 = km.assign(x)
    np.testing.assert_array_equal(I[:, 0], I2)


def test_stats_have_faiss_fields():
    x = np.random.RandomState(0).rand(500, 4).astype(np.float32)
    ours = flashkmeans.Kmeans(4, 5, niter=3)
    ref = faiss.Kmeans(4, 5, niter=3)
    ours.train(x)
    ref.train(x)
    assert [sorted(s) for s in ours.iteration_stats] == [sorted(s) for s in ref.iteration_stats]
    assert type(ours.obj) is type(ref.obj) and ours.obj.dtype == ref.obj.dtype
