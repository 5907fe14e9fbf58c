#!/usr/bin/env bash
# The CPU kernel and FAISS-parity tests under every OpenBLAS core type this
# CPU can execute (and the pruning tests, whose margins must hold for every
# kernel). OpenBLAS picks its sgemm kernel by CPU type, and the
# kernels round a dot product differently (the Haswell and Zen kernels by the
# row's position in a panel): a suite run on one kind of CPU must not be able
# to hide a result that depends on the kernel. Each type is checked to be the
# one OpenBLAS really dispatched to; a type this CPU cannot run is reported
# as skipped. On a CPU with AVX-512 the fused kernel's tests and the pruning
# tests run once more at its AVX2 width (FLASHKMEANS_CPU_ISA=avx2), so both
# widths are tested where both can run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
TESTS="$BUILD/tests/flashkmeans_tests"
FILTER='Cpu*:ClusteringParity*:AssignIndex*:Prune*'
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }

ran=0
for core in Prescott Sandybridge Haswell Zen SkylakeX; do
  case $core in
    Sandybridge) need=avx ;;
    Haswell|Zen) need=avx2 ;;
    SkylakeX) need=avx512f ;;
    *) need=sse3 ;;
  esac
  if ! has "$need" && ! { [ "$need" = sse3 ] && has pni; }; then
    echo "core type $core: skipped (this CPU lacks $need)"
    continue
  fi
  log=$(mktemp)
  if ! OPENBLAS_CORETYPE=$core OPENBLAS_VERBOSE=2 "$TESTS" --gtest_filter="$FILTER" --gtest_brief=1 > "$log" 2>&1; then
    cat "$log"; echo "core type $core: FAILED"; exit 1
  fi
  got=$(grep -m1 '^Core:' "$log" | awk '{print $2}')
  if [ "$got" != "$core" ]; then
    cat "$log"; echo "core type $core: OpenBLAS dispatched to '$got' instead"; exit 1
  fi
  echo "core type $core: $(grep -E '^\[  PASSED' "$log")"
  rm -f "$log"
  ran=$((ran + 1))
done
[ "$ran" -ge 2 ] || { echo "fewer than two core types could run"; exit 1; }
if has avx512f; then
  log=$(mktemp)
  if ! FLASHKMEANS_CPU_ISA=avx2 "$TESTS" --gtest_filter='FusedAssign*:Prune*' --gtest_brief=1 > "$log" 2>&1; then
    cat "$log"; echo "fused kernel at AVX2 width: FAILED"; exit 1
  fi
  echo "fused kernel at AVX2 width: $(grep -E '^\[  PASSED' "$log")"
  rm -f "$log"
fi
