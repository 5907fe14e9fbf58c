"""memory_budget: host points beyond it are streamed in chunks every
iteration. On the CPU a streamed run equals the resident one bit for bit
(labels, objectives, centroids), memmaps included; a budget too small names
the minimum; verbose runs say how the points were held."""

import numpy as np
import pytest

import flashkmeans


@pytest.fixture
def x(rs):
    return rs.rand(3000, 8).astype(np.float32)


def train(x, **kw):
    km = flashkmeans.Kmeans(x.shape[1], 10, niter=6, backend="cpu", **kw)
    km.train(x)
    return km


def test_a_small_budget_streams_and_equals_the_resident_run(x):
    ref = train(x)
    assert ref.memory_plan == "resident"
    s = train(x, memory_budget=60_000)
    assert s.memory_plan.startswith("streamed in "), s.memory_plan
    np.testing.assert_array_equal(s.centroids, ref.centroids)
    np.testing.assert_array_equal(s.obj, ref.obj)


def test_a_memmap_streams_in_place(x, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    ref = train(x)
    s = train(mm, memory_budget=60_000)
    assert s.memory_plan.startswith("streamed in ")
    np.testing.assert_array_equal(s.centroids, ref.centroids)


def test_weights_and_frozen_centroids_stream_bitwise(x, rs):
    w = (rs.rand(len(x)) + 0.5).astype(np.float32)
    init = x[:3].copy()

    def run(**kw):
        km = flashkmeans.Kmeans(8, 10, niter=5, backend="cpu", frozen_centroids=True, **kw)
        km.train(x, weights=w, init_centroids=init)
        return km

    ref, s = run(), run(memory_budget=70_000)
    assert s.memory_plan.startswith("streamed in ")
    np.testing.assert_array_equal(s.centroids, ref.centroids)


def test_a_budget_too_small_names_the_minimum(x):
    with pytest.raises(ValueError, match=r"memory_budget of 1000 bytes is too small.*at least"):
        train(x, memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget must be >= 0"):
        flashkmeans.Kmeans(8, 10, memory_budget=-1)


def test_verbose_says_how_the_points_were_held(x, capfd):
    train(x, memory_budget=60_000, verbose=True)
    out = capfd.readouterr().out
    assert "points streamed in " in out, out
