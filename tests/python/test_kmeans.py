"""flashkmeans.Kmeans: the behaviours faiss's own clustering tests check, and
faiss.Kmeans's Python surface (kwargs, attributes, index, assign, reset).
None of these need faiss installed."""

import warnings

import numpy as np
import pytest

import flashkmeans
from flashkmeans import kmeans as kmeans_module


def test_objective_decreases(make_blobs):
    x = make_blobs(2000, 16, 30, seed=1)
    km = flashkmeans.Kmeans(16, 32, niter=15, early_stop_threshold=-1)
    obj = km.train(x)
    assert len(km.obj) == 15
    assert np.all(np.diff(km.obj) <= 1e-6 * km.obj[0])
    assert obj == km.obj[-1]


def test_int_centroids_are_integers(rs):
    x = (rs.rand(1000, 8) * 20).astype(np.float32)
    km = flashkmeans.Kmeans(8, 10, niter=5, int_centroids=True)
    km.train(x)
    np.testing.assert_array_equal(km.centroids, np.round(km.centroids))


def test_few_distinct_values_more_clusters_than_values_does_not_crash(rs):
    # 100 points with 5 distinct values, k=10 (faiss test_clustering: empty
    # clusters split again and again)
    x = rs.randint(5, size=(100, 1)).astype(np.float32)
    km = flashkmeans.Kmeans(1, 10, niter=10)
    km.train(x)
    assert np.isfinite(km.centroids).all()
    assert np.isfinite(km.obj).all()


def test_as_many_identical_points_as_clusters(rs):
    x = np.ones((5, 4), dtype=np.float32)
    km = flashkmeans.Kmeans(4, 5)
    km.train(x)
    np.testing.assert_array_equal(km.centroids, x)
    assert len(km.iteration_stats) == 1


def test_weighted_mean_with_one_cluster(rs):
    x = rs.rand(300, 4).astype(np.float32)
    w = rs.rand(300).astype(np.float32) + 0.1
    km = flashkmeans.Kmeans(4, 1, niter=3, max_points_per_centroid=1000)  # no subsampling
    km.train(x, weights=w)
    expected = (x * w[:, None]).sum(0) / w.sum()
    np.testing.assert_allclose(km.centroids[0], expected, rtol=1e-5)


def test_weights_move_centroids_towards_heavy_points(rs):
    x = rs.rand(400, 2).astype(np.float32)
    heavy = x[:, 0] > 0.8
    w = np.where(heavy, 50.0, 1.0).astype(np.float32)
    plain = flashkmeans.Kmeans(2, 4, niter=10)
    plain.train(x)
    weighted = flashkmeans.Kmeans(2, 4, niter=10)
    weighted.train(x, weights=w)
    near_heavy = lambda km: (km.centroids[:, 0] > 0.75).sum()
    assert near_heavy(weighted) > near_heavy(plain)


def test_warm_start_lowers_the_first_objective(make_blobs):
    x = make_blobs(3000, 16, 40, seed=2)
    cold = flashkmeans.Kmeans(16, 32, niter=10)
    cold.train(x)
    warm = flashkmeans.Kmeans(16, 32, niter=10)
    warm.train(x, init_centroids=cold.centroids)
    assert warm.obj[0] < cold.obj[0]
    assert warm.obj[0] <= cold.obj[-1] * (1 + 1e-5)


def test_nredo_keeps_the_best_run(make_blobs):
    x = make_blobs(2000, 8, 25, seed=3)
    redo = flashkmeans.Kmeans(8, 16, niter=8, nredo=3, seed=7, early_stop_threshold=-1)
    redo.train(x)
    # run r of nredo is seeded with seed + 1 + r * 15486557: the same as a
    # single run with seed + r * 15486557 (no subsampling here)
    singles = []
    for r in range(3):
        km = flashkmeans.Kmeans(8, 16, niter=8, seed=7 + r * 15486557, early_stop_threshold=-1)
        singles.append(km.train(x))
    assert redo.obj[-1] == pytest.approx(min(singles), rel=1e-6)
    assert len(redo.obj) == 8 * (int(np.argmin(singles)) + 1)


