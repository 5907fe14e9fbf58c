#!/usr/bin/env bash
# A/B of two (or more) bench_kernels builds in one device call, PASSES passes
# in alternating order (the machine drifts between and within calls, so only
# same-call, interleaved numbers compare):
#   bash bench/ab_kernels.sh "name1=path1 name2=path2" "row1 row2" [PASSES]
# e.g. the base build in a copy of the tree with the old kernel file swapped
# in (cmake --build ... --target bench_kernels) against build-gpu. Prints
# "row name ms" lines, then a table of the assign times per pass.
set -u
pairs=$1; rows=$2; passes=${3:-2}
OUT=${OUT:-/tmp/fk_out}
log=$OUT/ab_kernels.log
: > "$log"
names=$(for p in $pairs; do echo "${p%%=*}"; done | tr '\n' ' ')
for row in $rows; do
  for pass in $(seq 1 "$passes"); do
    ps=$pairs; [ $((pass % 2)) = 0 ] && ps=$(echo $pairs | tr ' ' '\n' | tac | tr '\n' ' ')
    for p in $ps; do
      ms=$(timeout 60 "${p#*=}" --only "$row" 2>>"$OUT/ab_stderr.log" | grep -E "^\| $row " | awk -F'|' '{gsub(/ /,"",$7); print $7}')
      echo "$row ${p%%=*} ${ms:-fail}" | tee -a "$log"
    done
  done
done
echo "| row | $(echo $names | sed 's/ / | /g') |"
for row in $rows; do
  line="| $row |"
  for v in $names; do
    line="$line $(grep "^$row $v " "$log" | awk '{print $3}' | paste -sd/ -) |"
  done
  echo "$line"
done
