// Small operations of the engine (CUDA): gather_rows, scatter_rows,
// pad_rows, widen_labels, convert_from_float.
// Neither is on the hot path: per iteration they touch at most the k x d
// centroids (their fp16/bf16 copy).
//
// - gather_rows: out[i] = fp32(x[ids[i]]); the ids come from the host
//   (subsampling, init seeding), so they are copied to a scratch device
//   buffer first. One warp per output row, lanes across d: coalesced reads of
//   each source row and writes of each output row. Traffic: m*d reads/writes.
// - scatter_rows: x[ids[i]] = rows[i], the same shape (ids distinct, so no
//   two warps write one row).
// - pad_rows: rows of d elements into rows of dp, zeros after d, once per
//   call when the caller's rows are not a multiple of 16 bytes: one thread
//   per output word (the widest of 2, 4, 8 or 16 bytes that divides both
//   row widths and both pointers), consecutive threads along a row, so reads
//   and writes coalesce whatever d (a 2D copy of rows a few bytes wide moves
//   them one DMA row at a time).
// - widen_labels: int32 -> int64, a grid-stride loop, one element a thread.
// - convert_from_float: elementwise fp32 -> fp32/fp16/bf16 with round to
//   nearest even (__float2half_rn / __float2bfloat16_rn), a grid-stride loop
//   over groups of 4 elements.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kThreads = 256;

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

__global__ void scatter_rows_kernel(const float* __restrict__ rows, int64_t m, int64_t d,
                                    const int64_t* __restrict__ ids, float* __restrict__ x) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
    for (int64_t i = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); i < m;
         i += warps) {
        const float* src = rows + i * d;
        float* dst = x + ids[i] * d;
        for (int64_t t = lane; t < d; t += 32) {
            dst[t] = src[t];
        }
    }
}

/// E: a word of one or more elements (the bits are copied; d and dp count
/// words). I: the index type, 32-bit whenever the indices fit (a 64-bit
/// division per word would cost more than the copy).
template <typename E, typename I>
__global__ void pad_rows_kernel(const E* __restrict__ x, I rows, I d, I dp, E* __restrict__ out) {
    const I total = rows * dp;
    const I stride = I(gridDim.x) * blockDim.x;
    for (I i = I(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
        const I r = i / dp, c = i - r * dp;
        out[i] = c < d ? x[r * d + c] : E{};
    }
}

/// Four elements per thread: one 16-byte load and one 4-element store when
/// both pointers are aligned to 4 elements (VEC), so the copy of the k x d
/// centroids runs at bandwidth (one element per thread took twice as long).
template <typename T, bool VEC>
__global__ void convert_kernel(const float* __restrict__ src, int64_t count, T* __restrict__ dst) {
    const int64_t quads = (count + 3) / 4;
    for (int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; q < quads;
         q += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = 4 * q;
        if (VEC && i + 4 <= count) {
            store4(dst + i, *reinterpret_cast<const float4*>(src + i));
        } else {
            for (int64_t j = i; j < i + 4 && j < count; ++j) {
                store_as(dst + j, src[j]);
            }
        }
    }
}

__global__ void widen_kernel(const int32_t* __restrict__ src, int64_t count,
                             int64_t* __restrict__ dst) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        dst[i] = src[i];
    }
}

/// The host row ids in a scratch device buffer. The source is pageable: the
/// copy has left host memory when this returns, so the caller may free it.
ScopedDeviceBuffer upload_ids(const int64_t* host_ids, int64_t m, cudaStream_t stream) {
    ScopedDeviceBuffer ids(size_t(m) * sizeof(int64_t), stream);
    FK_CUDA_CHECK(cudaMemcpyAsync(ids.get(), host_ids, size_t(m) * sizeof(int64_t),
                                  cudaMemcpyHostToDevice, stream));
    return ids;
}

} // namespace

