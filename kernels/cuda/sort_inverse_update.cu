// Sort-inverse update (CUDA): for each cluster j >= k_begin, sums[j] = sum of
// w_i x_i and weight_sums[j] = sum of w_i (or the count, unweighted) over the
// points labelled j; counts[j] = number of points labelled j for every j (the
// assignment histogram, as the CPU kernel writes it). No floating-point
// atomics anywhere: the result is bitwise identical run to run, whatever the
// scheduling of blocks.
//
// Memory traffic: x read once (gathered by sorted id, each row exactly once),
// labels read once, plus O(n) 4-byte keys/ids through the radix sort (a few
// passes over 8 n bytes), O(k) segment bounds, and 2 partial rows of d floats
// per piece of L points (a few percent of the x traffic).
//
// Why this shape (the steps of one pass):
//  1. keys: key_i = b (k + 1) + label_i (the batch is folded into the key;
//     an out-of-range label becomes label k, a per-problem sentinel that is
//     ignored, so problem b's points always occupy sorted positions
//     [b n, (b + 1) n)), value_i = i. When the key's bits and the point's
//     fit in one 32-bit word (2^20 points and k < 4096), both go there:
//     key_i << s | i, with no value (SortedPoints).
//  2. CUB's radix sort of the pairs (or of the packed words alone) on the
//     ceil(log2(B (k + 1))) key bits only: half the traffic when packed.
//     Radix sort is stable, so ids ascend inside each cluster's segment.
//  3. segment bounds from the sorted keys (a key differs from its neighbour):
//     seg_start / seg_end per cluster, count = end - start. This replaces the
//     histogram + scan: it needs no atomics (an integer histogram would
//     serialise on the skewed case where most points share one label) and
//     gives the offsets directly.
//  4. reduce: each problem's sorted sequence is cut into pieces of L
//     consecutive points, one half-warp per (piece, 128-column block) (fp16/
//     bf16 with d % 8 == 0: 16-byte loads of 8 elements; otherwise a warp,
//     16-byte fp32 or 8-byte fp16/bf16 loads); 16 rows in flight per group,
//     the next 16 keys and ids loaded while they are added, the points added
//     in sorted order. The step is bound by load latency, not bandwidth (each
//     group walks its piece batch after batch), so L shrinks with n (down to
//     128 points) until a problem makes ~8192 groups. A cluster wholly inside
//     a piece is written straight to `sums`; a cluster cut by a piece boundary
//     leaves a partial row (at most 2 per piece: the first and the last run)
//     in scratch. Pieces have the same size whatever the label distribution,
//     so 90% of points in 1% of clusters, or all in one, balance exactly like
//     uniform labels.
//  5. combine: the reduce step lists the pieces where a cut cluster ends (an
//     integer atomic appends to a list; list order does not matter). A
//     cluster cut into at most 32 pieces is combined by one warp, adding the
//     pieces in order; a longer one by a 32-warp block where warp w adds
//     pieces w, w + 32, ... in order and the 32 results are added in warp
//     order. Either way the order depends only on the piece count: bitwise
//     reproducibility with no floating-point atomics, and a cluster holding
//     every point is still combined by 32 warps in parallel.
//  6. info: counts, unweighted weight_sums = count, and zero rows for empty
//     clusters (FAISS leaves them at 0 before splitting).
// The partial rows live in the half of the sort's double buffers that is free
// once the sort is done when they fit there (L >= 2 (d + 1)), else in a
// region of their own; the workspace size depends on n, d, k and the batch
// only, as update_workspace_bytes promises.
//
// Pieces start at each problem's first point, so a batch gives bitwise the
// same sums as separate calls. Batches whose B n or B k exceed int32 are done
// in several passes over groups of problems (the workspace is sized for one
// pass).
//
// Reference: the CPU kernel (kernels/cpu/sort_inverse_update.cpp, same
// expressions `c += x` / `c += x * w` without contraction) is the reference the
// tests compare with; a cluster contained in one piece is bitwise equal to it.
//
// Files (kernels/cuda/update/): plan.h (passes and workspace), heuristics.h
// (the variants and the rules of the shape), sort_policy.cuh (the radix sort's
// digit policy on CUB internals; radix_sort.cuh to call it), segments.cu
// (steps 1, 3, 6), segment_reduce.cuh (step 4), combine.cu (step 5);
// update_kernels.cuh declares the steps as this file calls them.
#include "update/heuristics.h"
#include "update/plan.h"
#include "update/radix_sort.cuh"
#include "update/update_kernels.cuh"

#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