def test_spherical_gives_unit_norm_centroids(rs):
    x = rs.randn(1000, 8).astype(np.float32)
    km = flashkmeans.Kmeans(8, 10, niter=5, spherical=True)
    km.train(x)
    np.testing.assert_allclose(np.linalg.norm(km.centroids, axis=1), 1, rtol=1e-5)
    D, I = km.assign(x)
    # inner product: larger is closer
    np.testing.assert_array_equal(I, np.argmax(x @ km.centroids.T, axis=1))


def test_attributes_and_stats_after_train(rs):
    x = rs.rand(500, 4).astype(np.float32)
    km = flashkmeans.Kmeans(4, 5, niter=4, early_stop_threshold=-1)
    assert km.centroids is None and km.obj is None and km.iteration_stats is None
    obj = km.train(x)
    assert (km.d, km.k) == (4, 5)
    assert km.centroids.shape == (5, 4) and km.centroids.dtype == np.float32
    assert km.obj.shape == (4,)
    assert obj == km.obj[-1]
    assert [sorted(s) for s in km.iteration_stats] == [
        sorted(["obj", "time", "time_search", "imbalance_factor", "nsplit"])] * 4
    assert km.iteration_stats[-1]["obj"] == km.obj[-1]
    km.reset()
    assert km.centroids is None and km.obj is None and km.k == 5
    km.reset(3)
    km.train(x)
    assert km.centroids.shape == (3, 4)


