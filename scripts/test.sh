#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything, runs
# every C++ test (GPU tests skip themselves without a GPU) and the pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
BUILD=${BUILD_DIR:-build}
ctest --test-dir "$BUILD" -j "$(nproc)" --output-on-failure
PY=${PYTHON:-python3}
# run from tests/ so the installed package, not the source folder, is imported
(cd tests/python && "$PY" -m pytest -q .)
