#!/usr/bin/env bash
# bench/compare.py --mode full on the GPU machine (one H100 or H200), split into
# device calls that each stay under ~9 minutes, merged into one compare.json.
#
#   bash bench/compare_gpu.sh setup            # installs the wheels and builds the package, nothing else
#   bash bench/compare_gpu.sh plan             # setup-free dry run: the plan and estimates per group
#   bash bench/compare_gpu.sh g1               # setup, then group g1
#   bash bench/compare_gpu.sh g2 g3 g4         # several groups in one call (one Python process)
#   bash bench/compare_gpu.sh ivf [ivf4m]      # the IVF build scenario (1M; 4M)
#   BUDGET=100000 bash bench/compare_gpu.sh all   # everything in one go (no 10-minute limit)
#
# Estimated run time per group (H200, from REFERENCE.md's timings; `plan` prints
# them; ~20 s of imports and warm-ups per call come on top):
#   g1 4.3 min, g2 3.4, g3 2.2, g4 2.7, ivf 4.3, ivf4m 12.5: 29 min in all
#   (+ setup: a fresh build of the package with CUDA, ~40 s, only when no
#   earlier build is carried in .carry/). FAISS's `add` on the CPU dominates
#   the IVF sets (~40 s per 1M points).
# A split that fits 10-minute calls: [g1 g3] (6.1 min, measured), [g2 g4]
# (8.6 min, measured), [ivf], and ivf4m once per GPU trainer:
#   IMPL=flashkmeans-gpu bash bench/compare_gpu.sh ivf4m; IMPL=faiss-gpu ...
# (IMPL: a space-separated list passed to compare.py as --impl).
# Every call passes --time-limit so that nothing starts that would end past
# BUDGET seconds (default 540) of the call: what did not fit is recorded as
# "skipped: --time-limit" and can be re-run with its group later.
#
# Each call lands on a bare machine. Carry these in every call:
#   .whl   flash_kmeans (and the faiss-cuda wheel, if the image has no faiss;
#          `import faiss` must give a build with faiss.get_num_gpus() > 0)
#   .deb   FAISS 1.7.3 + OpenBLAS headers/libraries for building flashkmeans
#   .carry (optional; ignored: `echo /.carry/ >> .git/info/exclude` once) with
#          what the previous call returned in $OUT: fk_site.tgz (the built
#          package: no rebuild) and compare.json (appended to, so the last
#          call's $OUT holds the whole table):
#            mkdir -p .carry && cp <files_at>/fk_site.tgz <files_at>/compare.json .carry/
# and set FLASHKMEANS_COMMIT=<git rev-parse HEAD> in the command (the copy there
# has no .git).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}
RES=${RES:-build-compare}  # ignored by git (build*/)
BUDGET=${BUDGET:-540}
mkdir -p "$OUT" "$RES"
export PYTHONUNBUFFERED=1
P=$PWD/.prefix
LIB=$P/usr/lib/x86_64-linux-gnu
SITE=${SITE:-$PWD/build-py/site}  # the built package (ignored by git)

setup_python() {
  if [ ! -d "$P/usr/include/faiss" ] && ls .deb/*.deb >/dev/null 2>&1; then
    for f in .deb/*.deb; do dpkg -x "$f" "$P"; done
  fi
  export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB:${LD_LIBRARY_PATH:-}
  # A wheel too large for one call (faiss-cuda, ~99 MB) comes in parts: the
  # first stashed in /tmp/fcparts by `bash bench/gpu_run.sh prepare` (from
  # .fc1/), the rest carried in .fc2/ with its sha256; joined and checked here.
  if ls .fc2/part_* >/dev/null 2>&1 && ls /tmp/fcparts/part_* >/dev/null 2>&1; then
    local whl=/tmp/faiss_cuda-1.14.1.post4-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
    cat /tmp/fcparts/part_* .fc2/part_* > "$whl"
    [ "$(sha256sum "$whl" | cut -c1-64)" = "$(cat .fc2/sha256)" ] || { echo "joined wheel: bad sha256"; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$whl" || exit 1
    echo "faiss-cuda installed from parts"
  fi
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
  fi
}

build_flashkmeans() {
  if [ -f "$SITE/flashkmeans/__init__.py" ]; then
    echo "flashkmeans: using $SITE"
  elif [ -f .carry/fk_site.tgz ]; then
    mkdir -p "$SITE" && tar xzf .carry/fk_site.tgz -C "$SITE" && echo "flashkmeans: unpacked .carry/fk_site.tgz"
  else
    local t0=$SECONDS
    # sm_90a only (H100/H200): half the compile time of the default two targets
    python3 -m pip install -q --no-build-isolation --no-deps --no-compile --target "$SITE" \
      -Cbuild-dir=build-py/build \
      -Ccmake.define.CMAKE_PREFIX_PATH="$P/usr" -Ccmake.define.CMAKE_LIBRARY_PATH="$LIB/openblas-pthread" \
      -Ccmake.define.FLASHKMEANS_CUDA=ON \
      "-Ccmake.define.FLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" \
      . > "$OUT/python_build.log" 2>&1 || { tail -30 "$OUT/python_build.log"; exit 1; }
    echo "flashkmeans: built in $((SECONDS - t0)) s"
    tar czf "$OUT/fk_site.tgz" -C "$SITE" . && ls -l "$OUT/fk_site.tgz"
  fi
  export PYTHONPATH=$SITE:${PYTHONPATH:-}
}

report_env() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
  python3 - <<'EOF'
import importlib
for name in ("flashkmeans", "faiss", "torch", "flash_kmeans", "pynvml", "matplotlib"):
    try:
        m = importlib.import_module(name)
        extra = ""
        if name == "flashkmeans":
            extra = f" cuda_available={m.cuda_available()}"
        if name == "faiss":
            extra = f" gpus={m.get_num_gpus() if hasattr(m, 'get_num_gpus') else 0}"
        print(f"{name} {getattr(m, '__version__', '?')}{extra}")
    except Exception as e:
        print(f"{name}: {type(e).__name__}: {e}")
EOF
}

what=${1:-plan}
if [ "$what" = plan ]; then
  setup_python
  python3 bench/compare.py --mode full --dry-run
  exit $?
fi

setup_python
build_flashkmeans
[ "$what" = setup ] && exit 0  # the package only (bench/gpu_run.sh prepare runs this in the background)
report_env
[ -f .carry/compare.json ] && [ ! -f "$RES/compare.json" ] && cp .carry/compare.json "$RES/compare.json"
only=()
[ "$what" = all ] || only=(--only "$(IFS=,; echo "$*")")
for i in ${IMPL:-}; do only+=(--impl "$i"); done
limit=$((BUDGET - SECONDS))
echo "groups: $*; --time-limit $limit s"
# --max-seconds: a run that fits the rest of the call may run (compare.py's
# own per-run cap of 90 s would skip the 4M IVF builds)
python3 bench/compare.py --mode full ${only[@]+"${only[@]}"} --out "$RES" --append --time-limit "$limit" \
  --max-seconds "$limit" \
  2>&1 | tee "$OUT/compare.log"
rc=${PIPESTATUS[0]}
cp "$RES"/compare.json "$RES"/compare.md "$OUT"/ 2>/dev/null
cp "$RES"/compare.png "$OUT"/ 2>/dev/null
echo "compare.py exit $rc"
exit "$rc"
