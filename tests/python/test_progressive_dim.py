"""Kmeans(progressive_dim_steps=...): faiss's ProgressiveDimClustering (PCA,
then k-means on a growing number of leading dimensions, each stage
warm-started) with every stage run by the engine. FAISS's own example
(faiss/tests/test_clustering.py, test_progressive_dim) reaches faiss's
objective, the stages are FAISS's, and what faiss refuses is refused."""

import numpy as np
import pytest

import flashkmeans
from flashkmeans.kmeans import ProgressiveDimClusteringParameters


def faiss_dataset_2(d, n):
    """faiss/tests/common_faiss_tests.py's get_dataset_2: a 10-dimensional
    ellipsoid bent into d dimensions."""
    rs = np.random.RandomState(1338)
    x = rs.normal(size=(n, 10))
    x = np.dot(x, rs.rand(10, d))
    x = x * (rs.rand(d) * 4 + 0.1)
    return np.sin(x).astype("float32")


@pytest.fixture(scope="module")
def faiss_example():
    """faiss's test: d=32, n=10000, k=50, plain k-means and 5 steps."""
    x = faiss_dataset_2(32, 10000)
    plain = flashkmeans.Kmeans(32, 50, backend="cpu")
    plain.train(x)
    progressive = flashkmeans.Kmeans(32, 50, progressive_dim_steps=5, backend="cpu")
    progressive.train(x)
    return x, plain, progressive


def test_faiss_example_beats_plain_kmeans_as_faiss_asserts(faiss_example):
    _, plain, progressive = faiss_example
    assert progressive.obj[-1] < plain.obj[-1]


def test_faiss_example_reaches_faiss_objective(faiss_example):
    faiss = pytest.importorskip("faiss")
    x, _, ours = faiss_example
    ref = faiss.Kmeans(32, 50, progressive_dim_steps=5)
    ref.train(x)
    assert len(ours.obj) == len(ref.obj)
    # the PCA is FAISS's; the stages' k-means agree to float rounding
    assert ours.obj[-1] == pytest.approx(ref.obj[-1], rel=1e-3)


def test_final_objective_is_that_of_the_returned_centroids(faiss_example):
    x, _, km = faiss_example
    d2 = ((x[:, None, :] - km.centroids[None]) ** 2).sum(-1).min(1)
    # the last iteration assigns to the centroids before its update
    assert d2.sum() <= km.obj[-1] * (1 + 1e-4)
    D, I = km.assign(x)
    np.testing.assert_allclose(D, d2, rtol=1e-4, atol=1e-4)


def test_defaults_are_faiss_progressive_dim_parameters():
    cp = flashkmeans.Kmeans(8, 4, progressive_dim_steps=3).cp
    assert isinstance(cp, ProgressiveDimClusteringParameters)
    assert (cp.niter, cp.apply_pca, cp.progressive_dim_steps) == (10, True, 3)
    faiss = pytest.importorskip("faiss")
    ref = faiss.ProgressiveDimClusteringParameters()
    for name in ProgressiveDimClusteringParameters._FIELDS:
        if hasattr(ref, name) and name != "progressive_dim_steps":
            assert getattr(cp, name) == pytest.approx(getattr(ref, name)), name


def test_each_stage_runs_niter_iterations_on_more_dimensions(make_blobs):
    x = make_blobs(2000, 27, 8, seed=4)
    km = flashkmeans.Kmeans(27, 8, progressive_dim_steps=3, niter=6, early_stop_threshold=-1,
                            backend="cpu")
    km.train(x)
    # stages in 27 ** (1/3) = 3, 27 ** (2/3) = 9 and 27 dimensions, 6 iterations each
    assert len(km.obj) == 18
    assert km.centroids.shape == (8, 27)


def test_one_step_without_pca_is_plain_kmeans(make_blobs):
    x = make_blobs(3000, 12, 10, seed=5)
    one = flashkmeans.Kmeans(12, 10, progressive_dim_steps=1, apply_pca=False, niter=10,
                             backend="cpu")
    one.train(x)
    plain = flashkmeans.Kmeans(12, 10, niter=10, backend="cpu")
    plain.train(x)
    np.testing.assert_array_equal(one.centroids, plain.centroids)
    np.testing.assert_array_equal(one.obj, plain.obj)


def test_stages_without_pca_match_faiss(make_blobs):
    faiss = pytest.importorskip("faiss")
    x = make_blobs(3000, 16, 12, seed=6)
    kw = dict(progressive_dim_steps=4, apply_pca=False, niter=8, seed=9)
    ours = flashkmeans.Kmeans(16, 12, backend="cpu", **kw)
    ours.train(x)
    ref = faiss.Kmeans(16, 12, **kw)
    ref.train(x)
    np.testing.assert_allclose(ours.obj, ref.obj, rtol=1e-4)
    np.testing.assert_allclose(ours.centroids, ref.centroids, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("train_kwargs, keywords, message", [
    ({"weights": np.ones(200, np.float32)}, {}, "weights or init_centroids"),
    ({"init_centroids": np.zeros((4, 8), np.float32)}, {}, "weights or init_centroids"),
    ({}, {"spherical": True}, "spherical"),
    ({}, {"progressive_dim_steps": 0}, "progressive_dim_steps must be >= 1"),
])
def test_what_faiss_refuses_is_refused_saying_what_to_do(rs, train_kwargs, keywords, message):
    x = rs.rand(200, 8).astype(np.float32)
    km = flashkmeans.Kmeans(8, 4, **dict(dict(progressive_dim_steps=2), **keywords))
    with pytest.raises(ValueError, match=message):
        km.train(x, **train_kwargs)
