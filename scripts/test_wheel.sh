#!/usr/bin/env bash
# Builds the CPU-only wheel (scripts/build_wheel.sh), installs it with
# --no-deps into a fresh virtual environment that has only numpy and pytest,
# and runs the Python tests against it (from tests/python, so the installed
# wheel is imported, never the source tree): the tests of optional
# dependencies skip, and tests/python/test_wheel.py checks that the extension
# loads its libraries from the wheel. Then it adds the optional dependencies
# (scikit-learn, faiss-cpu, pandas) and runs the whole suite again. When nvcc
# is there, the CUDA wheel too, with a subset of the suite (no GPU here: the
# GPU tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PATH=$PATH:/usr/local/cuda/bin

# fresh_venv DIR WHEEL: a new virtual environment with numpy, pytest and WHEEL
fresh_venv() {
  rm -rf "$1"
  "$PY" -m venv "$1"
  bash scripts/install_deps.sh --venv wheel-test "$1"
  "$1/bin/python" -m pip install -q --no-deps "$2"
}

WHEEL_DIR=build/wheel bash scripts/build_wheel.sh
venv=$PWD/build/wheel-venv
fresh_venv "$venv" "$(ls build/wheel/dist/flashkmeans-*manylinux*.whl)"
echo "--- the CPU wheel with numpy and pytest only"
(cd tests/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider .)
bash scripts/install_deps.sh --venv wheel-optional "$venv"
echo "--- the CPU wheel with scikit-learn, faiss-cpu and pandas"
(cd tests/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider .)

if command -v nvcc >/dev/null; then
  WHEEL_DIR=build/wheel-cuda WHEEL_CUDA=1 bash scripts/build_wheel.sh
  venv=$PWD/build/wheel-cuda-venv
  fresh_venv "$venv" "$(ls build/wheel-cuda/dist/flashkmeans-*manylinux*.whl)"
  echo "--- the CUDA wheel with numpy and pytest only"
  (cd tests/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider \
     test_wheel.py test_typing.py test_kmeans.py test_inputs.py test_batch.py)
fi
