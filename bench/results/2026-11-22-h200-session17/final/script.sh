#!/usr/bin/env bash
# session 17 call 7: final table (bench_kernels now at 2^20 points as the reference) + the TF32 GEMM ceiling
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}; mkdir -p $OUT
t0=$(date +%s)
bash bench/gpu_run.sh build | tail -1
rm -f $OUT/configure.log $OUT/build.log
bash bench/gpu_run.sh bench > $OUT/bench_summary.txt 2>&1; tail -45 $OUT/bench_summary.txt
echo "bench done $(( $(date +%s) - t0 )) s"
sleep 15
nvidia-smi --query-gpu=timestamp,power.draw,clocks.sm,clocks_throttle_reasons.active,temperature.gpu --format=csv -lms 100 > $OUT/smi_gemm_tf32.csv & SMI=$!
python3 bench/gemm_ceiling.py --dtype tf32 --seconds 8 > $OUT/gemm_ceiling_tf32.log 2>&1; kill $SMI
grep "^|" $OUT/gemm_ceiling_tf32.log
echo "done $(( $(date +%s) - t0 )) s"
