# device calls of this session: part1 = build, GPU tests, sanitizers; part2 = whole calls + before/after
export OUT
T0=$SECONDS
P=$PWD/.prefix; LIB=$P/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB:${LD_LIBRARY_PATH:-}
if [ "$1" = part1 ]; then
  bash bench/gpu_run.sh base-start >/dev/null
  bash bench/gpu_run.sh build || exit 1
  echo "built at $((SECONDS-T0)) s"
  setsid bash -c "python3 -m pip install -q --no-build-isolation --no-deps --target /tmp/fkpy -Cbuild-dir=build-py -Ccmake.define.CMAKE_PREFIX_PATH=$P/usr -Ccmake.define.CMAKE_LIBRARY_PATH=$LIB/openblas-pthread '-Ccmake.define.FLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a' . > /tmp/pyb.log 2>&1; echo \$? > /tmp/pyb.done" </dev/null >/dev/null 2>&1 &
  timeout 300 build-gpu/tests/flashkmeans_gpu_tests > "$OUT/gpu_tests.log" 2>&1
  echo "gpu tests exit $? at $((SECONDS-T0)) s"
  grep -E "^\[  FAILED|^\[  PASSED|^\[  SKIPPED|refused|Failure" "$OUT/gpu_tests.log" | head -30
  for tool in memcheck racecheck synccheck initcheck; do
    [ $((SECONDS-T0)) -gt 480 ] && { echo "$tool: no time left"; continue; }
    timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 build-gpu/tests/flashkmeans_gpu_tests \
      --gtest_filter='*Small*:-*Absurd*' > "$OUT/$tool.log" 2>&1
    echo "$tool exit $?: $(tail -1 "$OUT/$tool.log")"
  done
  echo "part1 done at $((SECONDS-T0)) s"
fi
if [ "$1" = part2 ]; then
  while [ ! -f /tmp/pyb.done ]; do sleep 2; done
  echo "python build exit $(cat /tmp/pyb.done) at $((SECONDS-T0)) s"
  PYTHONPATH=/tmp/fkpy:/tmp/site PYTHONUNBUFFERED=1 timeout 300 \
    python3 bench/call_cost.py ${CALLS_ARGS:-} --json "$OUT/call_cost.json" > "$OUT/call_cost.log" 2>&1
  echo "calls exit $? at $((SECONDS-T0)) s"
  grep -E "^\||^#" "$OUT/call_cost.log" | head -60
  bash bench/gpu_run.sh base-wait && AB_COLUMN=3 AB_ARGS="--iters 20" bash bench/ab_kernels.sh \
    "base=.base/build-gpu/bench/bench_lloyd new=build-gpu/bench/bench_lloyd" \
    "1Mx1024x128-fp16 32x65536x1024x128-fp16 1Mx8192x128-fp16 1Mx1024x128-fp32-exact 100000x100x128-fp16" 2 2>&1 | tail -15
  echo "part2 done at $((SECONDS-T0)) s"
fi
