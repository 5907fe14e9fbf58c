#!/usr/bin/env bash
# session 16 call 2: fold modes at the power cap (bench_lloyd --iters 40), bursts at k = 65536
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}; mkdir -p $OUT
t0=$(date +%s)
bash bench/gpu_run.sh build | tail -1; rm -f $OUT/configure.log $OUT/build.log
echo "build $(( $(date +%s) - t0 )) s"
export LD_LIBRARY_PATH=$PWD/.prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:$PWD/.prefix/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 500 > $OUT/smi.csv &
smi=$!
for pass in 1 2; do
  for row in 1Mx8192x128-fp16 4Mx4096x128-fp16 8Mx1024x128-fp16 1Mx1024x128-fp16; do
    modes="bias acc hybrid"; [ $pass = 2 ] && modes="hybrid acc bias"
    for f in $modes; do
      r=$(FLASHKMEANS_FA_SM90_FOLD=$f timeout 60 build-gpu/bench/bench_lloyd --only $row --iters 40 2>>$OUT/stderr.log | grep -E "^\| $row " | awk -F'|' '{gsub(/ /,"",$3); gsub(/ /,"",$4); print $3, $4}')
      echo "cap $row $f ${r:-fail}" | tee -a $OUT/ab.txt
    done
  done
done
echo "cap done $(( $(date +%s) - t0 )) s"
for pass in 1 2; do
  modes="bias acc gated hybrid"; [ $pass = 2 ] && modes="hybrid gated acc bias"
  for f in $modes; do
    r=$(FLASHKMEANS_FA_SM90_FOLD=$f timeout 90 build-gpu/bench/bench_kernels --only 1Mx65536x128-fp16 2>>$OUT/stderr.log | grep -E "^\| 1Mx65536" | awk -F'|' '{gsub(/ /,"",$7); gsub(/ /,"",$9); print $7, $9}')
    echo "burst 1Mx65536 $f ${r:-fail}" | tee -a $OUT/ab.txt
  done
done
echo "bursts done $(( $(date +%s) - t0 )) s"
for f in bias acc; do
  FLASHKMEANS_FA_SM90_FOLD=$f timeout 120 build-gpu/bench/bench_kernels --only 128-fp16 > $OUT/kernels_$f.log 2>&1
  grep -E "^\| 1M|^\| 4M|^\| 8M" $OUT/kernels_$f.log | awk -F'|' -v f=$f '{print "agree", f, $2, $7, $9}'
done
kill $smi
echo "all done $(( $(date +%s) - t0 )) s"
