"""CUDA inputs: torch / cupy arrays on the GPU are used in place with the CUDA
backend, and results come back on the same device in the same library.
Skipped without a GPU (conftest) or without torch / cupy."""

import numpy as np
import pytest

import flashkmeans

pytestmark = pytest.mark.gpu


@pytest.fixture
def x(make_blobs):
    return make_blobs(4000, 32, 40, seed=11)


def close_centroids(a, b, tol=1e-4):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * float(np.abs(b).max()))


def test_kmeans_on_a_torch_cuda_tensor_matches_the_cpu(torch_cuda, x):
    torch = torch_cuda
    t = torch.from_numpy(x).cuda()
    gpu = flashkmeans.Kmeans(32, 32, niter=10, seed=5)
    assert gpu.backend == "cuda"
    gpu.train(t)
    cpu = flashkmeans.Kmeans(32, 32, niter=10, seed=5, backend="cpu")
    cpu.train(x)
    assert isinstance(gpu.centroids, np.ndarray) and gpu.centroids.dtype == np.float32
    close_centroids(gpu.centroids, cpu.centroids)
    np.testing.assert_allclose(gpu.obj, cpu.obj, rtol=1e-5)
    D, I = gpu.assign(t)
    assert isinstance(I, torch.Tensor) and I.device == t.device and I.dtype == torch.int64
    assert isinstance(D, torch.Tensor) and D.device == t.device and D.dtype == torch.float32
    D_cpu, I_cpu = cpu.assign(x)
    assert (I.cpu().numpy() == I_cpu).mean() > 0.999


def test_numpy_input_with_the_cuda_backend(x):
    gpu = flashkmeans.Kmeans(32, 32, niter=10, backend="cuda")
    gpu.train(x)
    cpu = flashkmeans.Kmeans(32, 32, niter=10, backend="cpu")
    cpu.train(x)
    close_centroids(gpu.centroids, cpu.centroids)
    D, I = gpu.assign(x)
    assert isinstance(I, np.ndarray)


def test_batch_on_torch_cuda_returns_cuda_tensors(torch_cuda, make_blobs):
    torch = torch_cuda
    xb = np.stack([make_blobs(2000, 16, 20, seed=s) for s in range(3)])
    t = torch.from_numpy(xb).cuda()
    init = xb[:, :12].copy()
    labels, centroids, objective = res = flashkmeans.batch_kmeans(t, 12, niter=6, init_centroids=init)
    for out in (labels, centroids, objective, res.history):
        assert isinstance(out, torch.Tensor) and out.device == t.device
    assert labels.dtype == torch.int64 and labels.shape == (3, 2000)
    assert centroids.dtype == torch.float32 and centroids.shape == (3, 12, 16)
    ref = flashkmeans.batch_kmeans(xb, 12, niter=6, init_centroids=init, backend="cpu")
    close_centroids(centroids.cpu().numpy(), ref.centroids)
    np.testing.assert_allclose(objective.cpu().numpy(), ref.objective, rtol=1e-5)


def test_calls_follow_the_callers_stream(torch_cuda, make_blobs):
    # points produced on a busy side stream and used at once, results read on
    # that stream: no synchronisation by the caller, yet every value is right
    torch = torch_cuda
    xb = np.stack([make_blobs(20000, 16, 20, seed=s) for s in range(2)])
    init = xb[:, :12].copy()
    ref = flashkmeans.batch_kmeans(xb, 12, niter=5, init_centroids=init, backend="cpu")
    host = torch.from_numpy(xb).pin_memory()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)  # the copy below waits behind this
        t = host.cuda(non_blocking=True)
        res = flashkmeans.batch_kmeans(t, 12, niter=5, init_centroids=init)
        centroids = res.centroids.clone()
        km = flashkmeans.Kmeans(16, 12, niter=5)
        km.train(t[0], init_centroids=init[0])
        D, I = km.assign(t[1])
        I = I.clone()
    torch.cuda.synchronize()
    close_centroids(centroids.cpu().numpy(), ref.centroids)
    one = flashkmeans.Kmeans(16, 12, niter=5, backend="cpu")
    one.train(xb[0], init_centroids=init[0])
    close_centroids(km.centroids, one.centroids)
    assert (I.cpu().numpy() == one.assign(xb[1])[1]).mean() > 0.999


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_cuda_tensors(torch_cuda, x, dtype):
    torch = torch_cuda
    t = torch.from_numpy(x).cuda().to(getattr(torch, dtype))
    km = flashkmeans.Kmeans(32, 32, niter=10)
    km.train(t)
    ref = flashkmeans.Kmeans(32, 32, niter=10)
    ref.train(x)
    assert np.isfinite(km.centroids).all()
    assert km.obj[-1] == pytest.approx(ref.obj[-1], rel=5e-2)
    res = flashkmeans.batch_kmeans(t[None], 16, niter=4)
    assert res.centroids.dtype == torch.float32


def test_non_contiguous_cuda_tensor_is_copied(torch_cuda, x):
    torch = torch_cuda
    wide = torch.zeros((4000, 64), device="cuda")
    wide[:, ::2] = torch.from_numpy(x).cuda()
    a = flashkmeans.Kmeans(32, 16, niter=5)
    a.train(wide[:, ::2])
    b = flashkmeans.Kmeans(32, 16, niter=5)
    b.train(torch.from_numpy(x).cuda())
    np.testing.assert_array_equal(a.centroids, b.centroids)


