#!/usr/bin/env bash
# One GPU call: time every FlashAssign variant (FLASHKMEANS_FA_CONFIG) and
# every sort-inverse update variant (FLASHKMEANS_UPDATE_CONFIG) with
# bench_kernels, print one compact table, then run the GPU tests of the
# kernels under the fastest variants (edge shapes: odd n / k / d, IP,
# misaligned inputs, batches, ties).
#
#   bash bench/sweep.sh            (2-4 minutes on an H200 once built)
#   SWEEP_TESTS=0 bash bench/sweep.sh   (benchmarks only)
#   SWEEP_ONLY=update bash bench/sweep.sh   (the update variants only, more rows, no tests)
#
# Builds build-gpu first when it is missing (bench/gpu_run.sh build, which
# needs the same carried packages). Logs and one JSON object per run go to
# $OUT (default /tmp/fk_out): sweep.log, sweep.jsonl, sweep_tests.log.
#
# Every bench run of a variant also runs the default on the same data and
# reports whether labels + distances (all N points) / sums + weights + counts
# are bitwise identical to the default ("same" columns: 1 = identical).
# Variants that do not replace a kernel for a dtype run the default for it,
# so the fp32 row is swept only over the variants with a 3xTF32 kernel.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}
mkdir -p "$OUT"
B=build-gpu/bench/bench_kernels
T=build-gpu/tests/flashkmeans_gpu_tests
LOG=$OUT/sweep.log
JS=$OUT/sweep.jsonl
: > "$LOG"
: > "$JS"

if [ ! -f build-gpu/build.ninja ]; then
  bash bench/gpu_run.sh build || exit 1
fi
# the sweep's configurations are compiled only into a tuning build
cmake build-gpu -DFLASHKMEANS_TUNING=ON >> "$LOG" 2>&1 || exit 1
P=$PWD/.prefix
LIB=$P/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB:${LD_LIBRARY_PATH:-}
cmake --build build-gpu --target bench_kernels -j 16 >> "$LOG" 2>&1 \
  || { grep -E "error" -A3 "$LOG" | head -40; exit 1; }
cmake --build build-gpu --target flashkmeans_gpu_tests -j 16 >> "$LOG" 2>&1 \
  || echo "(GPU tests not built: no test phase)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader

FA_HALF="default s3 s5 bias k64 k64s3 k64bias w4 w4k64 m256 n256"
FA_EXACT="default bias k64bias w4 m256 n256 e2"
UPD="default r16 r8 t16384 m512 w4 s32 s64 sort8 pairs"

# run FA_CONFIG UPDATE_CONFIG N K D DTYPE
run() {
  local fa=$1 up=$2
  shift 2
  echo "== FLASHKMEANS_FA_CONFIG=$fa FLASHKMEANS_UPDATE_CONFIG=$up $*" >> "$LOG"
  FLASHKMEANS_FA_CONFIG=$fa FLASHKMEANS_UPDATE_CONFIG=$up timeout 90 "$B" "$@" > "$OUT/run.txt" 2>&1
  local rc=$?
  cat "$OUT/run.txt" >> "$LOG"
  if grep -q '^{"row"' "$OUT/run.txt"; then
    grep '^{"row"' "$OUT/run.txt" >> "$JS"
  else
    echo "{\"row\": \"$1x$2x$3-$4\", \"fa_config\": \"$fa\", \"update_config\": \"$up\", \"failed\": $rc}" >> "$JS"
    echo "FAILED (exit $rc): fa=$fa update=$up $*"; tail -3 "$OUT/run.txt"
  fi
}

start=$(date +%s)
if [ "${SWEEP_ONLY:-}" = update ]; then
  for up in $UPD; do
    run default "$up" 100000 100 128 fp16
    run default "$up" 1000000 1024 128 fp16
    run default "$up" 8000000 1024 128 fp16
    run default "$up" 1000000 1024 128 fp32
    run default "$up" 1000000 1024 768 fp16
  done
else
  for fa in $FA_HALF; do
    run "$fa" default 1000000 1024 128 fp16
    run "$fa" default 1000000 8192 128 fp16
  done
  for fa in $FA_EXACT; do
    run "$fa" default 1000000 1024 128 fp32
  done
  for up in $UPD; do
    [ "$up" = default ] && continue  # the default is in the FA sweep
    run default "$up" 1000000 1024 128 fp16
  done
  for up in $UPD; do
    run default "$up" 8000000 1024 128 fp16
  done
fi
echo "bench sweep: $(( $(date +%s) - start )) s"

python3 - "$JS" "$OUT/winners.txt" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def f(v, fmt):
    return format(v, fmt) if isinstance(v, (int, float)) else "-"
def same(v):
    return "-" if v is None or v < 0 else ("yes" if v == 1 else "NO %.6f" % v)
