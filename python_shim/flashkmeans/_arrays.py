"""Input normalisation: numpy, torch and cupy arrays (and other DLPack
producers) become one `Points` record that the extension accepts, with the
fewest copies possible, and outputs are built with the caller's own library
on the caller's own device.

Rules (documented in README.md, section Python):

- float32, float16 and bfloat16 (ml_dtypes on numpy, torch.bfloat16) are used
  as they are; other floating types (float64, ...) are converted to float32,
  as faiss.Kmeans does; integer, bool, complex and object arrays raise
  TypeError naming the dtype.
- C-contiguous arrays are used in place; F-ordered or strided arrays are
  copied once (np.ascontiguousarray / Tensor.contiguous()).
- CUDA arrays (torch, cupy, or any __dlpack__ producer on a CUDA device) are
  used in place with the CUDA backend, on the library's current stream;
  results come back on the same device, as arrays of the same library,
  ready in that stream's order (no host synchronisation beyond the run's).
- NaN and Inf raise ValueError naming the point; the engine finds them where
  the points are (device or host) as it computes their norms.
"""

import sys

import numpy as np

_DLPACK_CPU = 1
_DLPACK_CUDA = 2
_DLPACK_CUDA_MANAGED = 13

SUPPORTED = "float32, float16 or bfloat16 (other float types are converted to float32)"


class Points:
    """A normalised array of points.

    array:  what the extension receives (numpy array, torch tensor, cupy array)
    dtype:  'float32', 'float16' or 'bfloat16'
    kind:   'numpy', 'torch' or 'cupy': the library results are returned in
    device: None for host memory, else the CUDA device ordinal
    shape:  tuple of ints
    stream: the library's current CUDA stream handle (0: the legacy default
            stream, or host memory)
    """

    __slots__ = ("array", "dtype", "kind", "device", "shape", "source", "stream")

    def __init__(self, array, dtype, kind, device, shape, source, stream=0):
        self.array = array
        self.dtype = dtype
        self.kind = kind
        self.device = device
        self.shape = tuple(int(s) for s in shape)
        self.source = source  # the normalised array in its own library
        self.stream = int(stream)

    @property
    def on_device(self):
        return self.device is not None


def _module_of(x):
    return type(x).__module__.split(".")[0]


def _torch():
    return sys.modules.get("torch")


def _cupy():
    return sys.modules.get("cupy")


def _check_ndim(shape, ndim, name):
    if len(shape) != ndim:
        want = {2: "(n, d)", 3: "(B, n, d)"}.get(ndim, f"{ndim}-D")
        raise ValueError(f"{name}: expected an array of shape {want}, got shape {tuple(shape)}")


def _numpy_dtype(a, name):
    """The flashkmeans dtype name of a numpy array, converting if needed."""
    dt = a.dtype
    if dt == np.float32:
        return a, "float32"
    if dt == np.float16:
        return a, "float16"
    if dt.name == "bfloat16" and dt.itemsize == 2:  # ml_dtypes.bfloat16
        return a, "bfloat16"
    if dt.kind == "f":
        return a.astype(np.float32), "float32"
    raise TypeError(f"{name}: unsupported dtype {dt}; expected {SUPPORTED}")


def _numpy_points(x, ndim, name, source_kind="numpy"):
    a = np.asarray(x)
    if a.dtype == object:
        raise TypeError(f"{name}: unsupported dtype object; expected {SUPPORTED}")
    _check_ndim(a.shape, ndim, name)
    a, dt = _numpy_dtype(a, name)
    a = np.ascontiguousarray(a)
    # NaN / Inf: the engine checks host points itself, in one parallel pass
    # (ValueError naming the point)
    # fp16/bf16 travel as their 16-bit patterns: numpy's buffer/DLPack export
    # does not know ml_dtypes' bfloat16, and the engine only needs the bits.
    passed = a if dt == "float32" else a.view(np.uint16)
    return Points(passed, dt, source_kind, None, a.shape, a)


def _torch_points(t, ndim, name):
    torch = _torch()
    if t.requires_grad:
        t = t.detach()
    _check_ndim(tuple(t.shape), ndim, name)
    if t.dtype == torch.float32:
        dt = "float32"
    elif t.dtype == torch.float16:
        dt = "float16"
    elif t.dtype == torch.bfloat16:
        dt = "bfloat16"
    elif t.dtype.is_floating_point:
        t, dt = t.float(), "float32"
    else:
        raise TypeError(f"{name}: unsupported dtype {t.dtype}; expected {SUPPORTED}")
    t = t.contiguous()
    if t.device.type == "cpu":
        host = t.view(torch.int16).numpy().view(np.uint16) if dt != "float32" else t.numpy()
        return Points(host, dt, "torch", None, t.shape, t)
    if t.device.type != "cuda":
        raise ValueError(f"{name}: tensors on device '{t.device}' are not supported (CPU or CUDA only)")
    device = t.device.index if t.device.index is not None else torch.cuda.current_device()
    stream = torch.cuda.current_stream(device).cuda_stream
    return Points(t, dt, "torch", device, t.shape, t, stream)


def _cupy_points(a, ndim, name):
    cp = _cupy()
    _check_ndim(a.shape, ndim, name)
    if a.dtype == np.float32:
        dt = "float32"
    elif a.dtype == np.float16:
        dt = "float16"
    elif a.dtype.kind == "f":
        a, dt = a.astype(np.float32), "float32"
    else:
        raise TypeError(f"{name}: unsupported dtype {a.dtype}; expected {SUPPORTED}")
    with cp.cuda.Device(a.device.id):
        a = cp.ascontiguousarray(a)
        stream = cp.cuda.get_current_stream().ptr
    return Points(a, dt, "cupy", int(a.device.id), a.shape, a, stream)