void gather_rows(const Place& p, const void* x, DType dtype, int64_t d, const int64_t* host_ids,
                 int64_t m, float* out) {
    if (m == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    const ScopedDeviceBuffer ids = upload_ids(host_ids, m, stream);
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        gather_rows_kernel<T><<<blocks_for(m, kThreads / 32), kThreads, 0, stream>>>(
                static_cast<const T*>(x), d, static_cast<const int64_t*>(ids.get()), m, out);
        FK_CUDA_CHECK(cudaGetLastError());
    });
}

void scatter_rows(const Place& p, const float* rows, int64_t m, int64_t d, const int64_t* host_ids,
                  float* x) {
    if (m == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    const ScopedDeviceBuffer ids = upload_ids(host_ids, m, stream);
    scatter_rows_kernel<<<blocks_for(m, kThreads / 32), kThreads, 0, stream>>>(
            rows, m, d, static_cast<const int64_t*>(ids.get()), x);
    FK_CUDA_CHECK(cudaGetLastError());
}

void pad_rows(const Place& p, const void* x, DType dtype, int64_t rows, int64_t d, int64_t dp,
              void* out) {
    if (rows == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    // Words as wide as d, dp and both pointers allow, up to 16 bytes: a
    // thread per 2-byte element (d = 100 fp16 rows, 8-byte aligned) moved
    // the bytes at a fraction of the bandwidth a thread per 8 bytes reaches.
    size_t word = dtype_size(dtype);
    const size_t row_bytes = size_t(d) * word, padded_bytes = size_t(dp) * word;
    while (word < 16 && row_bytes % (2 * word) == 0 && padded_bytes % (2 * word) == 0 &&
           reinterpret_cast<uintptr_t>(x) % (2 * word) == 0 &&
           reinterpret_cast<uintptr_t>(out) % (2 * word) == 0) {
        word *= 2;
    }
    const int64_t dw = int64_t(row_bytes / word), dpw = int64_t(padded_bytes / word);
    const unsigned grid = blocks_for(rows * dpw, kThreads);
    // the grid-stride loop's indices stay below total + one grid's threads
    const bool narrow = rows * dpw + int64_t(grid) * kThreads <= int64_t(UINT32_MAX);
    auto launch = [&](auto element) {
        using E = decltype(element);
        const E* src = static_cast<const E*>(x);
        E* dst = static_cast<E*>(out);
        if (narrow) {
            pad_rows_kernel<E, uint32_t><<<grid, kThreads, 0, stream>>>(src, uint32_t(rows),
                                                                        uint32_t(dw), uint32_t(dpw),
                                                                        dst);
        } else {
            pad_rows_kernel<E, int64_t><<<grid, kThreads, 0, stream>>>(src, rows, dw, dpw, dst);
        }
    };
    switch (word) {
        case 2:
            launch(uint16_t());
            break;
        case 4:
            launch(uint32_t());
            break;
        case 8:
            launch(uint2());
            break;
        default:
            launch(uint4());
            break;
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

void widen_labels(const Place& p, const int32_t* src, int64_t count, int64_t* dst) {
    if (count == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    widen_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(src, count, dst);
    FK_CUDA_CHECK(cudaGetLastError());
}

void convert_from_float(const Place& p, const float* src, DType dtype, int64_t count, void* dst) {
    if (count == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        const bool vec = reinterpret_cast<uintptr_t>(src) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(dst) % (4 * sizeof(T)) == 0;
        const unsigned grid = blocks_for((count + 3) / 4, kThreads);
        if (vec) {
            convert_kernel<T, true><<<grid, kThreads, 0, stream>>>(src, count, static_cast<T*>(dst));
        } else {
            convert_kernel<T, false><<<grid, kThreads, 0, stream>>>(src, count, static_cast<T*>(dst));
        }
        FK_CUDA_CHECK(cudaGetLastError());
    });
}

} // namespace cuda
} // namespace flashkmeans
