"""The package as installed from a repaired wheel (scripts/test_wheel.sh):
the extension loads OpenBLAS and the other libraries outside the manylinux
policy from the wheel's own flashkmeans.libs/, asks the system only for what
the policy allows, trains, and ships its typing marker and stubs. Skipped
unless flashkmeans was installed from such a wheel."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import flashkmeans

from conftest import blobs

PACKAGE = pathlib.Path(flashkmeans.__file__).resolve().parent
VENDORED = PACKAGE.parent / "flashkmeans.libs"

pytestmark = pytest.mark.skipif(
    not VENDORED.is_dir(), reason="not installed from a repaired wheel (scripts/build_wheel.sh)")

# The system libraries the manylinux policies let a wheel use (PEP 599/600),
# those this extension can need.
SYSTEM = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1",
          "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"}


def extension():
    (path,) = PACKAGE.glob("_flashkmeans*.so")
    return path


def needed_libraries():
    """{name: path the loader resolves it to} for the extension (ldd)."""
    out = subprocess.run(["ldd", str(extension())], check=True, capture_output=True,
                         text=True).stdout
    needed = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("/"):
            found = len(parts) > 2 and parts[1] == "=>" and parts[2] != "not"
            needed[parts[0]] = os.path.realpath(parts[2]) if found else "not found"
    return needed


def test_the_extension_needs_from_the_system_only_what_manylinux_allows():
    needed = needed_libraries()
    assert "not found" not in [where for name, where in needed.items() if name != "linux-vdso.so.1"]
    outside = {name: where for name, where in needed.items()
               if name not in SYSTEM and not where.startswith(str(VENDORED))}
    assert outside == {}
    vendored = [name for name in needed if name not in SYSTEM]
    assert any("openblas" in name for name in vendored)
    assert any("gomp" in name for name in vendored)


def test_openblas_in_the_process_is_the_wheels_own():
    flashkmeans.Kmeans(4, 3, backend="cpu").train(blobs(300, 4, 3))  # BLAS has run
    maps = pathlib.Path("/proc/self/maps").read_text().splitlines()
    openblas = {line.split()[-1] for line in maps if "libopenblas" in line}
    # the wheel's own is loaded, and none from the system (faiss-cpu's wheel
    # may bring its own as well)
    assert any(path.startswith(str(VENDORED)) for path in openblas), openblas
    assert not [path for path in openblas if path.startswith(("/usr/", "/lib"))]


@pytest.mark.skipif(not flashkmeans.cuda_compiled(), reason="a CPU-only wheel")
def test_the_cuda_wheel_has_the_cuda_runtime_inside_and_leaves_the_driver_out():
    # cudart is linked statically; libcuda comes with the NVIDIA driver
    assert not [name for name in needed_libraries() if "libcuda" in name]
    assert not [p.name for p in VENDORED.iterdir() if "libcuda" in p.name]


def test_trains_and_assigns():
    x = blobs(4000, 8, 5, seed=2, spread=0.05)
    km = flashkmeans.Kmeans(8, 5, niter=20, init="kmeans++", max_points_per_centroid=1000,
                            backend="cpu", seed=3)
    km.train(x)
    _, labels = km.assign(x)
    d2 = ((x[:, None, :] - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, d2.argmin(1))
    assert km.obj[-1] < km.obj[0]
    assert km.obj[-1] < 4000 * 8 * 0.05**2 * 1.5  # found the 5 blobs


def test_ships_its_typing_marker_and_the_extension_stubs():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_flashkmeans.pyi").is_file()
