"""Exact pruning from Python (Kmeans(prune=True), KMeans(algorithm='elkan')):
the same clustering as without it, the work it skipped in iteration_stats,
and clear errors for what it does not take."""

import numpy as np
import pytest

import flashkmeans
from flashkmeans import Kmeans

from conftest import blobs


def integer_points(n=6000, d=3, seed=3):
    # small integers and integer centroids: every score exact, so pruned and
    # unpruned runs must agree bit for bit, ties included
    return np.random.RandomState(seed).randint(-30, 31, size=(n, d)).astype(np.float32)


def test_pruned_run_equals_unpruned_run_bit_for_bit_on_integers():
    x = integer_points()
    runs = []
    for prune in (False, True):
        km = Kmeans(3, 20, niter=15, nredo=2, int_centroids=True, max_points_per_centroid=250,
                    backend="cpu", prune=prune)
        km.train(x)
        runs.append(km)
    plain, pruned = runs
    np.testing.assert_array_equal(pruned.centroids, plain.centroids)
    np.testing.assert_array_equal(pruned.obj, plain.obj)
    skipped = [s["skipped"] for s in pruned.iteration_stats]
    assert skipped[0] == 0.0, "the first iteration runs in full"
    assert max(skipped) > 0.5
    assert all("near_ties" in s for s in pruned.iteration_stats)
    assert "skipped" not in plain.iteration_stats[0], "faiss's fields only without prune"


def test_pruned_run_skips_work_and_keeps_the_objective_on_float_data():
    # float data: a counted near-tie may go the other way (the C++ tests
    # check each assignment); the objectives still agree to float rounding
    x = blobs(20000, 16, 32, seed=4, spread=0.4)
    plain = Kmeans(16, 32, niter=12, backend="cpu", seed=5)
    pruned = Kmeans(16, 32, niter=12, backend="cpu", seed=5, prune=True)
    plain.train(x)
    pruned.train(x)
    np.testing.assert_allclose(pruned.obj, plain.obj, rtol=1e-5)
    # which calls prune is timed (a pruned call slower than a plain one backs
    # off), so some, not each, of the late iterations skip most of the work
    assert max(s["skipped"] for s in pruned.iteration_stats) > 0.5


def test_prune_takes_only_a_bool():
    with pytest.raises(TypeError, match="prune must be True or False"):
        Kmeans(4, 3, prune="yes")


@pytest.mark.skipif(flashkmeans.cuda_available(), reason="the refusal needs no GPU to show")
def test_prune_on_a_machine_without_gpu_runs_on_the_cpu():
    x = blobs(2000, 4, 5, seed=1)
    km = Kmeans(4, 5, niter=5, prune=True)  # backend auto: the CPU here
    km.train(x)
    assert len(km.iteration_stats) == 5 and "skipped" in km.iteration_stats[0]


def test_elkan_runs_the_pruned_engine_with_lloyds_result():
    pytest.importorskip("sklearn")
    from flashkmeans import KMeans

    x = integer_points(3000, 2, seed=8).astype(np.float64)
    init = x[:12].copy()
    init[1] += 0.5  # distinct starting centres
    lloyd = KMeans(12, init=init, n_init=1, max_iter=30, algorithm="lloyd", backend="cpu").fit(x)
    elkan = KMeans(12, init=init, n_init=1, max_iter=30, algorithm="elkan", backend="cpu")
    assert elkan._engine_options().get("prune") is True
    assert lloyd._engine_options().get("prune") is None
    elkan.fit(x)
    np.testing.assert_array_equal(elkan.labels_, lloyd.labels_)
    np.testing.assert_allclose(elkan.cluster_centers_, lloyd.cluster_centers_, rtol=1e-6)
    assert elkan.n_iter_ == lloyd.n_iter_
