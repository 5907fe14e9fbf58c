#!/usr/bin/env bash
# Session 18 call 3: build (max-first fold default from k = 32768), GPU tests, sanitizers with the
# max-first fold forced, and scan vs auto at k >= 16384 (same binary, env switch, alternating).
set -uo pipefail
export LD_LIBRARY_PATH=$PWD/.prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:$PWD/.prefix/usr/lib/x86_64-linux-gnu
bash bench/gpu_run.sh build 2>&1 | tail -3
git log -1 --format=%h > $OUT/commit.txt 2>/dev/null; git status --short >> $OUT/commit.txt 2>/dev/null
timeout 300 build-gpu/tests/flashkmeans_gpu_tests > $OUT/gpu_tests.log 2>&1
echo "gpu tests rc $?: $(grep -E '^\[  PASSED|^\[  FAILED' $OUT/gpu_tests.log | head -8)"
grep -E "^\[       OK \] CudaFlashAssign.HopperMaxFirst|^\[       OK \] CudaFlashAssign.HopperManyTiles" $OUT/gpu_tests.log
export FLASHKMEANS_FA_SM90_FOLD=max
timeout 120 compute-sanitizer --tool memcheck build-gpu/tests/flashkmeans_gpu_tests --gtest_filter='*Small*:-*Absurd*' > $OUT/memcheck_max.log 2>&1; echo "memcheck (max) rc $?: $(tail -1 $OUT/memcheck_max.log)"
timeout 120 compute-sanitizer --tool racecheck build-gpu/tests/flashkmeans_gpu_tests --gtest_filter='*Small*' > $OUT/racecheck_max.log 2>&1; echo "racecheck (max) rc $?: $(tail -1 $OUT/racecheck_max.log)"
unset FLASHKMEANS_FA_SM90_FOLD
rm -f $OUT/configure.log $OUT/build.log
for pass in 1 2; do
  order="scan auto"; [ $pass = 2 ] && order="auto scan"
  for v in $order; do
    for k in 16384 32768 65536; do
      FLASHKMEANS_FA_SM90_FOLD=$v build-gpu/bench/bench_kernels 1048576 $k 128 fp16 2>/dev/null | awk -F'|' -v v=$v '/fp16/ && $7+0>0 {print "burst", v, $2, $7, $9}' | head -1
    done
    FLASHKMEANS_FA_SM90_FOLD=$v build-gpu/bench/bench_lloyd --only 1Mx65536 --iters 30 2>/dev/null | awk -F'|' -v v=$v '$3+0>0 {print "cap", v, $2, $3, $4}' | head -1
  done
done | tee $OUT/fold_ab.txt
