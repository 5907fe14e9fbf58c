#!/usr/bin/env bash
# A/B of two (or more) builds of one benchmark program in one device call,
# PASSES passes in alternating order (the machine drifts between and within
# calls, so only same-call, interleaved numbers compare):
#   bash bench/ab_kernels.sh "name1=path1 name2=path2" "row1 row2" [PASSES]
# bench_kernels by default (the assign ms, column 7 of its table). For the
# whole engine, bench_lloyd's ms per iteration (column 3), e.g. the carried
# .base tree built by `bench/gpu_run.sh base-start` against build-gpu:
#   AB_COLUMN=3 AB_ARGS="--iters 20" bash bench/ab_kernels.sh \
#     "base=.base/build-gpu/bench/bench_lloyd new=build-gpu/bench/bench_lloyd" "1Mx1024x128-fp16" 2
# Prints "row name ms" lines, then a table of the times per pass.
set -u
pairs=$1; rows=$2; passes=${3:-2}
column=${AB_COLUMN:-7}; args=${AB_ARGS:-}
OUT=${OUT:-/tmp/fk_out}
log=$OUT/ab_kernels.log
: > "$log"
names=$(for p in $pairs; do echo "${p%%=*}"; done | tr '\n' ' ')
for row in $rows; do
  for pass in $(seq 1 "$passes"); do
    ps=$pairs; [ $((pass % 2)) = 0 ] && ps=$(echo $pairs | tr ' ' '\n' | tac | tr '\n' ' ')
    for p in $ps; do
      ms=$(timeout 90 "${p#*=}" --only "$row" $args 2>>"$OUT/ab_stderr.log" | grep -E "^\| $row " \
           | head -1 | awk -F'|' -v c="$column" '{gsub(/ /,"",$c); print $c}')
      echo "$row ${p%%=*} ${ms:-fail}" | tee -a "$log"
    done
  done
done
echo "| row | $(echo $names | sed 's/ / | /g') |"
echo "|---|$(for v in $names; do printf -- '---|'; done)"
for row in $rows; do
  line="| $row |"
  for v in $names; do
    line="$line $(grep "^$row $v " "$log" | awk '{print $3}' | paste -sd/ -) |"
  done
  echo "$line"
done
