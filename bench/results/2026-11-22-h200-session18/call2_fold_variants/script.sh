#!/usr/bin/env bash
# A/B/C: fold_acc as now (a), quad-tracked (b, FK_FOLD_QUAD=1), per-thread max first (c, =2)
set -uo pipefail
P=$PWD/.prefix; LIB=$P/usr/lib/x86_64-linux-gnu
[ -d "$P/usr/include/faiss" ] || for f in .deb/*.deb; do dpkg -x "$f" "$P"; done
export LD_LIBRARY_PATH=$LIB/openblas-pthread:$LIB
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/device.txt
cfg() { cmake -S . -B $1 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P/usr" \
  -DCMAKE_LIBRARY_PATH="$LIB/openblas-pthread" -DFLASHKMEANS_CUDA=ON -DFLASHKMEANS_BUILD_TOOLS=OFF \
  "-DCMAKE_CUDA_FLAGS=-lineinfo $2" "-DFLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a" >/dev/null 2>&1 \
  && cmake --build $1 -j 6 > $OUT/build_$1.log 2>&1; echo "build $1 rc $?"; }
cfg build-a "" & cfg build-b "-DFK_FOLD_QUAD=1" & cfg build-c "-DFK_FOLD_QUAD=2" & wait
timeout 200 build-c/tests/flashkmeans_gpu_tests --gtest_filter='CudaFlashAssign.*:CudaBackend.*' > $OUT/c_tests.log 2>&1
echo "C tests rc $?: $(grep -E '^\[  PASSED|^\[  FAILED' $OUT/c_tests.log | head -5)"
for pass in 1 2; do
  order="a b c"; [ $pass = 2 ] && order="c b a"
  for v in $order; do
    for k in 1024 8192 16384 32768 65536; do
      build-$v/bench/bench_kernels 1048576 $k 128 fp16 2>/dev/null | awk -F'|' -v v=$v '/fp16/ && $7+0>0 {print "burst", v, $2, $7, $9}' | head -1
    done
  done
done | tee $OUT/abc_burst.txt
