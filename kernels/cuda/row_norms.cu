// row_norms (CUDA): out[i] = ||x_i||^2 with fp32 accumulation, for fp32, fp16
// and bf16 rows (never accumulated in fp16: norms overflow at 65504).
//
// Memory traffic: n*d elements read once, n floats written; it is a pure
// streaming pass, so the only goal is full-width coalesced loads.
//
// Why this shape: rows of d >= 64 get one warp each; lanes stride over the
// row 4 elements at a time (16-byte fp32 / 8-byte fp16 loads, when rows are
// aligned) and a fixed xor-shuffle tree adds the 32 lane sums, so the result
// is deterministic. Short rows (d < 64) would leave most lanes of a warp idle,
// so they get one thread each: the plain kernel, which doubles as the
// reference (in-order sum, like the CPU kernel). Both orders live in
// row_norm.cuh, shared with finalize.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"
#include "row_norm.cuh"

#include <cuda_runtime.h>

namespace flashkmeans {
namespace cuda {

namespace {

/// One thread per row, in-order sum (reference; used for short rows).
template <typename T>
__global__ void row_norms_thread_kernel(const T* __restrict__ x, int64_t n, int64_t d,
                                        float* __restrict__ out) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    out[i] = serial_row_norm(x + i * d, d);
}

/// One warp per row; kVec4 = rows are 4-element aligned (vector loads).
template <typename T, bool kVec4>
__global__ void row_norms_warp_kernel(const T* __restrict__ x, int64_t n, int64_t d,
                                      float* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
    for (int64_t i = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); i < n;
         i += warps) {
        const float s = warp_row_norm<T, kVec4>(x + i * d, d, lane);
        if (lane == 0) {
            out[i] = s;
        }
    }
}

template <typename T>
void launch(const T* x, int64_t n, int64_t d, float* out, cudaStream_t stream) {
    if (n == 0) {
        return;
    }
    constexpr int kThreads = 256;
    if (!warp_norm_rows(d)) {
        row_norms_thread_kernel<T><<<unsigned((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
                x, n, d, out);
        FK_CUDA_CHECK(cudaGetLastError());
        return;
    }
    const int64_t warps_per_block = kThreads / 32;
    const int64_t blocks64 = (n + warps_per_block - 1) / warps_per_block;
    const unsigned blocks = unsigned(blocks64 < (1 << 30) ? blocks64 : (1 << 30));
    if (rows_vec4(x, d)) {
        row_norms_warp_kernel<T, true><<<blocks, kThreads, 0, stream>>>(x, n, d, out);
    } else {
        row_norms_warp_kernel<T, false><<<blocks, kThreads, 0, stream>>>(x, n, d, out);
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace

void row_norms(const Place& p, const void* x, DType dtype, int64_t n, int64_t d, float* out) {
    DeviceGuard guard(p.device);
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch<T>(static_cast<const T*>(x), n, d, out, stream_of(p));
    });
}

} // namespace cuda
} // namespace flashkmeans