/// Steps 1-6 for problems [b0, b0 + nb) in the workspace `ws` laid out by `plan`.
template <typename T>
void run_pass(const kernels::UpdateArgs& a, const Plan& plan, int64_t b0, int64_t nb, char* ws,
              cudaStream_t stream) {
    const int64_t n = a.n, k = a.k, d = a.d;
    const int64_t m = nb * n;
    const KeySpace ks{n, k, a.k_begin};
    const T* x = static_cast<const T*>(a.x) + b0 * n * d;
    const int32_t* labels = a.labels + b0 * n;
    const float* weights = a.weights ? a.weights + b0 * n : nullptr;
    float* sums = a.sums + b0 * k * d;
    float* weight_sums = a.weight_sums + b0 * k;
    int32_t* counts = a.counts ? a.counts + b0 * k : nullptr;

    auto* seg_start = reinterpret_cast<int32_t*>(ws + plan.off_seg_start);
    auto* seg_end = reinterpret_cast<int32_t*>(ws + plan.off_seg_end);
    // seg_start, seg_end and the 2 finisher counters are contiguous: zeroed
    // by make_keys (a memset when there are no points)
    const size_t zero_bytes = plan.off_list + 2 * sizeof(int32_t) - plan.off_seg_start;
    if (m == 0) {
        FK_CUDA_CHECK(cudaMemsetAsync(seg_start, 0, zero_bytes, stream));
    }

    SortedPoints sorted{nullptr, nullptr, plan.shift};
    char* free_region = nullptr;  // 2 buf_bytes, free after the sort
    if (m > 0) {
        auto* keys0 = reinterpret_cast<uint32_t*>(ws + plan.off_keys0);
        auto* ids0 = plan.packed ? nullptr : reinterpret_cast<int32_t*>(ws + plan.off_ids0);
        auto* keys1 = reinterpret_cast<uint32_t*>(ws + plan.off_keys1);
        auto* ids1 = reinterpret_cast<int32_t*>(ws + plan.off_ids1);
        const auto zero_words = uint32_t(zero_bytes / sizeof(int32_t));
        make_keys(labels, ks, uint32_t(m), plan.shift, keys0, ids0, seg_start, zero_words, stream);
        cub::DoubleBuffer<uint32_t> dkeys(keys0, keys1);
        size_t cub_bytes = plan.cub_bytes;
        if (plan.packed) {
            cub::DoubleBuffer<cub::NullType> none;
            FK_CUDA_CHECK(radix_sort(ws + plan.off_cub, cub_bytes, dkeys, none, uint32_t(m),
                                     plan.shift, plan.shift + plan.end_bit, plan.sort6, stream));
        } else {
            cub::DoubleBuffer<int32_t> dids(ids0, ids1);
            FK_CUDA_CHECK(radix_sort(ws + plan.off_cub, cub_bytes, dkeys, dids, uint32_t(m), 0,
                                     plan.end_bit, plan.sort6, stream));
            if (dkeys.selector != dids.selector) {
                throw KernelError("flashkmeans: sort_inverse_update: unexpected CUB buffer state");
            }
            sorted.ids = dids.Current();
        }
        sorted.keys = dkeys.Current();
        // the other keys buffer and the ids buffer after it
        free_region = ws + (dkeys.selector == 0 ? plan.off_keys1 : plan.off_keys0);
        segment_bounds(sorted.keys, plan.shift, uint32_t(m), seg_start, seg_end, stream);
    }
    cluster_info(seg_start, seg_end, ks, nb * k, d, weights != nullptr, sums, weight_sums, counts,
                 stream);
    if (m == 0) {
        return;
    }

    const int64_t dround = (d + 3) / 4 * 4;
    Pieces pieces;
    pieces.n = n;
    const UpdateVariant& uv = *plan.variant;
    pieces.len = plan.piece;
    pieces.per_problem = (n + pieces.len - 1) / pieces.len;
    const int64_t n_pieces = nb * pieces.per_problem;
    // partial rows (n_pieces x 2 x dround floats) then their weights (where
    // make_plan put them); only problems of 2+ pieces have cut clusters
    float* part = reinterpret_cast<float*>(plan.off_part != 0 ? ws + plan.off_part : free_region);
    float* part_w = part + n_pieces * 2 * dround;
    const bool cut = pieces.per_problem > 1;
    const size_t part_room = plan.off_part != 0 ? plan.total - plan.off_part : 2 * plan.buf_bytes;
    if (cut && size_t(n_pieces) * 2 * size_t(dround + 1) * 4 > part_room) {
        throw KernelError("flashkmeans: sort_inverse_update: internal scratch overflow");
    }

    const bool vec4 = d % 4 == 0 && reinterpret_cast<uintptr_t>(x) % (4 * sizeof(T)) == 0 &&
                      reinterpret_cast<uintptr_t>(sums) % 16 == 0;
    const int cols_per_warp = vec4 ? 128 : 32;
    const int64_t col_blocks = (d + cols_per_warp - 1) / cols_per_warp;
    if (col_blocks > 65535) {
        throw KernelError("flashkmeans: sort_inverse_update: d = " + std::to_string(d) +
                          " is too large");
    }

    ReduceParams rp;
    rp.x = x;
    rp.d = d;
    rp.weights = weights;
    rp.sorted = sorted;
    rp.m = m;
    rp.pieces = pieces;
    rp.n_pieces = n_pieces;
    rp.ks = ks;
    rp.sums = sums;
    rp.weight_sums = weight_sums;
    rp.part = part;
    rp.part_w = part_w;
    rp.dround = dround;
    rp.seg_start = seg_start;
    rp.finishers = reinterpret_cast<int32_t*>(ws + plan.off_list);
    rp.list_cap = n_pieces;
    // v8: 16-byte loads of 8 fp16/bf16, a half-warp per piece, 128 columns
    // per group like the default's warp (so col_blocks is the same)
    const bool v8 = uv.v8 && sizeof(T) == 2 && vec4 && d % 8 == 0 &&
                    reinterpret_cast<uintptr_t>(x) % 16 == 0;
    const int64_t groups = v8 ? 2 * kReduceWarps : kReduceWarps;  // pieces per block
    const dim3 rgrid(unsigned((n_pieces + groups - 1) / groups), unsigned(col_blocks));
    segment_reduce<T>(rgrid, rp, v8, vec4, reduce_rows(uv, pieces.len), stream);
    FK_CUDA_CHECK(cudaGetLastError());

    if (cut) {
        CombineParams cp;
        cp.d = d;
        cp.ks = ks;
        cp.weighted = weights != nullptr;
        cp.sums = sums;
        cp.weight_sums = weight_sums;
        cp.part = part;
        cp.part_w = part_w;
        cp.dround = dround;
        cp.finishers = rp.finishers;
        cp.list_cap = rp.list_cap;
        combine_cut_clusters(cp, n_pieces, pieces.per_problem, col_blocks, vec4, stream);
    }
}

} // namespace

} // namespace update

