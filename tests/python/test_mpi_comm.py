"""Kmeans(..., comm=mpi4py communicator) under mpirun with 1, 2 and 3 ranks:
each rank trains on its own rows and gets one process's result on all rows
(mpi_comm_worker.py). Skipped without mpirun or mpi4py."""
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py")
MPIRUN = shutil.which("mpirun")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found (Open MPI)")


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_ranks_train_like_one_process_on_all_rows(ranks):
    worker = os.path.join(os.path.dirname(__file__), "mpi_comm_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [MPIRUN, "-np", str(ranks), "--oversubscribe", "--allow-run-as-root",
         sys.executable, worker],
        capture_output=True, text=True, timeout=300, env=env,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for rank in range(ranks):
        assert f"rank {rank} of {ranks}: ok" in out, out
