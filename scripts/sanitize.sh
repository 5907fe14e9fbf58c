#!/usr/bin/env bash
# The C++ suite and the CLI tests under AddressSanitizer and
# UndefinedBehaviorSanitizer: a CPU-only build (no CUDA, no benchmarks, so it
# stays quick) in build-asan/, every flashkmeans_tests case run once. Any
# sanitizer report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ASAN_BUILD_DIR:-build-asan}
FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLASHKMEANS_CUDA=OFF -DFLASHKMEANS_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build "$BUILD" -j "$(nproc)" --target flashkmeans_tests flashkmeans_cli
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$BUILD/tests/flashkmeans_tests" --gtest_brief=1
