"""One rank of test_mpi_comm.py (run under mpirun): Kmeans(..., comm=) on this
rank's shard must give the centroids and objectives of one process on all
the rows, bit for bit (integer-valued points: every cluster sum is exact in
any order), and the labels of this rank's rows. Exits 1 on a mismatch."""
import sys

import numpy as np
from mpi4py import MPI

import flashkmeans


def main():
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    n, d, k = 2000, 8, 16
    x = np.random.default_rng(5).integers(-6, 7, size=(n, d)).astype(np.float32)
    w = (1 + np.arange(n) % 3).astype(np.float32)
    # uneven shards, and rank 0 holds no rows when there are 3 ranks
    cuts = [0] + [n * (r + 1) * (r + 2) // (size * (size + 1)) for r in range(size)]
    if size == 3:
        cuts[1] = 0
    lo, hi = cuts[rank], cuts[rank + 1]
    failures = []
    for kw in ({}, {"nredo": 2}, {"init": "kmeans++"}, {"weights": True},
               {"max_points_per_centroid": 50}):
        kw = dict(kw)
        weighted = kw.pop("weights", False)
        one = flashkmeans.Kmeans(d, k, niter=10, backend="cpu", **kw)
        one.train(x, weights=w if weighted else None)
        many = flashkmeans.Kmeans(d, k, niter=10, backend="cpu", comm=comm, **kw)
        many.train(x[lo:hi], weights=w[lo:hi] if weighted else None)
        if many.centroids.tobytes() != one.centroids.tobytes():
            failures.append(f"{kw} weighted={weighted}: centroids differ")
        if not np.allclose(many.obj, one.obj, rtol=1e-6):
            failures.append(f"{kw} weighted={weighted}: objectives differ")
        _, l_one = one.assign(x[lo:hi])
        _, l_many = many.assign(x[lo:hi])
        if not (l_one == l_many).all():
            failures.append(f"{kw} weighted={weighted}: labels differ")
    for f in failures:
        print(f"rank {rank}: {f}", flush=True)
    print(f"rank {rank} of {size}: {'FAILED' if failures else 'ok'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
