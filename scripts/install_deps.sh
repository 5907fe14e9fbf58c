#!/usr/bin/env bash
# Installs what flashkmeans builds and tests with, pinned: Debian packages
# (FAISS 1.7.3, OpenBLAS, GoogleTest, CMake, Ninja; clang for the fuzzers,
# clang-format for scripts/check_format.sh; Open MPI for data-parallel
# training and its tests) and
# Python packages for the Python package and its tests (scikit-learn, scipy and
# pandas for flashkmeans.KMeans's tests: scikit-learn's estimator checks run
# their DataFrame checks only with pandas; mpi4py, built against that Open MPI,
# for Kmeans(comm=)'s tests). Idempotent: skips what is already there.
set -euo pipefail

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
