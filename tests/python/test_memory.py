"""Host memory: the CPU engine uses the caller's points in place, so training
on a memory-mapped file needs about the file's size, not a second copy."""

import subprocess
import sys

SCRIPT = r"""
import resource, sys, numpy as np, flashkmeans
path = sys.argv[1]
n, d = 1 << 20, 32                      # 128 MB of float32
x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
x[:] = np.random.RandomState(0).rand(n, d)
x.flush()
del x
flashkmeans.Kmeans(d, 8, niter=1, backend="cpu").train(np.random.rand(1000, d).astype(np.float32))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
mm = np.load(path, mmap_mode="r")
flashkmeans.Kmeans(d, 16, niter=2, backend="cpu", max_points_per_centroid=1 << 20).train(mm)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(before, peak, mm.nbytes)
"""


def test_training_on_a_memmap_holds_one_copy_of_the_points(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "x.npy")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    before, peak, nbytes = map(int, r.stdout.split()[-3:])
    # the file's pages (read once) plus the per-point labels, distances and
    # norms (12 bytes a point); a copy of the points would add another 128 MB
    assert peak - before < nbytes + (1 << 20) * 12 + (32 << 20), (before, peak, nbytes)
