#!/usr/bin/env bash
# Issue 32: data-parallel Lloyd on the GPUs of one machine (NCCL, one rank per
# GPU, launched by Open MPI), correctness and scaling. Logs go to $OUT.
#
#   bash bench/multi_gpu.sh [build|check|scale|all]   (default: all)
#
# Needs Open MPI (mpirun, libopenmpi-dev) and NCCL (the CUDA toolkit's, or
# NCCL_HOME). NVLink multicast (NVLS) stays off in every process: exported
# here and passed to every rank with mpirun -x.
# - build: library, bench_ranks and the tests, with CUDA, MPI and NCCL.
# - check: the MPI tests on the CPU and on GPU 0 (1 to 3 ranks); two ranks on
#   one GPU over the MPI host-buffer path equal one rank; one process over every
#   GPU (train_on_devices); NCCL on 2, 4, 8 GPUs (as many as there are) equal
#   one GPU, centroids bit for bit (integer-valued points).
# - scale: ms per iteration on 1, 2, 4, 8 GPUs for the benchmark rows, one
#   process per GPU under mpirun and all GPUs in one process (bench_ranks
#   --comm devices), then the cost model's prediction beside the former
#   (bench/scaling_model.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fk_out}
mkdir -p "$OUT"
what=${1:-all}
export NCCL_NVLS_ENABLE=0
export PATH=$PATH:/usr/local/cuda/bin
BUILD=${BUILD_DIR:-build-mgpu}
G=$(nvidia-smi -L | wc -l)
MPIRUN=(mpirun --oversubscribe --allow-run-as-root -x NCCL_NVLS_ENABLE -x LD_LIBRARY_PATH)
BR=$BUILD/bench/bench_ranks
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
fail=0

if [ "$what" = build ] || [ "$what" = all ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHKMEANS_CUDA=ON \
    -DFLASHKMEANS_MPI=ON -DFLASHKMEANS_NCCL=ON \
    '-DFLASHKMEANS_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a' \
    ${CMAKE_PREFIX_PATH:+-DCMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH} 2>&1 | tee "$OUT/build.log" | grep flashkmeans
  cmake --build "$BUILD" -j "$(nproc)" --target bench_ranks flashkmeans_mpi_tests flashkmeans_gpu_tests \
    >> "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi

same() { # centroid files equal, bit for bit
  if cmp -s "$1" "$2"; then echo "  same centroids: $2"; else echo "  DIFFERENT centroids: $2"; fail=1; fi
}

if [ "$what" = check ] || [ "$what" = all ]; then
  echo "=== MPI tests (CPU, 1 to 3 ranks)" | tee "$OUT/check.log"
  ctest --test-dir "$BUILD" -R '^Mpi\.Distributed' --output-on-failure >> "$OUT/check.log" 2>&1 || fail=1
  tail -3 "$OUT/check.log"
  rows=(--n 1048576 --d 128 --k 1024 --niter 10 --dtype fp16)
  echo "=== two ranks on GPU 0 over MPI host buffers = one rank" | tee -a "$OUT/check.log"
  "${MPIRUN[@]}" -np 1 "$BR" "${rows[@]}" --comm mpi --device 0 --out "$OUT/c_mpi1.bin" | tee -a "$OUT/check.log"
  "${MPIRUN[@]}" -np 2 "$BR" "${rows[@]}" --comm mpi --device 0 --out "$OUT/c_mpi2.bin" | tee -a "$OUT/check.log"
  same "$OUT/c_mpi1.bin" "$OUT/c_mpi2.bin" | tee -a "$OUT/check.log"
  echo "=== the MPI tests on the CUDA backend, 1 to 3 ranks sharing GPU 0" | tee -a "$OUT/check.log"
  for r in 1 2 3; do
    FLASHKMEANS_TEST_BACKEND=cuda "${MPIRUN[@]}" -x FLASHKMEANS_TEST_BACKEND -np "$r" \
      "$BUILD/tests/flashkmeans_mpi_tests" --gtest_brief=1 >> "$OUT/check.log" 2>&1 || fail=1
  done
  echo "=== one process, one thread and NCCL rank per GPU (train_on_devices)" | tee -a "$OUT/check.log"
  "$BUILD/tests/flashkmeans_gpu_tests" --gtest_filter='TrainOnDevices*' >> "$OUT/check.log" 2>&1 || fail=1
  grep -E "TrainOnDevices.*(OK|FAILED|SKIPPED)" "$OUT/check.log"
  echo "=== NCCL, one rank per GPU = one GPU" | tee -a "$OUT/check.log"
  for r in 1 2 4 8; do
    [ "$r" -le "$G" ] || break
    "${MPIRUN[@]}" -np "$r" "$BR" "${rows[@]}" --comm nccl --out "$OUT/c_nccl$r.bin" | tee -a "$OUT/check.log"
    [ "$r" -gt 1 ] && same "$OUT/c_nccl1.bin" "$OUT/c_nccl$r.bin" | tee -a "$OUT/check.log"
  done
  grep -q DIFFERENT "$OUT/check.log" && fail=1
fi

if [ "$what" = scale ] || [ "$what" = all ]; then
  : > "$OUT/scale.log"
  for row in "1048576 1024 128" "8388608 1024 128" "4194304 4096 128" "1048576 65536 128"; do
    set -- $row
    for r in 1 2 4 8; do
      [ "$r" -le "$G" ] || break
      "${MPIRUN[@]}" -np "$r" "$BR" --n "$1" --k "$2" --d "$3" --niter 20 --dtype fp16 --comm nccl \
        | tee -a "$OUT/scale.log"
      # the same GPUs from one process (Kmeans(gpu=r), --devices): a thread per GPU
      "$BR" --n "$1" --k "$2" --d "$3" --niter 20 --dtype fp16 --comm devices --gpus "$r" \
        | tee -a "$OUT/scale_devices.log"
    done
  done
  python3 bench/scaling_model.py --measured "$OUT/scale.log" | tee "$OUT/scale_vs_model.md"
fi
exit $fail