print("| fa config | update config | row | assign ms | TFLOP/s | agree ref | FA same as default"
      " | update ms bal | update ms skew | update same as default |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if "failed" in r:
        print("| %s | %s | %s | FAILED (exit %s) |" % (r["fa_config"], r["update_config"], r["row"], r["failed"]))
        continue
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        r["fa_config"], r["update_config"], r["row"], f(r["assign_ms"], ".3f"),
        f(r["assign_tflops"], ".1f"), f(100 * r["agree_ref"], ".3f") + "%",
        same(r.get("fa_same_as_default")), f(r["update_balanced_ms"], ".3f"),
        f(r["update_skewed_ms"], ".3f"), same(r.get("update_same_as_default"))))
ok = [r for r in rows if "failed" not in r]
def exact_fa(r):
    return r["fa_config"] == "default" or r.get("fa_same_as_default") == 1
print()
win = {}
for row in sorted({r["row"] for r in ok}):
    fa = [r for r in ok if r["row"] == row and r["update_config"] == "default" and exact_fa(r)]
    if len(fa) > 1:
        b = min(fa, key=lambda r: r["assign_ms"])
        d = [r for r in fa if r["fa_config"] == "default"]
        base = d[0]["assign_ms"] if d else float("nan")
        print("fastest FA  %-24s %-8s %.3f ms (default %.3f ms, %.1f%%)" % (
            row, b["fa_config"], b["assign_ms"], base, 100 * (base / b["assign_ms"] - 1)))
        win.setdefault("fa_" + row.split("-")[-1], []).append(b["fa_config"])
    # update variants of another piece length combine cut clusters in another
    # order: other bits, as exact; all compete
    up = [r for r in ok if r["row"] == row and r["fa_config"] == "default"]
    if len(up) > 1:
        key = lambda r: r["update_balanced_ms"] + r["update_skewed_ms"]
        b = min(up, key=key)
        d = [r for r in up if r["update_config"] == "default"]
        print("fastest UPD %-24s %-8s %.3f + %.3f ms (default %.3f + %.3f ms)" % (
            row, b["update_config"], b["update_balanced_ms"], b["update_skewed_ms"],
            d[0]["update_balanced_ms"] if d else float("nan"),
            d[0]["update_skewed_ms"] if d else float("nan")))
        win.setdefault("update", []).append(b["update_config"])
bad = [r for r in ok if not exact_fa(r)]
if bad:
    print("NOT BITWISE EQUAL TO THE DEFAULT:", ", ".join(
        "%s/%s/%s" % (r["fa_config"], r["update_config"], r["row"]) for r in bad))
with open(sys.argv[2], "w") as out:
    for k, v in win.items():
        out.write("%s %s\n" % (k, " ".join(sorted(set(v)))))
EOF

# the GPU tests of the kernels under each winning variant (edge shapes), while
# the time lasts (the float64 references of the tests run on the host)
: > "$OUT/sweep_tests.log"
COMMON='CudaFlashAssign.Ties*:CudaFlashAssign.Misaligned*:CudaFlashAssign.Batch*:CudaFlashAssign.Small*'
gtest() {  # VAR VALUE FILTER
  if [ "${SWEEP_TESTS:-1}" = 0 ] || [ $(( $(date +%s) - start )) -gt 150 ]; then
    echo "gpu tests under $1=$2: skipped (time)"; return
  fi
  echo "== $1=$2 --gtest_filter=$3" >> "$OUT/sweep_tests.log"
  env "$1=$2" timeout 60 "$T" --gtest_filter="$3" >> "$OUT/sweep_tests.log" 2>&1
  local rc=$?
  echo "gpu tests under $1=$2: exit $rc ($(grep -cE '^\[       OK' "$OUT/sweep_tests.log") OK so far)"
}
if [ -f "$OUT/winners.txt" ] && [ -x "$T" ]; then
  for v in $(grep '^fa_fp16 ' "$OUT/winners.txt" | cut -d' ' -f2-); do
    [ "$v" = default ] || gtest FLASHKMEANS_FA_CONFIG "$v" "CudaFlashAssign.TiledHalf*:$COMMON"
  done
  for v in $(grep '^fa_fp32 ' "$OUT/winners.txt" | cut -d' ' -f2-); do
    [ "$v" = default ] || gtest FLASHKMEANS_FA_CONFIG "$v" "CudaFlashAssign.TiledFp32Exact*:$COMMON"
  done
  for v in $(grep '^update ' "$OUT/winners.txt" | cut -d' ' -f2-); do
    [ "$v" = default ] || gtest FLASHKMEANS_UPDATE_CONFIG "$v" 'CudaUpdate.*'
  done
  grep -E "^\[  FAILED|^\[  PASSED" "$OUT/sweep_tests.log" | sort | uniq -c | head -20
fi
echo "total: $(( $(date +%s) - start )) s"
