#!/usr/bin/env bash
# Before/after of the whole engine in one device call: bench_lloyd of two
# builds on the same rows, PASSES passes in alternating order (the machine
# drifts between and within calls, so only same-call, interleaved numbers
# compare). Prints "row build ms" lines, then one table of ms per iteration.
#   bash bench/ab_lloyd.sh "base=.base/build-gpu/bench/bench_lloyd new=build-gpu/bench/bench_lloyd" \
#        "1Mx1024x128-fp16 32x65536" [PASSES]
set -u
pairs=$1; rows=$2; passes=${3:-2}
OUT=${OUT:-/tmp/fk_out}
log=$OUT/ab_lloyd.log
: > "$log"
names=$(for p in $pairs; do echo "${p%%=*}"; done | tr '\n' ' ')
for row in $rows; do
  for pass in $(seq 1 "$passes"); do
    ps=$pairs; [ $((pass % 2)) = 0 ] && ps=$(echo $pairs | tr ' ' '\n' | tac | tr '\n' ' ')
    for p in $ps; do
      ms=$(timeout 90 "${p#*=}" --only "$row" --iters 20 2>>"$OUT/ab_stderr.log" \
           | grep -E "^\| [^|]*$row" | head -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
      echo "$row ${p%%=*} ${ms:-fail}" | tee -a "$log"
    done
  done
done
echo "| row (ms/iter) | $(echo $names | sed 's/ / | /g') |"
echo "|---|$(for v in $names; do printf -- '---|'; done)"
for row in $rows; do
  line="| $row |"
  for v in $names; do
    line="$line $(grep "^$row $v " "$log" | awk '{print $3}' | paste -sd/ -) |"
  done
  echo "$line"
done