def as_points(x, ndim=2, name="x"):
    """Normalises `x` (numpy / torch / cupy / DLPack / array-like) to Points."""
    mod = _module_of(x)
    if isinstance(x, np.ndarray):
        return _numpy_points(x, ndim, name)
    if mod == "torch" and _torch() is not None and isinstance(x, _torch().Tensor):
        return _torch_points(x, ndim, name)
    if mod == "cupy" and _cupy() is not None and isinstance(x, _cupy().ndarray):
        return _cupy_points(x, ndim, name)
    if hasattr(x, "__dlpack_device__") and hasattr(x, "__dlpack__"):
        dev_type, _ = x.__dlpack_device__()
        if int(dev_type) == _DLPACK_CPU:
            return _numpy_points(np.from_dlpack(x), ndim, name)
        if int(dev_type) in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
            try:
                import torch

                return _torch_points(torch.from_dlpack(x), ndim, name)
            except ImportError:
                pass
            try:
                import cupy

                return _cupy_points(cupy.from_dlpack(x), ndim, name)
            except ImportError:
                pass
            raise TypeError(f"{name}: CUDA arrays of type {type(x).__name__} need torch or cupy installed")
        raise ValueError(f"{name}: DLPack device type {int(dev_type)} is not supported (CPU or CUDA only)")
    return _numpy_points(x, ndim, name)


def to_float32(points):
    """The same points converted to float32 (a copy, in their own library)."""
    src = points.source
    if points.kind == "torch":
        return _torch_points(src.float(), len(points.shape), "x")
    if points.kind == "cupy":
        return _cupy_points(src.astype(np.float32), len(points.shape), "x")
    return _numpy_points(src.astype(np.float32), len(points.shape), "x")


def match_compute_dtype(points, options):
    """The engine uses 16-bit points as they are, and converts only float32
    points to options['dtype']. Returns (points, options) that honour both:
    16-bit input computes in its own type unless another dtype is asked for,
    in which case the points are converted to float32 first. The CPU backend
    computes in float32: 16-bit host points are converted for it."""
    if points.dtype == "float32":
        return points, options
    asked = options.get("dtype")
    if not points.on_device and asked is None:
        from . import _flashkmeans

        if _flashkmeans.resolve_backend(options.get("backend") or "auto") == "cpu":
            # the CPU kernels compute in float32 only
            return to_float32(points), options
    if asked is None or _ext_dtype(asked) == points.dtype:
        return points, dict(options, dtype=points.dtype)
    return to_float32(points), options


def _ext_dtype(name):
    n = str(name).lower()
    return {"fp32": "float32", "f32": "float32", "fp16": "float16", "f16": "float16",
            "half": "float16", "bf16": "bfloat16"}.get(n, n)


def device_float32(x, points):
    """`x` as a C-contiguous float32 array on the points' CUDA device, in its
    own library, when both are there (no copy through the host); else None."""
    if not points.on_device:
        return None
    mod = _module_of(x)
    if mod == "torch" and _torch() is not None and isinstance(x, _torch().Tensor):
        if x.device.type == "cuda" and x.device.index == points.device:
            return x.detach().float().contiguous()
    elif mod == "cupy" and _cupy() is not None and isinstance(x, _cupy().ndarray):
        if int(x.device.id) == points.device:
            with _cupy().cuda.Device(points.device):
                return _cupy().ascontiguousarray(x, dtype=np.float32)
    return None


def broadcast(a, shape):
    """`a` repeated along a new leading axis to `shape`, C-contiguous, in its
    own library."""
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(np.broadcast_to(a, shape))
    if _module_of(a) == "torch":
        return a.expand(*shape).contiguous()
    cp = _cupy()
    with cp.cuda.Device(a.device.id):
        return cp.ascontiguousarray(cp.broadcast_to(a, shape))


def host_float32(x, name, ndim=None):
    """Small auxiliary arrays (weights, initial centroids): a C-contiguous
    float32 numpy array on the host, whatever came in."""
    if x is None:
        return None
    mod = _module_of(x)
    if mod == "torch" and _torch() is not None and isinstance(x, _torch().Tensor):
        x = x.detach().to("cpu", dtype=_torch().float32).numpy()
    elif mod == "cupy" and _cupy() is not None and isinstance(x, _cupy().ndarray):
        x = x.get()
    a = np.asarray(x)
    if a.dtype.name == "bfloat16":
        a = a.astype(np.float32)
    if a.dtype.kind not in "fiu" or a.dtype == object:
        raise TypeError(f"{name}: unsupported dtype {a.dtype}; expected a float array")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return a


def empty(points, shape, dtype):
    """An uninitialised output of `shape` in the memory and library of
    `points` (numpy for host points; torch/cupy on the points' device).
    `dtype` is a numpy dtype name: 'float32', 'int32', 'int64', 'float64'."""
    if points.on_device:
        if points.kind == "torch":
            torch = _torch()
            return torch.empty(shape, dtype=getattr(torch, dtype), device=points.source.device)
        cp = _cupy()
        with cp.cuda.Device(points.device):
            return cp.empty(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype)


def with_stream(points, options):
    """The engine's options for `points`: CUDA points run on their library's
    current stream, so the work follows the caller's and the results are
    ready in its order. On the legacy default stream (0) the engine takes
    its own stream, which waits for the legacy stream's work and is done
    when the call returns."""
    if points.on_device and points.stream:
        return dict(options, stream=points.stream)
    return options


def wrap(points, a):
    """A host numpy result in the caller's library (torch CPU input gives
    torch tensors back); device outputs are already in it."""
    if points.kind == "torch" and isinstance(a, np.ndarray):
        return _torch().from_numpy(a)
    return a
