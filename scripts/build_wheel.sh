#!/usr/bin/env bash
# Builds a self-contained manylinux wheel of the Python package into
# build/wheel/dist (WHEEL_DIR): `pip wheel` (CPU only; the CUDA kernels too with
# WHEEL_CUDA=1, the CUDA runtime linked statically so the wheel needs only the
# NVIDIA driver), then `auditwheel repair`, which copies the shared libraries
# the extension needs outside the manylinux policy (OpenBLAS, libgomp,
# libgfortran, libquadmath) into flashkmeans.libs/ and fails if it cannot;
# FAISS is linked statically. The platform tag follows this machine's glibc
# (manylinux_2_34 on Debian 12): an older tag needs a build in a manylinux
# image. The pinned tools live in their own virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${WHEEL_DIR:-build/wheel}
TOOLS=$PWD/build/wheel-tools
if [ ! -x "$TOOLS/bin/auditwheel" ]; then
  "$PY" -m venv "$TOOLS"
  bash scripts/install_deps.sh --venv wheel-tools "$TOOLS"
fi
defines=(-Ccmake.define.FLASHKMEANS_CUDA=OFF)
exclude=()
if [ "${WHEEL_CUDA:-0}" = 1 ]; then
  export PATH=$PATH:/usr/local/cuda/bin
  # no NCCL: a wheel would have to vendor libnccl (hundreds of MB); the wheel
  # drives one GPU per process (several through comm=, one process per GPU)
  defines=(-Ccmake.define.FLASHKMEANS_CUDA=ON -Ccmake.define.FLASHKMEANS_CUDART_STATIC=ON
           -Ccmake.define.FLASHKMEANS_NCCL=OFF)
  # the driver's library comes with the driver, never in a wheel
  exclude=(--exclude libcuda.so.1)
fi
rm -rf "$OUT/raw" "$OUT/dist"
# --no-build-isolation: the pinned scikit-build-core and nanobind of install_deps.sh
"$PY" -m pip wheel -q --no-build-isolation --no-deps -w "$OUT/raw" -Cbuild-dir="$OUT/build" \
  "${defines[@]}" .
PATH=$TOOLS/bin:$PATH auditwheel repair "${exclude[@]}" -w "$OUT/dist" "$OUT"/raw/flashkmeans-*.whl
wheel=$(ls "$OUT"/dist/flashkmeans-*manylinux*.whl)
PATH=$TOOLS/bin:$PATH auditwheel show "$wheel"
echo "wheel: $wheel"
