"""flashkmeans.batch_kmeans: B problems in one call equal B separate runs."""

import numpy as np
import pytest

import flashkmeans


@pytest.fixture
def xb(make_blobs):
    return np.stack([make_blobs(500, 8, 12, seed=s) for s in range(4)])


def test_batch_equals_separate_runs_with_the_same_init(xb, rs):
    B, n, d = xb.shape
    k = 10
    init = np.stack([x[rs.choice(n, k, replace=False)] for x in xb])
    labels, centroids, objective = flashkmeans.batch_kmeans(xb, k, niter=8, init_centroids=init)
    assert labels.shape == (B, n) and labels.dtype == np.int64
    assert centroids.shape == (B, k, d) and centroids.dtype == np.float32
    assert objective.shape == (B,)
    for b in range(B):
        one = flashkmeans.batch_kmeans(xb[b : b + 1], k, niter=8, init_centroids=init[b : b + 1])
        np.testing.assert_array_equal(one.labels[0], labels[b])
        np.testing.assert_array_equal(one.centroids[0], centroids[b])
        assert one.objective[0] == objective[b]
        # and the same as Kmeans given all k initial centroids (no subsampling)
        km = flashkmeans.Kmeans(d, k, niter=8, max_points_per_centroid=10**6,
                                early_stop_threshold=-1)
        km.train(xb[b], init_centroids=init[b])
        np.testing.assert_array_equal(km.centroids, centroids[b])
        assert km.obj[-1] == pytest.approx(objective[b], rel=1e-6)


def test_batch_seeding_is_faiss_seeding(xb):
    # default init: rows of rand_perm(n, seed + 1), as faiss.Kmeans / Kmeans
    res = flashkmeans.batch_kmeans(xb, 10, niter=5, seed=77)
    for b in range(len(xb)):
        km = flashkmeans.Kmeans(8, 10, niter=5, seed=77, max_points_per_centroid=10**6,
                                early_stop_threshold=-1)
        km.train(xb[b])
        np.testing.assert_array_equal(km.centroids, res.centroids[b])
        np.testing.assert_allclose(res.history[b], km.obj, rtol=1e-6)


def test_history_and_objective(xb):
    res = flashkmeans.batch_kmeans(xb, 10, niter=6)
    labels, centroids, objective = res
    assert res.history.shape == (4, 6) and res.history.dtype == np.float64
    np.testing.assert_array_equal(objective, res.history[:, -1])
    assert np.all(np.diff(res.history, axis=1) <= 1e-6 * res.history[:, :1])
    assert res.labels is labels and res.centroids is centroids


def test_shared_init_centroids_broadcast(xb):
    init = xb[0, :10].copy()
    a = flashkmeans.batch_kmeans(xb, 10, niter=3, init_centroids=init)
    b = flashkmeans.batch_kmeans(xb, 10, niter=3, init_centroids=np.broadcast_to(init, (4, 10, 8)))
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_niter_zero_returns_the_initial_centroids_and_their_labels(xb):
    init = xb[:, :10].copy()
    labels, centroids, objective = flashkmeans.batch_kmeans(xb, 10, niter=0, init_centroids=init)
    np.testing.assert_array_equal(centroids, init)
    full = ((xb[:, :, None, :] - init[:, None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, full.argmin(-1))
    np.testing.assert_array_equal(objective, 0)


def test_inner_product_spherical(xb):
    labels, centroids, _ = flashkmeans.batch_kmeans(xb, 10, niter=5, metric="ip", spherical=True)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=-1), 1, rtol=1e-5)


def test_float64_and_strided_inputs(xb):
    ref = flashkmeans.batch_kmeans(xb, 10, niter=3)
    a = flashkmeans.batch_kmeans(xb.astype(np.float64), 10, niter=3)
    np.testing.assert_array_equal(a.centroids, ref.centroids)
    wide = np.zeros((4, 500, 16), dtype=np.float32)
    wide[..., ::2] = xb
    b = flashkmeans.batch_kmeans(wide[..., ::2], 10, niter=3)
    np.testing.assert_array_equal(b.centroids, ref.centroids)


def test_bad_inputs_raise(xb):
    with pytest.raises(ValueError, match="shape"):
        flashkmeans.batch_kmeans(xb[0], 10)
    with pytest.raises(ValueError, match="at least as large"):
        flashkmeans.batch_kmeans(xb[:, :5], 10)
    with pytest.raises(ValueError, match="k must be"):
        flashkmeans.batch_kmeans(xb, 0)
    with pytest.raises(ValueError, match="niter"):
        flashkmeans.batch_kmeans(xb, 3, niter=-1)
    with pytest.raises(ValueError, match="metric"):
        flashkmeans.batch_kmeans(xb, 3, metric="cosine")
    with pytest.raises(ValueError, match="option"):
        flashkmeans.batch_kmeans(xb, 3, nitre=4)
    with pytest.raises(TypeError, match="int64"):
        flashkmeans.batch_kmeans(xb.astype(np.int64), 3)
    with pytest.raises(ValueError, match="init_centroids"):
        flashkmeans.batch_kmeans(xb, 3, init_centroids=np.zeros((2, 3, 8), np.float32))
    y = xb.copy()
    y[2, 10, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        flashkmeans.batch_kmeans(y, 3)
