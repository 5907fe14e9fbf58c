// Exact pruning's moved-centroid filter (CUDA), the steps around FlashAssign
// (engine/moved_filter.h):
// - rows_differ: one warp per centroid row, lanes over its 4-byte words (rows
//   are padded to 16 bytes), a ballot of any difference.
// - select_ids: CUB's DeviceSelect::Flagged over the ids 0..count-1, the flag
//   of a point read through its label; the count comes back to the host.
// - gather_rows_by_id: one warp per output row, lanes over 4-byte words.
// - merge_moved, scatter_assignment: one thread per point.
// None of them touches more than the points' labels and distances and the
// rows they gather; FlashAssign does the arithmetic.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "../moved_merge.h"

#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kThreads = 256;

/// Rows of `words` 4-byte words (row_bytes is a multiple of 4 wherever the
/// engine calls these: rows are padded to 16 bytes; 1-byte words otherwise).
template <typename W>
__global__ void rows_differ_kernel(const W* __restrict__ a, const W* __restrict__ b, int64_t rows,
                                   int64_t words, uint8_t* __restrict__ flags) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
    for (int64_t j = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); j < rows;
         j += warps) {
        bool differ = false;
        for (int64_t t = lane; t < words; t += 32) {
            differ |= a[j * words + t] != b[j * words + t];
        }
        const unsigned any = __ballot_sync(0xffffffffu, differ);
        if (lane == 0) {
            flags[j] = any != 0;
        }
    }
}

template <typename W>
__global__ void gather_kernel(const W* __restrict__ x, int64_t words,
                              const int32_t* __restrict__ ids, int64_t m, W* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
    for (int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); r < m;
         r += warps) {
        const W* src = x + int64_t(ids[r]) * words;
        W* dst = out + r * words;
        for (int64_t t = lane; t < words; t += 32) {
            dst[t] = src[t];
        }
    }
}

/// A point's flag: no label yet, or its centroid moved.
struct PointMoved {
    const uint8_t* flags;
    __device__ uint8_t operator()(int32_t label) const {
        return label < 0 || flags[label];
    }
};

__global__ void merge_kernel(bool l2, int64_t n, const uint8_t* __restrict__ flags,
                             const int32_t* __restrict__ ids,
                             const int32_t* __restrict__ cand_labels,
                             const float* __restrict__ cand_distances,
                             const float* __restrict__ x_norms, const float* __restrict__ c_norms,
                             double rel_tol, int32_t* __restrict__ labels,
                             float* __restrict__ distances, unsigned long long* near_ties) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const int32_t own = labels[i];
        if (own < 0 || flags[own] || cand_labels[i] < 0) {
            continue; // assigned in full elsewhere
        }
        const int32_t cand = ids[cand_labels[i]];
        const float d_own = distances[i], d_cand = cand_distances[i];
        if (moved_merge::near_tie(rel_tol, x_norms[i], c_norms[own], c_norms[cand], d_own,
                                  d_cand)) {
            atomicAdd(near_ties, 1ull);
        }
        if (moved_merge::candidate_wins(l2, own, d_own, cand, d_cand)) {
            labels[i] = cand;
            distances[i] = d_cand;
        }
    }
}

__global__ void scatter_kernel(const int32_t* __restrict__ ids, int64_t m,
                               const int32_t* __restrict__ l, const float* __restrict__ dist,
                               int32_t* __restrict__ labels, float* __restrict__ distances) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < m; r += stride) {
        labels[ids[r]] = l[r];
        distances[ids[r]] = dist[r];
    }
}

/// DeviceSelect::Flagged over the ids 0..count-1 with flags `flag_it`;
/// tmp == nullptr: the temporary bytes it needs.
template <typename FlagIt>
cudaError_t select_flagged(void* tmp, size_t& bytes, FlagIt flag_it, int32_t* ids,
                           int64_t* selected, int64_t count, cudaStream_t stream) {
    return cub::DeviceSelect::Flagged(tmp, bytes, thrust::counting_iterator<int32_t>(0), flag_it,
                                      ids, selected, count, stream);
}

constexpr size_t kCountBytes = 256; // the selected count, ahead of CUB's temporaries

} // namespace

