#!/usr/bin/env bash
# Fuzzes the file readers and the command-line parser with libFuzzer (clang):
# builds tests/fuzz in build-fuzz/, replays every kept regression input and
# seed once (all must pass), then fuzzes each target for FUZZ_SECONDS
# (default 30) from a scratch copy of its seeds, so the repository is left
# as it was unless fuzzing finds something. A found input (crash, timeout,
# out-of-memory, leak) is copied into tests/fuzz/regressions/<target>/ to be
# kept as a regression test, and the script exits 1.
#   FUZZ_SECONDS=60 scripts/fuzz.sh          FUZZ_TARGETS="npy cli_args" scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-30}
TARGETS=${FUZZ_TARGETS:-"npy fvecs bvecs ivecs cli_args"}
# A reader must refuse a header that claims more than the file holds before it
# allocates, so a small memory limit catches an allocation sized by the header;
# -timeout catches a hang.
LIMITS=(-rss_limit_mb=512 -timeout=5 -max_len=4096)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cmake -S tests/fuzz -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-$(command -v clang++ || command -v clang++-14)}" >/dev/null
cmake --build "$BUILD"

# scratch: logs, the fuzzed corpus, findings and the harnesses' input files
# (TMPDIR), in memory where /dev/shm is writable
SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM=${TMPDIR:-/tmp}
SCRATCH=$(mktemp -d "$SHM/fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
export TMPDIR=$SCRATCH
shopt -s nullglob

# (a) every kept input once: libFuzzer runs the files it is given and exits
for t in $TARGETS; do
  files=(tests/fuzz/regressions/"$t"/* tests/fuzz/corpus/"$t"/*)
  log=$SCRATCH/replay_$t.log
  if ! "$BUILD/fuzz_$t" "${LIMITS[@]}" "${files[@]}" >"$log" 2>&1; then
    cat "$log"
    echo "fuzz.sh: FAILED: fuzz_$t on a kept input (see the last 'Running:' line above)" >&2
    exit 1
  fi
  echo "fuzz.sh: fuzz_$t: ${#files[@]} kept inputs pass"
done

# (b) fuzz each target; new inputs go to the scratch corpus, findings to artifacts/
found=0
for t in $TARGETS; do
  mkdir -p "$SCRATCH/corpus/$t" "$SCRATCH/artifacts/$t"
  cp tests/fuzz/corpus/"$t"/* "$SCRATCH/corpus/$t"/
  log=$SCRATCH/fuzz_$t.log
  if "$BUILD/fuzz_$t" "${LIMITS[@]}" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
      -artifact_prefix="$SCRATCH/artifacts/$t/" "$SCRATCH/corpus/$t" tests/fuzz/regressions/"$t" \
      >"$log" 2>&1; then
    echo "fuzz.sh: fuzz_$t: ${SECONDS_EACH} s, $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$') runs, nothing found"
    continue
  fi
  tail -n 60 "$log"
  arts=("$SCRATCH/artifacts/$t"/*)
  if [ ${#arts[@]} -eq 0 ]; then
    echo "fuzz.sh: FAILED: fuzz_$t stopped without leaving an input (log above)" >&2
    found=1
    continue
  fi
  for a in "${arts[@]}"; do
    # crash-<sha1>, timeout-..., oom-..., leak-...: rename it after what it does once fixed
    kept=tests/fuzz/regressions/$t/found-$(basename "$a")
    cp "$a" "$kept"
    echo "fuzz.sh: FOUND: fuzz_$t: $a, kept as $kept" >&2
  done
  found=1
done
exit $found