def test_cuda_tensor_errors(torch_cuda, x):
    torch = torch_cuda
    t = torch.from_numpy(x).cuda()
    with pytest.raises(ValueError, match="backend"):
        flashkmeans.Kmeans(32, 8, backend="cpu").train(t)
    with pytest.raises(ValueError, match="device"):
        flashkmeans.Kmeans(32, 8, device=torch.cuda.device_count()).train(t)
    bad = t.clone()
    bad[3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        flashkmeans.Kmeans(32, 8).train(bad)
    with pytest.raises(TypeError, match="int64"):
        flashkmeans.Kmeans(32, 8).train(t.long())


def test_cupy_arrays(x):
    cp = pytest.importorskip("cupy")
    a = cp.asarray(x)
    km = flashkmeans.Kmeans(32, 16, niter=5)
    km.train(a)
    D, I = km.assign(a)
    assert isinstance(I, cp.ndarray) and I.dtype == cp.int64
    res = flashkmeans.batch_kmeans(a[None], 16, niter=5)
    assert isinstance(res.centroids, cp.ndarray)


def test_train_ivf_with_the_cuda_backend(make_blobs):
    faiss = pytest.importorskip("faiss")
    xt = make_blobs(20000, 32, 200, seed=3)
    index = faiss.index_factory(32, "IVF64,Flat")
    flashkmeans.train_ivf(index, xt, backend="cuda")
    assert index.is_trained and index.quantizer.ntotal == 64


def test_a_repeated_call_updates_its_kept_graph(torch_cuda):
    # the steady path of a call of a shape seen before: the iterations' CUDA
    # graph is updated, not instantiated again
    torch = torch_cuda
    x = torch.randn(3, 20011, 104, device="cuda", dtype=torch.float16)
    init = x[:, :200].float().contiguous()
    flashkmeans.batch_kmeans(x, 200, niter=4, init_centroids=init)  # records, keeps
    flashkmeans.batch_kmeans(x, 200, niter=4, init_centroids=init)
    before = flashkmeans._flashkmeans.graph_stats()
    flashkmeans.batch_kmeans(x, 200, niter=4, init_centroids=init)
    after = flashkmeans._flashkmeans.graph_stats()
    assert after["instantiated"] == before["instantiated"], after["last_refusal"]
    assert after["updated"] == before["updated"] + 1


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_prune_on_the_cuda_backend_is_the_unpruned_run(make_blobs, dtype):
    # the moved-centroid filter: 16 points per cluster, most clusters settle
    x = make_blobs(16000, 32, 1000, seed=12)
    runs = []
    for prune in (False, True):
        km = flashkmeans.Kmeans(32, 1000, niter=15, seed=3, backend="cuda", dtype=dtype,
                                max_points_per_centroid=1000, prune=prune)
        km.train(x)
        runs.append(km)
    plain, pruned = runs
    skipped = [s["skipped"] for s in pruned.iteration_stats]
    assert skipped[0] == 0.0 and max(skipped) > 0.5
    if sum(s["near_ties"] for s in pruned.iteration_stats) == 0:
        np.testing.assert_array_equal(pruned.centroids, plain.centroids)
        np.testing.assert_array_equal(pruned.obj, plain.obj)
    else:
        np.testing.assert_allclose(pruned.obj, plain.obj, rtol=1e-5)


def test_batch_kmeans_prune_on_cuda_filters_each_problem(make_blobs):
    x = np.stack([make_blobs(4000, 16, 200, seed=s) for s in (5, 6)])
    plain = flashkmeans.batch_kmeans(x, 200, niter=10, backend="cuda")
    pruned = flashkmeans.batch_kmeans(x, 200, niter=10, backend="cuda", prune=True)
    # labels equal but for near-ties, objectives to float rounding
    assert (plain.labels != pruned.labels).mean() < 1e-3
    np.testing.assert_allclose(pruned.history, plain.history, rtol=1e-5)


def small_ints(n, d, seed):
    # integer-valued points: every cluster sum is exact, so any split of the
    # rows over GPUs must give the same bits
    return np.random.default_rng(seed).integers(-8, 9, size=(n, d)).astype(np.float32)


@pytest.mark.skipif(not flashkmeans.nccl_compiled(), reason="a build without NCCL")
def test_devices_over_nccl_give_the_one_gpu_bits():
    x = small_ints(5003, 24, 3)
    w = (1 + np.arange(5003) % 3).astype(np.float32)
    one = flashkmeans.Kmeans(24, 40, niter=8, seed=4, backend="cuda")
    one.train(x, weights=w)
    for devices in ([0], list(range(flashkmeans.cuda_device_count()))):
        many = flashkmeans.Kmeans(24, 40, niter=8, seed=4, devices=devices)
        many.train(x, weights=w)
        assert many.centroids.tobytes() == one.centroids.tobytes(), devices
        np.testing.assert_array_equal(many.obj, one.obj)
        np.testing.assert_array_equal(many.assign(x)[1], one.assign(x)[1])


@pytest.mark.skipif(not flashkmeans.nccl_compiled() or flashkmeans.cuda_device_count() < 2,
                    reason="needs NCCL and two GPUs")
def test_gpu_n_shards_over_the_first_n_gpus():
    x = small_ints(4001, 16, 5)
    one = flashkmeans.Kmeans(16, 30, niter=6, gpu=1)
    one.train(x)
    for gpu in (2, -1):
        many = flashkmeans.Kmeans(16, 30, niter=6, gpu=gpu)
        assert many.options["devices"] == list(range(many.gpu))
        many.train(x)
        assert many.centroids.tobytes() == one.centroids.tobytes(), gpu


@pytest.mark.skipif(not flashkmeans.nccl_compiled(), reason="a build without NCCL")
def test_devices_refuse_points_already_on_a_gpu(torch_cuda):
    t = torch_cuda.from_numpy(small_ints(500, 8, 6)).cuda()
    with pytest.raises(ValueError, match="host"):
        flashkmeans.Kmeans(8, 5, devices=[0]).train(t)
