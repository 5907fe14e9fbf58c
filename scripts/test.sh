#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything, runs
# every C++ test (GPU tests skip themselves without a GPU), the CPU tests under
# each OpenBLAS core type, and the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
BUILD=${BUILD_DIR:-build}
ctest --test-dir "$BUILD" -j "$(nproc)" --output-on-failure
# the CPU kernel and FAISS-parity tests again under every OpenBLAS core type
bash scripts/test_core_types.sh
PY=${PYTHON:-python3}
# run from tests/ so the installed package, not the source folder, is imported
(cd tests/python && "$PY" -m pytest -q .)
