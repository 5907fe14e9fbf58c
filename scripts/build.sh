#!/usr/bin/env bash
# Configures and builds the library, the CLI, the C++ tests and benchmarks in
# build/ (CUDA kernels too when nvcc is found), and installs the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
export PATH=$PATH:/usr/local/cuda/bin
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$(nproc)"
PY=${PYTHON:-python3}
# the extension builds in its own folder so rebuilds are incremental
"$PY" -m pip install -q --no-build-isolation -Cbuild-dir="$BUILD/python" .
