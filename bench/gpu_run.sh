#!/usr/bin/env bash
# One call on the GPU machine: unpack the carried Debian packages (FAISS,
# GoogleTest, OpenBLAS) into a prefix, build with CUDA, run the GPU tests,
# compute-sanitizer (memcheck, racecheck, synccheck, initcheck) on the small tests, the kernel and end-to-end benchmarks
# and Flash-KMeans on the same rows; logs go to $OUT, a short table last.
#
#   bash bench/gpu_run.sh [build|test|bench|python|calls|all]   (default: all)
#   bash bench/gpu_run.sh base-start; ...; bash bench/gpu_run.sh base-wait   (before/after, bench/ab_kernels.sh)
#   bash bench/gpu_run.sh prepare; ...; bash bench/gpu_run.sh wait   (builds in the background)
# GPU_RUN_CMAKE_ARGS adds configure arguments (e.g. an MPI unpacked into a prefix).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}
mkdir -p "$OUT"
what=${1:-all}
P=$PWD/.prefix
LIB=$P/usr/lib/x86_64-linux-gnu
if [ ! -d "$P/usr/include/faiss" ]; then
  for f in .deb/*.deb; do dpkg -x "$f" "$P"; done
fi
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB:${LD_LIBRARY_PATH:-}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"

if [ "$what" = prepare ]; then
  # Starts the C++ build and the Python package build in the background (a
  # new process session outlives this call while the machine stays warm) so
  # the next calls find them done: `bash bench/gpu_run.sh wait` waits for both.
  # Also stashes carried wheel parts (.fc1/part_*) for a wheel too large for
  # one call; bench/compare_gpu.sh joins them.
  mkdir -p /tmp/fcparts && cp .fc1/part_* /tmp/fcparts/ 2>/dev/null
  setsid bash -c "OUT=/tmp/bg_gpu bash bench/gpu_run.sh build > /tmp/build_gpu.log 2>&1; echo done > /tmp/build_gpu.done" \
    < /dev/null > /dev/null 2>&1 &
  setsid bash -c "OUT=/tmp/bg_py bash bench/compare_gpu.sh setup > /tmp/build_py.log 2>&1; echo done > /tmp/build_py.done" \
    < /dev/null > /dev/null 2>&1 &
  echo "background builds started"
  exit 0
fi
if [ "$what" = wait ]; then
  while [ ! -f /tmp/build_gpu.done ] || [ ! -f /tmp/build_py.done ]; do sleep 2; done
  cat /tmp/build_gpu.log; tail -3 /tmp/build_py.log
  exit 0
fi
if [ "$what" = base-start ]; then
  # the "before" tree of a before/after run (carried as .base, e.g.
  # `git archive <commit> | tar -x -C .base`), built in the background with
  # the same flags while this call goes on; base-wait waits for it
  setsid bash -c "cmake -S .base -B .base/build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH=$P/usr -DCMAKE_LIBRARY_PATH=$LIB/openblas-pthread -DFLASHKMEANS_CUDA=ON \
      -DFLASHKMEANS_BUILD_TOOLS=OFF -DFLASHKMEANS_BUILD_TESTS=OFF -DCMAKE_CUDA_FLAGS=-lineinfo \
      '-DFLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a' > $OUT/base_build.log 2>&1 \
    && cmake --build .base/build-gpu -j 8 --target bench_lloyd >> $OUT/base_build.log 2>&1; \
    echo \$? > /tmp/base_build.done" < /dev/null > /dev/null 2>&1 &
  echo "base build started"
  exit 0
fi
if [ "$what" = base-wait ]; then
  while [ ! -f /tmp/base_build.done ]; do sleep 2; done
  echo "base build exit $(cat /tmp/base_build.done)"
  exit "$(cat /tmp/base_build.done)"
fi
if [ "$what" = all ] || [ "$what" = build ]; then
  # -lineinfo: source lines for bench/profile_sm90.sh (the generated code is the same);
  # the CLI too, so that flashkmeans_tests holds the CLI tests that need a GPU (Cli.Devices*)
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$P/usr" -DCMAKE_LIBRARY_PATH="$LIB/openblas-pthread" \
    -DFLASHKMEANS_CUDA=ON -DCMAKE_CUDA_FLAGS=-lineinfo \
    "-DFLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" ${GPU_RUN_CMAKE_ARGS:-} \
    > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
  cmake --build build-gpu -j 16 > "$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
  echo "build ok"
fi
if [ "$what" = all ] || [ "$what" = test ]; then
  timeout 300 build-gpu/tests/flashkmeans_gpu_tests > "$OUT/gpu_tests.log" 2>&1
  echo "gpu tests exit $?"
  grep -E "^\[  FAILED|^\[  PASSED|^\[  SKIPPED|agree|Failure" "$OUT/gpu_tests.log" | head -40
  # all four compute-sanitizer tools over the small GPU tests; each must end
  # with "0 errors" (racecheck: "0 hazards")
  for tool in memcheck racecheck synccheck initcheck; do
    timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 build-gpu/tests/flashkmeans_gpu_tests \
      --gtest_filter='*Small*:-*Absurd*' > "$OUT/$tool.log" 2>&1
    echo "$tool exit $?: $(tail -1 "$OUT/$tool.log")"
  done
fi
if [ "$what" = all ] || [ "$what" = bench ]; then
  timeout 200 build-gpu/bench/bench_kernels > "$OUT/bench_kernels.log" 2>&1
  timeout 220 build-gpu/bench/bench_lloyd --kmeanspp > "$OUT/bench_lloyd.log" 2>&1
  PYTHONUNBUFFERED=1 timeout 200 python3 bench/flash_kmeans_ref.py > "$OUT/flash_kmeans_ref.log" 2>&1
  grep -E "^\||^#" "$OUT/bench_kernels.log" "$OUT/bench_lloyd.log" "$OUT/flash_kmeans_ref.log"
fi
if [ "$what" = calls ]; then
  # whole calls from Python beside Flash-KMeans (bench/call_cost.py), on the
  # package built for sm_90a; Flash-KMeans' wheel comes in .whl
  python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/fkpy -Cbuild-dir=build-py \
    -Ccmake.define.CMAKE_PREFIX_PATH="$P/usr" -Ccmake.define.CMAKE_LIBRARY_PATH="$LIB/openblas-pthread" \
    "-Ccmake.define.FLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" \
    . > "$OUT/python_build.log" 2>&1 || { tail -30 "$OUT/python_build.log"; exit 1; }
  PYTHONPATH=/tmp/fkpy:${PYTHONPATH:-} PYTHONUNBUFFERED=1 timeout ${CALLS_TIMEOUT:-300} \
    python3 bench/call_cost.py ${CALLS_ARGS:-} --json "$OUT/call_cost.json" 2>&1 | tee "$OUT/call_cost.log" | grep -E "^\||^#"
fi
if [ "$what" = python ]; then
  # the Python package built on the device; its GPU tests (torch/cupy input)
  python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/fkpy -Cbuild-dir=build-py \
    -Ccmake.define.CMAKE_PREFIX_PATH="$P/usr" -Ccmake.define.CMAKE_LIBRARY_PATH="$LIB/openblas-pthread" \
    . > "$OUT/python_build.log" 2>&1 || { tail -30 "$OUT/python_build.log"; exit 1; }
  (cd tests/python && PYTHONPATH=/tmp/fkpy:${PYTHONPATH:-} timeout 300 python3 -m pytest -q -p no:cacheprovider . \
    > "$OUT/pytest_gpu.log" 2>&1; echo "pytest exit $?")
  grep -E "passed|failed|FAILED|Error" "$OUT/pytest_gpu.log" | tail -15
fi
