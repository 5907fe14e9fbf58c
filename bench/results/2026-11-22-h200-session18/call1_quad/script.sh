#!/usr/bin/env bash
# A/B: fold_acc as now (A) vs quad-tracked max-first fold (B, -DFK_FOLD_QUAD=1)
set -uo pipefail
P=$PWD/.prefix; LIB=$P/usr/lib/x86_64-linux-gnu
[ -d "$P/usr/include/faiss" ] || for f in .deb/*.deb; do dpkg -x "$f" "$P"; done
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/device.txt
cfg() { cmake -S . -B $1 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P/usr" \
  -DCMAKE_LIBRARY_PATH="$LIB/openblas-pthread" -DFLASHKMEANS_CUDA=ON -DFLASHKMEANS_BUILD_TOOLS=OFF \
  "-DCMAKE_CUDA_FLAGS=-lineinfo $2" "-DFLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" >/dev/null 2>&1 \
  && cmake --build $1 -j 8 > $OUT/build_$1.log 2>&1; echo "build $1 rc $?"; }
cfg build-a "" & cfg build-b "-DFK_FOLD_QUAD=1" & wait
timeout 200 build-b/tests/flashkmeans_gpu_tests --gtest_filter='CudaFlashAssign.*:CudaBackend.*' > $OUT/b_tests.log 2>&1
echo "B tests rc $?: $(grep -E '^\[  PASSED|^\[  FAILED' $OUT/b_tests.log | head -5)"
for pass in 1 2; do
  for v in a b; do
    [ $pass = 2 ] && v=$([ $v = a ] && echo b || echo a)
    for row in 1Mx65536 1Mx8192 4Mx4096 1Mx1024x128-fp16 8Mx1024; do
      build-$v/bench/bench_kernels --only $row 2>/dev/null | awk -F'|' -v v=$v '/fp16/ && $7+0>0 {print "burst", v, $2, $7, $9}' | head -1
    done
  done
done | tee $OUT/ab_burst.txt
for pass in 1 2; do
  for v in a b; do
    [ $pass = 2 ] && v=$([ $v = a ] && echo b || echo a)
    for row in 1Mx8192x128 1Mx65536; do
      build-$v/bench/bench_lloyd --only $row --iters 30 2>/dev/null | awk -F'|' -v v=$v -v r=$row '$3+0>0 {print "cap", v, r, $3, $4}' | head -1
    done
  done
done | tee $OUT/ab_cap.txt
