"""Hostile numbers: each gets a clear error or a correct result, never NaN
centroids or a silently wrong answer."""

import numpy as np
import pytest

import flashkmeans


@pytest.fixture
def x(rs):
    return rs.rand(2000, 8).astype(np.float32)


def kmeans(k, **kw):
    return flashkmeans.Kmeans(8, k, niter=5, backend="cpu", **kw)


def nearest_lowest_index(points, centroids):
    """float64 nearest centroid, the lowest index among equals."""
    d2 = ((points[:, None, :].astype(np.float64) - centroids[None, :, :]) ** 2).sum(-1)
    return d2.argmin(axis=1), d2


@pytest.mark.parametrize("scale", [1e19, 1e20, 3e38])
def test_points_whose_squared_norms_overflow_float32_raise(x, scale):
    with pytest.raises(ValueError, match="too large for float32 distances"):
        kmeans(10).train(x * np.float32(scale))


def test_large_but_representable_points_cluster_like_scaled_data(x):
    # 2^50 x: squared norms ~1e30, summing far below the limit; a power of two
    # scales every float operation exactly, so the labels are the unscaled run's
    scale = np.float32(2.0**50)
    small, big = kmeans(10), kmeans(10)
    small.train(x)
    big.train(x * scale)
    np.testing.assert_array_equal(big.centroids, small.centroids * scale)
    np.testing.assert_array_equal(big.assign(x * scale)[1], small.assign(x)[1])


def test_init_centroids_too_large_raise(x):
    c = x[:10].copy()
    c[3] = 1e20
    with pytest.raises(ValueError, match="too large for float32 distances"):
        kmeans(10).train(x, init_centroids=c)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_16_bit_input_holding_inf_or_nan_raises(x, dtype, bad):
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    y = x.astype(dtype)
    y[17, 3] = bad
    with pytest.raises(ValueError, match=r"NaN or Inf.*point 17"):
        flashkmeans.Kmeans(8, 10, niter=2).train(y)


def test_init_centroids_with_nan_raise(x):
    c = x[:10].copy()
    c[2, 2] = np.nan
    with pytest.raises(ValueError, match="init_centroids"):
        kmeans(10).train(x, init_centroids=c)


def test_k_larger_than_the_points_raises_and_subsample_keeps_k(x):
    with pytest.raises(ValueError, match="at least as large as number of clusters"):
        kmeans(100).train(x[:50])
    # max_points_per_centroid = 1 subsamples to exactly k points: one each
    km = kmeans(300, max_points_per_centroid=1)
    km.train(x)
    assert np.isfinite(km.centroids).all()
    assert km.obj[-1] < 1e-4  # each point is its own centroid, up to fp32 rounding


def test_all_points_identical_with_k_above_one(x):
    same = np.full((500, 8), 3.25, dtype=np.float32)
    km = kmeans(5)
    km.train(same)
    assert np.isfinite(km.centroids).all()
    D, I = km.assign(same)
    assert ((0 <= I) & (I < 5)).all()
    # every point lies on its centroid up to the empty-cluster split's 1/1024
    # perturbation, and on a nearest one (the split's mirrored copies tie)
    assert D.max() <= 8 * (3.25 / 1024) ** 2 + 1e-4
    _, d2 = nearest_lowest_index(same, km.centroids)
    assert (d2[np.arange(len(same)), I] <= d2.min(axis=1) + 1e-5).all()


def test_weights_of_the_wrong_length_raise(x):
    for n in (1999, 2001, 0):
        with pytest.raises(ValueError, match="weights"):
            kmeans(10).train(x, weights=np.ones(n, np.float32))


def test_int_centroids_on_data_in_unit_interval(x):
    km = kmeans(10, int_centroids=True)
    km.train(x)
    c = km.centroids
    assert np.isfinite(c).all()
    np.testing.assert_array_equal(c, np.round(c))
    assert set(np.unique(c)) <= {0.0, 1.0}
    # the labels are the float64 nearest integer centroid, lowest index on ties
    # (rounding makes exact duplicate centroids here)
    D, I = km.assign(x)
    want, d2 = nearest_lowest_index(x, c)
    np.testing.assert_array_equal(I, want)
    np.testing.assert_allclose(D, d2[np.arange(len(x)), want], rtol=1e-5, atol=1e-5)


OUT_OF_MEMORY_SCRIPT = r"""
import resource, numpy as np, flashkmeans
x = np.random.RandomState(0).rand(4 << 20, 4).astype(np.float32)  # 64 MB, used in place
# BLAS and the engine's first allocations happen before the limit
flashkmeans.Kmeans(4, 8, niter=1, backend="cpu").train(x[:2000])
vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (8 << 20), resource.RLIM_INFINITY))
try:
    # the per-point buffers (norms, labels, distances: 16 MB each) cannot fit
    flashkmeans.Kmeans(4, 64, niter=2, backend="cpu", max_points_per_centroid=1 << 20).train(x)
except (MemoryError, RuntimeError) as e:
    print(type(e).__name__, e)
else:
    print("no error")
"""


def test_out_of_host_memory_is_a_clear_error():
    # a child process whose address space is capped 8 MB above what it holds
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY_SCRIPT], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "memory" in r.stdout.lower(), r.stdout + r.stderr[-2000:]