def test_assign_returns_nearest_centroid(rs):
    x = rs.rand(700, 6).astype(np.float32)
    km = flashkmeans.Kmeans(6, 7, niter=5)
    km.train(x)
    D, I = km.assign(x)
    assert D.shape == (700,) and I.shape == (700,)
    assert D.dtype == np.float32 and I.dtype == np.int64
    full = ((x[:, None, :].astype(np.float64) - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(I, full.argmin(1))
    np.testing.assert_allclose(D, full.min(1), rtol=1e-4, atol=1e-5)


def test_assign_before_train_raises():
    with pytest.raises(RuntimeError, match="train"):
        flashkmeans.Kmeans(4, 2).assign(np.zeros((3, 4), np.float32))


def test_same_seed_same_result_and_seed_matters(rs):
    x = rs.rand(1000, 4).astype(np.float32)
    runs = []
    for seed in (1, 1, 2):
        km = flashkmeans.Kmeans(4, 8, niter=5, seed=seed)
        km.train(x)
        runs.append(km.centroids)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_kmeans_plus_plus_init(make_blobs):
    x = make_blobs(2000, 8, 16, seed=4)
    for kw in ({"init": "kmeans++"}, {"init_method": 1}):
        km = flashkmeans.Kmeans(8, 16, niter=10, **kw)
        km.train(x)
        assert np.isfinite(km.centroids).all()


def test_float64_is_converted_like_faiss(rs):
    x = rs.rand(500, 4)
    a = flashkmeans.Kmeans(4, 5, niter=4)
    a.train(x)
    b = flashkmeans.Kmeans(4, 5, niter=4)
    b.train(x.astype(np.float32))
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_unknown_keyword_raises_attribute_error_as_faiss():
    with pytest.raises(AttributeError):
        flashkmeans.Kmeans(4, 2, nitre=3)


def test_bad_option_values_raise_value_error():
    with pytest.raises(ValueError, match="backend"):
        flashkmeans.Kmeans(4, 2, backend="tpu")
    with pytest.raises(ValueError, match="dtype"):
        flashkmeans.Kmeans(4, 2, dtype="int8")
    with pytest.raises(ValueError, match="precision"):
        flashkmeans.Kmeans(4, 2, precision="fp8")
    with pytest.raises(ValueError, match="init"):
        flashkmeans.Kmeans(4, 2, init="greedy")
    with pytest.raises(TypeError):
        flashkmeans.Kmeans(4, 2, niter="ten")


def test_unsupported_faiss_fields_raise_at_train(rs):
    x = rs.rand(100, 4).astype(np.float32)
    for kw in ({"use_faster_subsampling": True}, {"init_method": 2}, {"early_stop_threshold": 0.1}):
        with pytest.raises(ValueError):
            flashkmeans.Kmeans(4, 2, **kw).train(x)


def test_gpu_keyword_keeps_faiss_meaning(rs):
    x = rs.rand(200, 4).astype(np.float32)
    km = flashkmeans.Kmeans(4, 3, gpu=False)
    assert km.backend == "cpu"
    km.train(x)
    count = flashkmeans.cuda_device_count()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        km = flashkmeans.Kmeans(4, 3, gpu=True)  # all GPUs; none here means the CPU
    if count > 1 and not flashkmeans.nccl_compiled():
        assert km.gpu == 1 and "no NCCL" in str(seen[0].message)
    else:
        assert km.gpu == count and not seen
    assert km.backend == ("cuda" if flashkmeans.cuda_available() else "cpu")
    km.train(x)



def test_devices_that_cannot_run_are_value_errors(rs):
    x = rs.rand(300, 4).astype(np.float32)
    with pytest.raises(ValueError, match="listed twice"):
        flashkmeans.Kmeans(4, 3, devices=[0, 0])
    with pytest.raises(ValueError, match=">= 0"):
        flashkmeans.Kmeans(4, 3, devices=[-1])
    with pytest.raises(TypeError, match="ordinals"):
        flashkmeans.Kmeans(4, 3, devices=["a"])
    with pytest.raises(ValueError, match="exclude each other"):
        flashkmeans.Kmeans(4, 3, devices=[0], comm=object())
    with pytest.raises(ValueError, match="one GPU"):
        flashkmeans.batch_kmeans(x[None], 3, niter=2, devices=[0])
    with pytest.raises(ValueError, match="one process and one GPU|no NCCL"):
        flashkmeans.Kmeans(4, 3, devices=[0], progressive_dim_steps=2).train(x)
    # a GPU that is not there: at construction without NCCL, at train() with it
    missing = flashkmeans.cuda_device_count()
    with pytest.raises(ValueError, match="no NCCL|does not exist"):
        flashkmeans.Kmeans(4, 3, devices=[missing]).train(x)
    if not flashkmeans.nccl_compiled():
        with pytest.raises(ValueError, match="no NCCL"):
            flashkmeans.Kmeans(4, 3, gpu=2)

def test_cuda_backend_without_gpu_is_a_clear_error(rs):
    if flashkmeans.cuda_available():
        pytest.skip("a GPU is visible")
    km = flashkmeans.Kmeans(4, 3, backend="cuda")
    with pytest.raises(RuntimeError, match="(?i)cuda"):
        km.train(rs.rand(100, 4).astype(np.float32))


def test_verbose_prints_faiss_style_progress(rs, capfd):
    x = rs.rand(500, 4).astype(np.float32)
    flashkmeans.Kmeans(4, 5, niter=3, verbose=True).train(x)
    out = capfd.readouterr().out
    assert "Clustering 500 points in 4D to 5 clusters" in out
    assert "Iteration 2" in out and "objective=" in out


def test_without_faiss_index_is_a_flat_index_with_search(rs, monkeypatch):
    monkeypatch.setattr(kmeans_module, "_faiss", lambda: None)
    x = rs.rand(600, 5).astype(np.float32)
    km = flashkmeans.Kmeans(5, 6, niter=5)
    km.train(x)
    assert isinstance(km.index, flashkmeans.FlatIndex)
    assert km.index.ntotal == 6
    D, I = km.index.search(x, 1)
    D2, I2 = km.assign(x)
    np.testing.assert_array_equal(I[:, 0], I2)
    np.testing.assert_allclose(D[:, 0], D2, rtol=1e-5, atol=1e-6)
    D3, I3 = km.index.search(x[:50], 3)
    full = ((x[:50, None, :].astype(np.float64) - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(I3, np.argsort(full, axis=1, kind="stable")[:, :3])
    assert D3.shape == (50, 3) and np.all(np.diff(D3, axis=1) >= 0)
    D8, I8 = km.index.search(x[:2], 8)  # more than ntotal: faiss pads with -1
    assert (I8[:, 6:] == -1).all()


def test_without_faiss_spherical_index_is_inner_product(rs, monkeypatch):
    monkeypatch.setattr(kmeans_module, "_faiss", lambda: None)
    x = rs.randn(300, 4).astype(np.float32)
    km = flashkmeans.Kmeans(4, 3, niter=3, spherical=True)
    km.train(x)
    D, I = km.index.search(x, 2)
    ip = x @ km.centroids.T
    np.testing.assert_array_equal(I[:, 0], ip.argmax(1))
    assert np.all(D[:, 0] >= D[:, 1])
