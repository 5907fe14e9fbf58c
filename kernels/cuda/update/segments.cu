// Steps 1, 3 and 6 of the update (sort_inverse_update.cu): the keys of a
// pass, the segment bounds from the sorted keys, and the per-cluster counts
// and empty rows. Each is bandwidth-bound and reads or writes O(m) 4-byte
// words (keys, ids) or O(k) bounds.
#include "update_kernels.cuh"

#include "../cuda_check.h"
#include "../launch_after.cuh"

#include <cuda_runtime.h>

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

/// Step 1, four points per thread: key_i = b (k + 1) + label_i (label k for
/// an out-of-range label), id_i = i; packed (ids == nullptr): key_i << shift
/// | i. Bandwidth-bound, so 16-byte loads and stores when `labels` is
/// 16-byte aligned (VEC) and 32-bit arithmetic (m < 2^31): a 64-bit i / n
/// per point made it 3x slower than its traffic. Also zeroes `zero_words`
/// words at `zero` (the segment bounds and list counters: one launch instead
/// of a memset before it).
template <bool VEC>
__global__ void make_keys_kernel(const int32_t* __restrict__ labels, KeySpace ks, uint32_t m,
                                 int shift, uint32_t* __restrict__ keys,
                                 int32_t* __restrict__ ids, int32_t* __restrict__ zero,
                                 uint32_t zero_words) {
    for (uint32_t w = blockIdx.x * blockDim.x + threadIdx.x; w < zero_words;
         w += gridDim.x * blockDim.x) {
        zero[w] = 0;
    }
    const uint32_t n = uint32_t(ks.n), k = uint32_t(ks.k);
    const uint32_t quads = (m + 3) / 4;
    for (uint32_t q = blockIdx.x * blockDim.x + threadIdx.x; q < quads;
         q += gridDim.x * blockDim.x) {
        const uint32_t i0 = 4 * q;
        int32_t l[4];
        if (VEC && i0 + 4 <= m) {
            const int4 v = *reinterpret_cast<const int4*>(labels + i0);
            l[0] = v.x, l[1] = v.y, l[2] = v.z, l[3] = v.w;
        } else {
#pragma unroll
            for (int e = 0; e < 4; ++e) l[e] = i0 + e < m ? labels[i0 + e] : 0;
        }
        // the problem of each point: b for i0, then step over boundaries
        uint32_t b = i0 / n, next = (b + 1) * n;
        uint32_t key[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            while (i0 + e >= next) {
                ++b;
                next += n;
            }
            key[e] = b * (k + 1) + ((l[e] >= 0 && uint32_t(l[e]) < k) ? uint32_t(l[e]) : k);
            if (ids == nullptr) {
                key[e] = key[e] << shift | (i0 + e);
            }
        }
        if (VEC && i0 + 4 <= m) {
            *reinterpret_cast<uint4*>(keys + i0) = make_uint4(key[0], key[1], key[2], key[3]);
            if (ids != nullptr) {
                *reinterpret_cast<int4*>(ids + i0) = make_int4(i0, i0 + 1, i0 + 2, i0 + 3);
            }
        } else {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                if (i0 + e < m) {
                    keys[i0 + e] = key[e];
                    if (ids != nullptr) {
                        ids[i0 + e] = int32_t(i0 + e);
                    }
                }
            }
        }
    }
}

