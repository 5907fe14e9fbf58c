#!/usr/bin/env bash
# Where the Hopper FlashAssign's warps wait, by Nsight Compute on the GPU
# machine (after `bash bench/gpu_run.sh build`, which compiles with -lineinfo):
# the kernel's stall reasons per issued instruction, then the source lines
# and SASS that collect the most stall samples. Logs and the report go to $OUT.
#
#   bash bench/profile_sm90.sh [ROW ...]   (bench_kernels rows; default 1Mx8192x128-fp16)
#   FLASHKMEANS_FA_SM90_X=streamed bash bench/profile_sm90.sh 1Mx4096x768-fp16
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}
mkdir -p "$OUT"
LIB=$PWD/.prefix/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB:${LD_LIBRARY_PATH:-}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(1Mx8192x128-fp16)
for row in "${rows[@]}"; do
  rep="$OUT/ncu_$row"
  # one launch after the warm-ups; full sections, stall sampling by source line
  timeout 300 ncu --kernel-name regex:flash_assign_sm90 --launch-skip 3 --launch-count 1 \
    --set full --import-source yes -f -o "$rep" \
    build-gpu/bench/bench_kernels --only "$row" > "$rep.run.log" 2>&1
  echo "$row: ncu exit $?"
  ncu -i "$rep.ncu-rep" --page raw --csv \
    --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
    > "$rep.stalls.csv" 2>&1
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass > "$rep.sass.csv" 2>&1
  ncu -i "$rep.ncu-rep" --page details > "$rep.details.txt" 2>&1
  python3 - "$rep" <<'PY'
import csv, sys
rep = sys.argv[1]
# kernel-level stall reasons, largest first
try:
    rows = list(csv.reader(open(rep + ".stalls.csv")))
    head, units, vals = rows[0], rows[1], rows[2]
    pairs = [(float(v), h.split("issue_stalled_")[1].split("_per_issue")[0])
             for h, v in zip(head, vals) if "issue_stalled_" in h and v.replace(".", "", 1).isdigit()]
    print("stall cycles per issued instruction:",
          ", ".join(f"{n} {v:.2f}" for v, n in sorted(pairs, reverse=True)[:8]))
except Exception as e:
    print("stall table unreadable:", e)
# the SASS lines with the most stall samples
try:
    rows = list(csv.reader(open(rep + ".sass.csv")))
    hi = next(i for i, r in enumerate(rows) if any("Source" in c for c in r))
    head = rows[hi]
    col = next(i for i, h in enumerate(head) if "Warp Stall Sampling (All" in h)
    src = next(i for i, h in enumerate(head) if h.strip() == "Source")
    body = [r for r in rows[hi + 1:] if len(r) > col and r[col].replace(".", "", 1).isdigit()]
    total = sum(float(r[col]) for r in body) or 1.0
    print("top SASS by stall samples (% of all):")
    for r in sorted(body, key=lambda r: -float(r[col]))[:25]:
        print(f"  {100 * float(r[col]) / total:5.1f}%  {r[src].strip()[:100]}")
except Exception as e:
    print("source table unreadable:", e)
PY
done
