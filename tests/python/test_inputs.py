"""Input handling: dtypes, memory layouts, and every bad input raising a
Python exception (ValueError / TypeError, RuntimeError from C++) instead of
crashing."""

import numpy as np
import pytest

import flashkmeans
from flashkmeans import _flashkmeans


@pytest.fixture
def x(rs):
    return rs.rand(600, 8).astype(np.float32)


def train(x, k=6, **kw):
    km = flashkmeans.Kmeans(np.shape(x)[1] if np.ndim(x) == 2 else 8, k, niter=5, **kw)
    km.train(x)
    return km


def test_fortran_order_and_strided_inputs_give_the_same_result(x):
    ref = train(x).centroids
    np.testing.assert_array_equal(train(np.asfortranarray(x)).centroids, ref)
    wide = np.zeros((600, 16), dtype=np.float32)
    wide[:, ::2] = x
    np.testing.assert_array_equal(train(wide[:, ::2]).centroids, ref)
    tall = np.zeros((1200, 8), dtype=np.float32)
    tall[::2] = x
    np.testing.assert_array_equal(train(tall[::2]).centroids, ref)


def test_read_only_input_is_accepted(x):
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(train(ro).centroids, train(x).centroids)


def test_float16_input_runs(x):
    ref = train(x)
    km = train(x.astype(np.float16))
    assert km.centroids.dtype == np.float32
    # same data up to fp16 rounding: close objectives
    assert km.obj[-1] == pytest.approx(ref.obj[-1], rel=2e-2)
    D, I = km.assign(x.astype(np.float16))
    assert I.shape == (600,)


def test_bfloat16_input_runs(x):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    xb = x.astype(ml_dtypes.bfloat16)
    km = train(xb)
    assert np.isfinite(km.centroids).all()
    assert km.obj[-1] == pytest.approx(train(x).obj[-1], rel=5e-2)


def test_torch_cpu_tensor_input(x):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x)
    km = train(t)
    np.testing.assert_array_equal(km.centroids, train(x).centroids)
    D, I = km.assign(t)
    assert isinstance(I, torch.Tensor) and I.dtype == torch.int64


def test_list_input_is_converted(x):
    np.testing.assert_array_equal(train(x.tolist()).centroids, train(x).centroids)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_, np.complex64, object])
def test_non_float_dtypes_raise_type_error_naming_the_dtype(x, dtype):
    bad = x.astype(dtype) if dtype is not object else x.astype(object)
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        train(bad)


@pytest.mark.parametrize("shape", [(600,), (600, 8, 1), (2, 300, 8)])
def test_wrong_ndim_raises_value_error(shape):
    with pytest.raises(ValueError, match="shape"):
        train(np.zeros(shape, dtype=np.float32))


def test_dimension_mismatch_raises_value_error(x):
    with pytest.raises(ValueError, match="dimension"):
        flashkmeans.Kmeans(4, 3).train(x)
    km = train(x)
    with pytest.raises(ValueError, match="dimension"):
        km.assign(x[:, :4])


def test_fewer_points_than_clusters_raises_value_error(x):
    with pytest.raises(ValueError, match="at least as large"):
        train(x[:5], k=6)
    with pytest.raises(ValueError):
        train(x[:0], k=6)


def test_non_positive_k_or_d_raise_value_error():
    for k in (0, -3):
        with pytest.raises(ValueError, match="k must be"):
            flashkmeans.Kmeans(4, k)
    with pytest.raises(ValueError, match="d must be"):
        flashkmeans.Kmeans(0, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_raise_value_error(x, bad):
    y = x.copy()
    y[17, 3] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        train(y)
    with pytest.raises(ValueError, match="NaN or Inf"):
        train(y.astype(np.float16))
    km = train(x)
    with pytest.raises(ValueError, match="NaN or Inf"):
        km.assign(y)


def test_bad_weights_raise(x):
    km = flashkmeans.Kmeans(8, 6, niter=3)
    with pytest.raises(ValueError, match="weights"):
        km.train(x, weights=np.ones(10, dtype=np.float32))
    with pytest.raises(ValueError, match="weights"):
        km.train(x, weights=np.ones((600, 1), dtype=np.float32))
    w = np.ones(600, dtype=np.float32)
    w[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        km.train(x, weights=w)
    with pytest.raises(ValueError, match="weights"):
        km.train(x, weights=-np.ones(600, dtype=np.float32))
    with pytest.raises(TypeError):
        km.train(x, weights=np.array(["a"] * 600))


def test_bad_init_centroids_raise(x):
    km = flashkmeans.Kmeans(8, 6, niter=3)
    with pytest.raises(ValueError, match="init_centroids"):
        km.train(x, init_centroids=np.zeros((6, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="init_centroids"):
        km.train(x, init_centroids=np.zeros((7, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        km.train(x, init_centroids=np.full((2, 8), np.nan, dtype=np.float32))


def test_extension_rejects_bad_arrays_without_crashing(x):
    # direct calls to the extension, bypassing the Python checks
    with pytest.raises(ValueError, match="contiguous"):
        _flashkmeans.train_clustering(np.asfortranarray(x), "float32", 4, "l2", {}, {})
    with pytest.raises(TypeError):
        _flashkmeans.train_clustering(x.astype(np.float64), "float32", 4, "l2", {}, {})
    with pytest.raises(ValueError, match="dtype"):
        _flashkmeans.train_clustering(x, "int8", 4, "l2", {}, {})
    with pytest.raises(ValueError, match="metric"):
        _flashkmeans.train_clustering(x, "float32", 4, "cosine", {}, {})
    with pytest.raises(ValueError, match="field"):
        _flashkmeans.train_clustering(x, "float32", 4, "l2", {"nitre": 3}, {})
    with pytest.raises(ValueError, match="option"):
        _flashkmeans.train_clustering(x, "float32", 4, "l2", {}, {"colour": "red"})
    with pytest.raises(ValueError, match="2-D"):
        _flashkmeans.train_clustering(x[0], "float32", 4, "l2", {}, {})
    # errors from the C++ engine come back as RuntimeError with its message
    with pytest.raises(RuntimeError, match="at least as large"):
        _flashkmeans.train_clustering(x[:3], "float32", 4, "l2", {}, {})
    # bad input from the engine is the caller's mistake: ValueError
    y = x.copy()
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _flashkmeans.train_clustering(y, "float32", 4, "l2", {}, {})
    with pytest.raises(ValueError, match="weights"):
        _flashkmeans.train_clustering(x, "float32", 4, "l2", {}, {}, np.ones(3, np.float32))
