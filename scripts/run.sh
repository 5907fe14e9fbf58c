#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, then trains k-means on
# the built-in dataset (a Gaussian mixture with known centres) on the GPU if
# one is visible, else on the CPU. Extra arguments go to `flashkmeans train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
BUILD=${BUILD_DIR:-build}
exec "$BUILD/tools/flashkmeans" train "$@"