/// Step 3: seg_start[key] / seg_end[key] from the sorted keys (both
/// pre-zeroed, so absent clusters read as empty), four positions per thread
/// with one 16-byte load (the keys buffer is 256-byte aligned) and the two
/// neighbours; keys are below 2^31, so ~0u never equals one.
__global__ void segment_bounds_kernel(const uint32_t* __restrict__ keys, int shift, uint32_t m,
                                      int32_t* __restrict__ seg_start,
                                      int32_t* __restrict__ seg_end) {
    wait_for_previous_grid();  // launched with launch_after
    allow_next_grid();
    const uint32_t quads = (m + 3) / 4;
    for (uint32_t q = blockIdx.x * blockDim.x + threadIdx.x; q < quads;
         q += gridDim.x * blockDim.x) {
        const uint32_t p0 = 4 * q;
        // the last, partial quad reads only its own keys: the padding past m
        // is never written, and reading it would be an uninitialised read
        uint4 v = make_uint4(~0u, ~0u, ~0u, ~0u);
        if (p0 + 4 <= m) {
            v = *reinterpret_cast<const uint4*>(keys + p0);
        } else {
            v.x = keys[p0];
            v.y = p0 + 1 < m ? keys[p0 + 1] : ~0u;
            v.z = p0 + 2 < m ? keys[p0 + 2] : ~0u;
        }
        const uint32_t key[6] = {p0 > 0 ? keys[p0 - 1] >> shift : ~0u, v.x >> shift,
                                 v.y >> shift, v.z >> shift, v.w >> shift,
                                 p0 + 4 < m ? keys[p0 + 4] >> shift : ~0u};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const uint32_t p = p0 + e;
            if (p >= m) {
                break;
            }
            if (key[e + 1] != key[e]) {
                seg_start[key[e + 1]] = int32_t(p);
            }
            if (p + 1 == m || key[e + 1] != key[e + 2]) {
                seg_end[key[e + 1]] = int32_t(p + 1);
            }
        }
    }
}

/// Per cluster of the pass (row = b k + j): counts (every cluster),
/// weight_sums = count when unweighted, and zero rows for empty clusters
/// j >= k_begin.
__global__ void cluster_info_kernel(const int32_t* __restrict__ seg_start,
                                    const int32_t* __restrict__ seg_end, KeySpace ks, int64_t rows,
                                    int64_t d, bool weighted, float* __restrict__ sums,
                                    float* __restrict__ weight_sums,
                                    int32_t* __restrict__ counts) {
    wait_for_previous_grid();  // launched with launch_after
    allow_next_grid();
    for (int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
         row += int64_t(gridDim.x) * blockDim.x) {
        const int64_t j = row % ks.k;
        const int64_t key = row + row / ks.k;  // b (k + 1) + j
        const int32_t count = seg_end[key] - seg_start[key];
        if (counts != nullptr) {
            counts[row] = count;
        }
        if (j < ks.k_begin) {
            continue;  // frozen: sums and weight_sums untouched
        }
        if (!weighted || count == 0) {
            weight_sums[row] = float(count);
        }
        if (count == 0) {
            float* r = sums + row * d;
            for (int64_t t = 0; t < d; ++t) {
                r[t] = 0.0f;
            }
        }
    }
}

constexpr int kThreads = 256;

unsigned grid_1d(int64_t items, int threads) {
    const int64_t blocks = (items + threads - 1) / threads;
    return unsigned(blocks < (int64_t(1) << 20) ? (blocks > 0 ? blocks : 1) : (int64_t(1) << 20));
}

} // namespace

void make_keys(const int32_t* labels, KeySpace ks, uint32_t m, int shift, uint32_t* keys,
               int32_t* ids, int32_t* zero, uint32_t zero_words, cudaStream_t stream) {
    const unsigned kgrid = grid_1d((int64_t(m) + 3) / 4, kThreads);
    if (reinterpret_cast<uintptr_t>(labels) % 16 == 0) {
        make_keys_kernel<true><<<kgrid, kThreads, 0, stream>>>(labels, ks, m, shift, keys, ids,
                                                               zero, zero_words);
    } else {
        make_keys_kernel<false><<<kgrid, kThreads, 0, stream>>>(labels, ks, m, shift, keys, ids,
                                                                zero, zero_words);
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

void segment_bounds(const uint32_t* keys, int shift, uint32_t m, int32_t* seg_start,
                    int32_t* seg_end, cudaStream_t stream) {
    launch_after(segment_bounds_kernel, grid_1d((int64_t(m) + 3) / 4, kThreads), kThreads, 0,
                 stream, keys, shift, m, seg_start, seg_end);
}

void cluster_info(const int32_t* seg_start, const int32_t* seg_end, KeySpace ks, int64_t rows,
                  int64_t d, bool weighted, float* sums, float* weight_sums, int32_t* counts,
                  cudaStream_t stream) {
    launch_after(cluster_info_kernel, grid_1d(rows, kThreads), kThreads, 0, stream, seg_start,
                 seg_end, ks, rows, d, weighted, sums, weight_sums, counts);
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
