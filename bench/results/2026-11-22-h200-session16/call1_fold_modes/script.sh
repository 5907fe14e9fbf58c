#!/usr/bin/env bash
# session 16 call 1: build the fold-mode experiment, Hopper tests per mode, burst A/B
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}; mkdir -p $OUT
t0=$(date +%s)
bash bench/gpu_run.sh build | tail -3
echo "build $(( $(date +%s) - t0 )) s"
grep -c "C75" $OUT/build.log
rm -f $OUT/configure.log $OUT/build.log
export LD_LIBRARY_PATH=$PWD/.prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:$PWD/.prefix/usr/lib/x86_64-linux-gnu
for f in acc gated; do
  FLASHKMEANS_FA_SM90_FOLD=$f timeout 150 build-gpu/tests/flashkmeans_gpu_tests --gtest_filter='CudaFlashAssign.*:CudaBackend*' > $OUT/tests_$f.log 2>&1
  echo "tests $f exit $?: $(grep -E '^\[  PASSED|^\[  FAILED' $OUT/tests_$f.log | tr '\n' ' ')"
  grep -E "^\[  FAILED" $OUT/tests_$f.log | head
done
echo "tests done $(( $(date +%s) - t0 )) s"
for pass in 1 2; do
  for row in 1Mx8192x128-fp16 4Mx4096x128-fp16 1Mx1024x128-fp16 1Mx65536x128-fp16; do
    modes="bias acc gated"; [ $pass = 2 ] && modes="gated acc bias"
    for f in $modes; do
      ms=$(FLASHKMEANS_FA_SM90_FOLD=$f timeout 60 build-gpu/bench/bench_kernels --only $row 2>>$OUT/stderr.log | grep -E "^\| $row " | awk -F'|' '{gsub(/ /,"",$7); print $7}')
      echo "burst $row $f ${ms:-fail}" | tee -a $OUT/ab.txt
    done
  done
done
echo "bursts done $(( $(date +%s) - t0 )) s"
