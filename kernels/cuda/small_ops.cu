// Small operations of the engine (CUDA): gather_rows, convert_from_float,
// sum_values. None is on the hot path of an iteration except sum_values (the
// objective, once per iteration).
//
// - gather_rows: out[i] = fp32(x[ids[i]]); the ids come from the host
//   (subsampling, init seeding), so they are copied to a scratch device
//   buffer first. One warp per output row, lanes across d: coalesced reads of
//   each source row and writes of each output row. Traffic: m*d reads/writes.
// - convert_from_float: elementwise fp32 -> fp32/fp16/bf16 with round to
//   nearest even (__float2half_rn / __float2bfloat16_rn), a grid-stride loop.
// - sum_values: the objective in double, deterministic: cub::DeviceReduce::Sum
//   over a float -> double transform iterator (CUB's reduction has a fixed
//   tree for a given n and device, no atomics), result copied to the host.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"

#include <cub/device/device_reduce.cuh>
#include <cuda_runtime.h>
#include <thrust/iterator/transform_iterator.h>

#include <algorithm>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t items, int per_block) {
    const int64_t b = (items + per_block - 1) / per_block;
    return unsigned(b < (int64_t(1) << 20) ? (b > 0 ? b : 1) : (int64_t(1) << 20));
}

template <typename T>
__global__ void gather_rows_kernel(const T* __restrict__ x, int64_t d,
                                   const int64_t* __restrict__ ids, int64_t m,
                                   float* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
    for (int64_t i = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); i < m;
         i += warps) {
        const T* src = x + ids[i] * d;
        float* dst = out + i * d;
        for (int64_t t = lane; t < d; t += 32) {
            dst[t] = to_float(src[t]);
        }
    }
}

__device__ __forceinline__ void store_as(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_as(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store_as(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

template <typename T>
__global__ void convert_kernel(const float* __restrict__ src, int64_t count, T* __restrict__ dst) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        store_as(dst + i, src[i]);
    }
}

struct ToDouble {
    __host__ __device__ double operator()(float v) const { return double(v); }
};

} // namespace

void gather_rows(const Place& p, const void* x, DType dtype, int64_t d, const int64_t* host_ids,
                 int64_t m, float* out) {
    if (m == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    ScopedDeviceBuffer ids(size_t(m) * sizeof(int64_t), stream);
    // pageable source: the copy has left host memory when this returns, so the
    // caller may free `host_ids` right away
    FK_CUDA_CHECK(cudaMemcpyAsync(ids.get(), host_ids, size_t(m) * sizeof(int64_t),
                                  cudaMemcpyHostToDevice, stream));
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        gather_rows_kernel<T><<<blocks_for(m, kThreads / 32), kThreads, 0, stream>>>(
                static_cast<const T*>(x), d, static_cast<const int64_t*>(ids.get()), m, out);
        FK_CUDA_CHECK(cudaGetLastError());
    });
}

void convert_from_float(const Place& p, const float* src, DType dtype, int64_t count, void* dst) {
    if (count == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        convert_kernel<T><<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
                src, count, static_cast<T*>(dst));
        FK_CUDA_CHECK(cudaGetLastError());
    });
}

double sum_values(const Place& p, const float* values, int64_t n) {
    if (n == 0) {
        return 0.0;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    auto in = thrust::make_transform_iterator(values, ToDouble());
    size_t temp_bytes = 0;
    FK_CUDA_CHECK(cub::DeviceReduce::Sum(nullptr, temp_bytes, in, static_cast<double*>(nullptr),
                                         n, stream));
    // one allocation: the result first (8-byte aligned), then CUB's scratch
    const size_t head = 256;
    ScopedDeviceBuffer scratch(head + temp_bytes, stream);
    auto* d_out = static_cast<double*>(scratch.get());
    FK_CUDA_CHECK(cub::DeviceReduce::Sum(static_cast<char*>(scratch.get()) + head, temp_bytes, in,
                                         d_out, n, stream));
    double result = 0.0;
    FK_CUDA_CHECK(cudaMemcpyAsync(&result, d_out, sizeof(double), cudaMemcpyDeviceToHost, stream));
    FK_CUDA_CHECK(cudaStreamSynchronize(stream));
    return result;
}

} // namespace cuda
} // namespace flashkmeans
