#!/usr/bin/env bash
# session 16 call 6: bias-in-acc (HEAD) vs 623b6a3 on the streamed kernel's rows and the batched row
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}; mkdir -p $OUT
t0=$(date +%s)
P=$PWD/.prefix; LIB=$P/usr/lib/x86_64-linux-gnu
[ -d $P/usr/include/faiss ] || for f in .deb/*.deb; do dpkg -x "$f" "$P"; done
mkdir -p /tmp/old && tar xzf bench/_old.tar.gz -C /tmp/old
bash bench/gpu_run.sh build | tail -1 &
(cd /tmp/old && cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P/usr" \
  -DCMAKE_LIBRARY_PATH="$LIB/openblas-pthread" -DFLASHKMEANS_CUDA=ON -DFLASHKMEANS_BUILD_TOOLS=OFF \
  "-DFLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" > $OUT/old_configure.log 2>&1 && \
  cmake --build build-gpu -j 16 --target bench_lloyd bench_kernels > $OUT/old_build.log 2>&1 && echo old build ok) &
wait
rm -f $OUT/configure.log $OUT/build.log $OUT/old_configure.log
echo "builds $(( $(date +%s) - t0 )) s"
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB
new=build-gpu/bench; old=/tmp/old/build-gpu/bench
for pass in 1 2; do
  for row in 1Mx4096x768-fp16 1Mx1024x128-fp32-tf32 32x65536x1024x128-fp16; do
    vs="new old"; [ $pass = 2 ] && vs="old new"
    for v in $vs; do
      b=$new; [ $v = old ] && b=$old
      r=$(timeout 60 $b/bench_lloyd --only $row --iters 40 2>>$OUT/stderr.log | grep -E "^\| $row " | awk -F'|' '{gsub(/ /,"",$3); gsub(/ /,"",$4); print $3, $4}')
      echo "cap $row $v ${r:-fail}" | tee -a $OUT/ab.txt
    done
  done
done
for pass in 1 2; do
  for row in 1Mx4096x768-fp16 1Mx1024x128-fp32-tf32; do
    vs="new old"; [ $pass = 2 ] && vs="old new"
    for v in $vs; do
      b=$new; [ $v = old ] && b=$old
      r=$(timeout 60 $b/bench_kernels --only $row 2>>$OUT/stderr.log | grep -E "^\| $row " | awk -F'|' '{gsub(/ /,"",$7); gsub(/ /,"",$9); print $7, $9}')
      echo "burst $row $v ${r:-fail}" | tee -a $OUT/ab.txt
    done
  done
done
echo "done $(( $(date +%s) - t0 )) s"
