"""The CPU assignment kernel from Python (cpu_kernel='auto' | 'faiss' | 'fused'):
the fused kernel reaches the same objectives as faiss's blocks, makes a pruned
run bitwise the unpruned one, is what scikit-learn's estimator takes, and a bad
name is a clear error."""

import numpy as np
import pytest

from flashkmeans import Kmeans
from flashkmeans import _flashkmeans as _ext

from conftest import blobs

fused_here = pytest.mark.skipif(not _ext.cpu_fused_assign_available(),
                                reason="this CPU has no AVX2 + FMA")


@fused_here
def test_fused_kernel_reaches_the_faiss_kernels_objectives():
    x = blobs(20000, 32, 25, seed=13, spread=0.3)
    runs = {}
    for kernel in ("faiss", "fused"):
        km = Kmeans(32, 50, niter=8, backend="cpu", seed=3, cpu_kernel=kernel)
        km.train(x)
        runs[kernel] = km
    # near-ties may split the other way: objectives agree to float rounding
    np.testing.assert_allclose(runs["fused"].obj, runs["faiss"].obj, rtol=1e-4)


@fused_here
def test_pruned_run_with_the_fused_kernel_is_bitwise_the_unpruned_one_on_float_data():
    # overlapping blobs: with faiss's blocks a survivor could round a near-tie
    # the other way; the fused kernel scores every pair the same in any call
    x = blobs(20000, 24, 20, seed=11, spread=0.6)
    plain = Kmeans(24, 64, niter=20, backend="cpu", seed=5, cpu_kernel="fused")
    pruned = Kmeans(24, 64, niter=20, backend="cpu", seed=5, prune=True)  # auto: fused
    plain.train(x)
    pruned.train(x)
    np.testing.assert_array_equal(pruned.centroids, plain.centroids)
    np.testing.assert_array_equal(pruned.obj, plain.obj)
    assert max(s["skipped"] for s in pruned.iteration_stats) > 0.5
    assert sum(s["near_ties"] for s in pruned.iteration_stats) == 0


def test_an_unknown_cpu_kernel_is_a_value_error():
    with pytest.raises(ValueError, match="unknown cpu_kernel 'blas'"):
        Kmeans(4, 3, backend="cpu", cpu_kernel="blas").train(blobs(100, 4, 3, seed=1))


def test_sklearn_estimator_takes_the_fused_kernel_on_the_cpu():
    pytest.importorskip("sklearn")
    from flashkmeans import KMeans

    est = KMeans(8, backend="cpu")
    assert est.get_params()["cpu_kernel"] == "auto"
    want = "fused" if _ext.cpu_fused_assign_available() else "auto"
    assert est._engine_options()["cpu_kernel"] == want
    assert KMeans(8, backend="cpu", cpu_kernel="faiss")._engine_options()["cpu_kernel"] == "faiss"
    with pytest.raises(ValueError, match="cpu_kernel"):
        KMeans(8, backend="cpu", cpu_kernel="blas").fit(blobs(200, 4, 8, seed=2))


@fused_here
def test_sklearn_elkan_equals_lloyd_bitwise_with_the_fused_kernel():
    pytest.importorskip("sklearn")
    from flashkmeans import KMeans

    x = blobs(8000, 16, 12, seed=9, spread=0.5).astype(np.float64)
    init = x[:30].copy()
    lloyd = KMeans(30, init=init, n_init=1, max_iter=40, algorithm="lloyd", backend="cpu").fit(x)
    elkan = KMeans(30, init=init, n_init=1, max_iter=40, algorithm="elkan", backend="cpu").fit(x)
    np.testing.assert_array_equal(elkan.labels_, lloyd.labels_)
    np.testing.assert_array_equal(elkan.cluster_centers_, lloyd.cluster_centers_)
    assert elkan.n_iter_ == lloyd.n_iter_