namespace {

/// Accumulating, the chunk's own sums, weight sums and counts follow the
/// plan's scratch in the workspace (256-byte aligned).
size_t chunk_sums_offset(size_t plan_total) {
    return (plan_total + 255) / 256 * 256;
}
size_t chunk_sums_bytes(int64_t d, int64_t k, int64_t batch) {
    const size_t rows = size_t(k) * size_t(batch);
    return (rows * size_t(d) + rows) * sizeof(float) + rows * sizeof(int32_t);
}

} // namespace

size_t update_workspace_bytes(int64_t n, int64_t d, int64_t k, int64_t batch, bool accumulate) {
    const size_t total = update::make_plan(n, d, k, batch, update::update_variant(nullptr)).total;
    return accumulate ? chunk_sums_offset(total) + chunk_sums_bytes(d, k, batch) : total;
}

void sort_inverse_update(const Place& place, const kernels::UpdateArgs& a) {
    DeviceGuard guard(place.device);
    const cudaStream_t stream = stream_of(place);
    const update::Plan plan =
            update::make_plan(a.n, a.d, a.k, a.batch, update::update_variant(a.variants));
    const size_t need =
            a.accumulate ? chunk_sums_offset(plan.total) + chunk_sums_bytes(a.d, a.k, a.batch)
                         : plan.total;
    char* ws = static_cast<char*>(a.workspace);
    if (ws != nullptr && a.workspace_bytes < need) {
        throw KernelError("flashkmeans: sort_inverse_update: workspace of " +
                          std::to_string(a.workspace_bytes) + " bytes is too small; need " +
                          std::to_string(need) + " (update_workspace_bytes)");
    }
    if (ws != nullptr && reinterpret_cast<uintptr_t>(ws) % 256 != 0) {
        throw KernelError("flashkmeans: sort_inverse_update: the workspace must be 256-byte aligned");
    }
    ScopedDeviceBuffer owned(ws == nullptr ? need : 0, stream);
    if (ws == nullptr) {
        ws = static_cast<char*>(owned.get());
    }
    // accumulating: the ordinary update into the chunk's own sums, then one
    // addition into the running ones
    kernels::UpdateArgs u = a;
    if (a.accumulate) {
        const size_t rows = size_t(a.k) * size_t(a.batch);
        auto* chunk = reinterpret_cast<float*>(ws + chunk_sums_offset(plan.total));
        u.sums = chunk;
        u.weight_sums = chunk + rows * size_t(a.d);
        u.counts = reinterpret_cast<int32_t*>(u.weight_sums + rows);
    }
    dispatch_dtype(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        for (int64_t b0 = 0; b0 < a.batch; b0 += plan.nb) {
            const int64_t nb = std::min<int64_t>(plan.nb, a.batch - b0);
            update::run_pass<T>(u, plan, b0, nb, ws, stream);
        }
    });
    if (a.accumulate) {
        update::AccumulateParams p{a.batch,       a.k,      a.d,    a.k_begin,     a.sums,
                                   a.weight_sums, a.counts, u.sums, u.weight_sums, u.counts};
        update::accumulate_chunk(p, stream);
    }
}

} // namespace cuda
} // namespace flashkmeans
