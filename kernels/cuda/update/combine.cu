// Step 5 of the update (sort_inverse_update.cu): the combine of the clusters
// cut across pieces. Reads each listed cluster's partial rows (at most 2 per
// piece, d floats each) and writes its sums and weight sum; the order of the
// additions depends only on the cluster's piece count, so the sums are
// bitwise reproducible with no floating-point atomics.
#include "row_io.cuh"
#include "update_kernels.cuh"

#include "../cuda_check.h"
#include "../launch_after.cuh"

#include <cuda_runtime.h>

#include <algorithm>

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

/// acc / wacc += the partial rows of pieces q0, q0 + step, ... <= f.q_last of
/// the cut cluster f, in that order; its first piece holds it in
/// f.first_slot, every later piece in slot 0 (the first run). kChunk rows are
/// loaded at once, then added in order: one load latency per kChunk pieces,
/// the same sums as one at a time. 32-bit piece arithmetic: at 64 registers
/// (1024-thread blocks) 64-bit indices spilled.
template <int VEC>
__device__ __forceinline__ void add_partials(const CombineParams& p, const Finisher& f, int32_t q0,
                                             int32_t step, int32_t col, bool col_ok,
                                             float (&acc)[VEC], float& wacc) {
    constexpr int kChunk = 8;
    for (; q0 <= f.q_last; q0 += kChunk * step) {
        Vec<VEC> v[kChunk];
        float wv[kChunk];
#pragma unroll
        for (int u = 0; u < kChunk; ++u) {
            const int32_t qq = q0 + u * step;
            const int32_t slot = qq == f.q_first ? f.first_slot : qq * 2;
            if (qq <= f.q_last && col_ok) {
                v[u] = load_vec<float, VEC>(p.part + int64_t(slot) * p.dround + col);
            }
            wv[u] = qq <= f.q_last ? p.part_w[slot] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kChunk; ++u) {
            if (q0 + u * step <= f.q_last) {
                if (col_ok) {
#pragma unroll
                    for (int t = 0; t < VEC; ++t) acc[t] += v[u].v[t];
                }
                wacc += wv[u];
            }
        }
    }
}

/// Adds the partials of the cut cluster f in a fixed tree: warp w adds
/// pieces first + w, first + w + 32, ... in order, then warp 0 adds the 32
/// warp sums in warp order. The tree depends only on the number of pieces,
/// so the sum is bitwise reproducible.
template <int VEC>
__device__ __forceinline__ void finish_cluster(const CombineParams& p, const Finisher& f,
                                               float (&red)[kCombineWarps][32 * VEC + 1]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t col = int32_t(blockIdx.y) * 32 * VEC + lane * VEC;
    const bool col_ok = col < p.d;
    float acc[VEC];
    float wacc = 0.0f;
#pragma unroll
    for (int t = 0; t < VEC; ++t) acc[t] = 0.0f;
    add_partials<VEC>(p, f, f.q_first + warp, kCombineWarps, col, col_ok, acc, wacc);
#pragma unroll
    for (int t = 0; t < VEC; ++t) red[warp][lane * VEC + t] = acc[t];
    if (lane == 0) {
        red[warp][32 * VEC] = wacc;
    }
    __syncthreads();
    if (warp == 0) {
        const int32_t pieces = f.q_last - f.q_first + 1;
        const int used = pieces < kCombineWarps ? pieces : kCombineWarps;
        float out[VEC];
        float wout = 0.0f;
#pragma unroll
        for (int t = 0; t < VEC; ++t) out[t] = 0.0f;
        for (int w = 0; w < used; ++w) {
#pragma unroll
            for (int t = 0; t < VEC; ++t) out[t] += red[w][lane * VEC + t];
            wout += red[w][32 * VEC];
        }
        const int64_t row = p.ks.row(f.key);
        if (col_ok) {
            store_vec<VEC>(p.sums + row * p.d + col, out);
        }
        if (p.weighted && blockIdx.y == 0 && lane == 0) {
            p.weight_sums[row] = wout;
        }
    }
}

/// Step 5, one launch for both lists of the reduce step (two launches cost
/// ~2 us more at 1M points, and 4 us more at 32 x 65536, where the second
/// had no long cluster to combine). Short clusters (<= kShortPieces pieces)
/// first: one warp per cluster adds its partials in piece order. Then long
/// ones: each block in turn takes a whole cluster (finish_cluster's 32-warp
/// tree).
template <int VEC>
__global__ void __launch_bounds__(kCombineWarps * 32)
        segment_combine_kernel(const CombineParams p) {
    __shared__ float red[kCombineWarps][32 * VEC + 1];
    wait_for_previous_grid();  // launched with launch_after
    allow_next_grid();
    const int lane = threadIdx.x & 31;
    const int32_t col = int32_t(blockIdx.y) * 32 * VEC + lane * VEC;
    const bool col_ok = col < p.d;
    const Finisher* list = finisher_list(p.finishers);
    const int short_count = p.finishers[0];
    const int64_t warps = int64_t(gridDim.x) * kCombineWarps;
    for (int64_t i = int64_t(blockIdx.x) * kCombineWarps + (threadIdx.x >> 5); i < short_count;
         i += warps) {
        const Finisher f = list[i];
        float acc[VEC];
        float wacc = 0.0f;
#pragma unroll
        for (int t = 0; t < VEC; ++t) acc[t] = 0.0f;
        add_partials<VEC>(p, f, f.q_first, 1, col, col_ok, acc, wacc);
        const int64_t row = p.ks.row(f.key);
        if (col_ok) {
            store_vec<VEC>(p.sums + row * p.d + col, acc);
        }
        if (p.weighted && blockIdx.y == 0 && lane == 0) {
            p.weight_sums[row] = wacc;
        }
    }
    const int long_count = p.finishers[1];
    for (int i = blockIdx.x; i < long_count; i += gridDim.x) {  // uniform in the block
        __syncthreads();  // red is free: the previous cluster is stored
        finish_cluster<VEC>(p, list[p.list_cap + i], red);
    }
}

} // namespace

void combine_cut_clusters(const CombineParams& cp, int64_t n_pieces, int64_t per_problem,
                          int64_t col_blocks, bool vec4, cudaStream_t stream) {
    int device = 0, sms = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    // the list lengths stay on the device: a persistent grid loops over
    // them (at most one finisher per two pieces, one warp each; a long
    // cluster takes a block, and there are at most n_pieces / 33)
    const int64_t short_blocks = ((n_pieces + 1) / 2 + kCombineWarps - 1) / kCombineWarps;
    const int64_t long_blocks = per_problem > kShortPieces ? n_pieces / (kShortPieces + 1) : 0;
    const int64_t blocks = std::min<int64_t>(std::max<int64_t>({1, short_blocks, long_blocks}),
                                             std::max(1, 2 * sms));
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(col_blocks));
    if (vec4) {
        launch_after(segment_combine_kernel<4>, grid, kCombineWarps * 32, 0, stream, cp);
    } else {
        launch_after(segment_combine_kernel<1>, grid, kCombineWarps * 32, 0, stream, cp);
    }
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