void rows_differ(const Place& p, const void* a, const void* b, int64_t rows, size_t row_bytes,
                 uint8_t* flags) {
    if (rows == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    const unsigned grid = blocks_for(rows, kThreads / 32);
    if (row_bytes % 4 == 0 && reinterpret_cast<uintptr_t>(a) % 4 == 0 &&
        reinterpret_cast<uintptr_t>(b) % 4 == 0) {
        rows_differ_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint32_t*>(a),
                                                          static_cast<const uint32_t*>(b), rows,
                                                          int64_t(row_bytes / 4), flags);
    } else {
        rows_differ_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(a),
                                                          static_cast<const uint8_t*>(b), rows,
                                                          int64_t(row_bytes), flags);
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

size_t select_ids_workspace(int64_t count) {
    size_t plain = 0, through_labels = 0;
    FK_CUDA_CHECK(select_flagged(nullptr, plain, static_cast<const uint8_t*>(nullptr), nullptr,
                                 nullptr, count, nullptr));
    FK_CUDA_CHECK(
            select_flagged(nullptr, through_labels,
                           thrust::make_transform_iterator(static_cast<const int32_t*>(nullptr),
                                                           PointMoved{nullptr}),
                           nullptr, nullptr, count, nullptr));
    return kCountBytes + (plain > through_labels ? plain : through_labels);
}

int64_t select_ids(const Place& p, const uint8_t* flags, const int32_t* labels, int64_t count,
                   int32_t* ids, void* workspace, size_t workspace_bytes) {
    if (count == 0) {
        return 0;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    int64_t* selected = static_cast<int64_t*>(workspace);
    void* tmp = static_cast<uint8_t*>(workspace) + kCountBytes;
    size_t bytes = workspace_bytes - kCountBytes;
    if (labels == nullptr) {
        FK_CUDA_CHECK(select_flagged(tmp, bytes, flags, ids, selected, count, stream));
    } else {
        FK_CUDA_CHECK(select_flagged(tmp, bytes,
                                     thrust::make_transform_iterator(labels, PointMoved{flags}),
                                     ids, selected, count, stream));
    }
    int64_t out = 0;
    FK_CUDA_CHECK(cudaMemcpyAsync(&out, selected, sizeof(out), cudaMemcpyDeviceToHost, stream));
    FK_CUDA_CHECK(cudaStreamSynchronize(stream));
    return out;
}

void gather_rows_by_id(const Place& p, const void* x, size_t row_bytes, const int32_t* ids,
                       int64_t m, void* out) {
    if (m == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    const unsigned grid = blocks_for(m, kThreads / 32);
    if (row_bytes % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 4 == 0 &&
        reinterpret_cast<uintptr_t>(out) % 4 == 0) {
        gather_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint32_t*>(x),
                                                     int64_t(row_bytes / 4), ids, m,
                                                     static_cast<uint32_t*>(out));
    } else {
        gather_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(x),
                                                     int64_t(row_bytes), ids, m,
                                                     static_cast<uint8_t*>(out));
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

int64_t merge_moved(const Place& p, Metric metric, int64_t n, const uint8_t* flags,
                    const int32_t* ids, const int32_t* cand_labels, const float* cand_distances,
                    const float* x_norms, const float* c_norms, double rel_tol, int32_t* labels,
                    float* distances, int64_t* scratch) {
    if (n == 0) {
        return 0;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    FK_CUDA_CHECK(cudaMemsetAsync(scratch, 0, sizeof(int64_t), stream));
    merge_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(metric == Metric::L2, n, flags,
                                                                   ids, cand_labels, cand_distances,
                                                                   x_norms, c_norms, rel_tol,
                                                                   labels, distances,
                                                                   reinterpret_cast<
                                                                           unsigned long long*>(
                                                                           scratch));
    FK_CUDA_CHECK(cudaGetLastError());
    int64_t out = 0;
    FK_CUDA_CHECK(cudaMemcpyAsync(&out, scratch, sizeof(out), cudaMemcpyDeviceToHost, stream));
    FK_CUDA_CHECK(cudaStreamSynchronize(stream));
    return out;
}

void scatter_assignment(const Place& p, const int32_t* ids, int64_t m, const int32_t* l,
                        const float* dist, int32_t* labels, float* distances) {
    if (m == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    scatter_kernel<<<blocks_for(m, kThreads), kThreads, 0, stream>>>(ids, m, l, dist, labels,
                                                                     distances);
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace cuda
} // namespace flashkmeans
