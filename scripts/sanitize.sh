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
targets=(flashkmeans_tests flashkmeans_cli)
# the data-parallel tests too, when MPI was found
# (grep reads all of ninja's list: with -q, pipefail would see ninja's SIGPIPE)
if ninja -C "$BUILD" -t targets all | grep '^flashkmeans_mpi_tests:' > /dev/null; then
  targets+=(flashkmeans_mpi_tests)
fi
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$BUILD/tests/flashkmeans_tests" --gtest_brief=1
# The data-parallel tests under mpirun (3 ranks, each sanitized). Leak
# checking is off there only: Open MPI's runtime keeps allocations that
# LeakSanitizer reports as leaks at exit (not ours; the engine's own leaks
# are checked by the one-process suite above, the same code with one rank).
if [ -x "$BUILD/tests/flashkmeans_mpi_tests" ]; then
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 OMP_NUM_THREADS=1 \
    mpirun -np 3 --oversubscribe --allow-run-as-root -x ASAN_OPTIONS -x UBSAN_OPTIONS \
    -x OMP_NUM_THREADS "$BUILD/tests/flashkmeans_mpi_tests" --gtest_brief=1
fi
