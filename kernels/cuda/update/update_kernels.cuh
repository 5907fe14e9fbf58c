// The update's steps as the entry point (sort_inverse_update.cu) sees them:
// the types the kernels share and one launcher per step. Steps 1, 3 and 6 are
// in segments.cu, 4 in segment_reduce.cuh (instantiated per dtype in
// segment_reduce_*.cu), 5 in combine.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

constexpr int kReduceWarps = 8;    // warps (pieces) per reduce block
constexpr int kCombineWarps = 32;  // warps per block of the long-cluster combine
constexpr int kShortPieces = 32;   // clusters cut into <= this many pieces: one warp

/// The sorted points as the steps after the sort read them. Packed (ids ==
/// nullptr): one word per point, key << shift | point, sorted keys-only on
/// the key's bits (half the sort's traffic, one load per point in the
/// reduce); otherwise keys and ids in two arrays, shift = 0.
struct SortedPoints {
    const uint32_t* keys;
    const int32_t* ids;
    int shift;

    __device__ __forceinline__ uint32_t key(int32_t pos) const { return keys[pos] >> shift; }
    __device__ __forceinline__ void get(int32_t pos, uint32_t& key, int32_t& id) const {
        const uint32_t v = keys[pos];
        key = v >> shift;
        id = ids != nullptr ? ids[pos] : int32_t(v & ((1u << shift) - 1u));
    }
};

/// A cut cluster, as the reduce step lists it for the combine step: what the
/// combine needs, so that it reads one entry and then the partial rows
/// (looking the cluster's key and first piece up again cost two dependent
/// loads). Pieces and slots are below 2^31 (m < 2^31, pieces >= 32 points).
struct __align__(16) Finisher {
    int32_t q_last;      // the piece where the cluster ends (its first run)
    uint32_t key;        // the cluster's sort key
    int32_t q_first;     // the piece where it starts
    int32_t first_slot;  // its partial row there: q_first * 2 + 0 or 1
};

/// The lists start 16 bytes after the two counters.
__host__ __device__ inline Finisher* finisher_list(int32_t* finishers) {
    return reinterpret_cast<Finisher*>(finishers + 4);
}
__host__ __device__ inline const Finisher* finisher_list(const int32_t* finishers) {
    return reinterpret_cast<const Finisher*>(finishers + 4);
}

/// Keys of one pass: key = b (k + 1) + label; label k is the sentinel.
/// Keys and k + 1 fit in 32 bits (make_plan), so the divisions on the device
/// are 32-bit (a 64-bit one is a ~70-instruction subroutine).
struct KeySpace {
    int64_t n;        // points per problem
    int64_t k;        // clusters per problem
    int64_t k_begin;  // first non-frozen cluster

    __host__ __device__ uint32_t problem(uint32_t key) const { return key / uint32_t(k + 1); }
    __host__ __device__ uint32_t label(uint32_t key) const { return key % uint32_t(k + 1); }
    /// the key's points are summed: a real, non-frozen label
    __host__ __device__ bool summed(uint32_t key) const {
        const int64_t l = label(key);
        return l < k && l >= k_begin;
    }
    /// row of sums / weight_sums / counts: b k + label
    __host__ __device__ int64_t row(uint32_t key) const { return int64_t(key) - problem(key); }
};

/// Pieces: problem b's sorted points [b n, (b + 1) n) are cut into
/// `per_problem` pieces of `len` points; piece Q = b per_problem + q.
struct Pieces {
    int64_t n;
    int64_t len;
    int64_t per_problem;

    __host__ __device__ int64_t begin(int64_t Q) const {
        return (Q / per_problem) * n + (Q % per_problem) * len;
    }
    __host__ __device__ int64_t end(int64_t Q) const {
        const int64_t b = Q / per_problem;
        const int64_t e = begin(Q) + len;
        return e < (b + 1) * n ? e : (b + 1) * n;
    }
    /// the piece holding sorted position pos of problem b
    __host__ __device__ int64_t of(int64_t b, int64_t pos) const {
        return b * per_problem + (pos - b * n) / len;
    }
};

struct ReduceParams {
    const void* x;
    int64_t d;
    const float* weights;  // null = unweighted
    SortedPoints sorted;  // ids ascend within a key
    int64_t m;
    Pieces pieces;
    int64_t n_pieces;
    KeySpace ks;
    float* sums;
    float* weight_sums;
    float* part;    // n_pieces x 2 x dround
    float* part_w;  // n_pieces x 2
    int64_t dround;
    const int32_t* seg_start;
    int32_t* finishers;  // [0], [1] = counts of the short / long list, then the lists
    int64_t list_cap;    // entries per list (Finisher, from finishers + 4)
};

struct CombineParams {
    int64_t d;
    KeySpace ks;
    bool weighted;
    float* sums;
    float* weight_sums;
    const float* part;
    const float* part_w;
    int64_t dround;
    const int32_t* finishers;  // [0], [1] = counts of the short / long list, then the lists
    int64_t list_cap;
};

/// accumulate_chunk: a chunk's sums (rows j >= k_begin), weight sums (the
/// same rows) and counts (every row) added to the running ones.
struct AccumulateParams {
    int64_t batch, k, d, k_begin;
    float* sums;
    float* weight_sums;
    int32_t* counts; // null: not kept
    const float* chunk_sums;
    const float* chunk_weight_sums;
    const int32_t* chunk_counts;
};

// ------------------------------------------------------------------ launchers

/// Step 1 (make_keys_kernel): keys (and ids unless packed, ids == nullptr)
/// of the m points of a pass; also zeroes `zero_words` words at `zero`.
/// Checked.
void make_keys(const int32_t* labels, KeySpace ks, uint32_t m, int shift, uint32_t* keys,
               int32_t* ids, int32_t* zero, uint32_t zero_words, cudaStream_t stream);

/// Step 3 (segment_bounds_kernel): seg_start / seg_end per key from the m
/// sorted keys (packed: key << shift | point).
void segment_bounds(const uint32_t* keys, int shift, uint32_t m, int32_t* seg_start,
                    int32_t* seg_end, cudaStream_t stream);

/// Step 6 (cluster_info_kernel): counts, unweighted weight sums and zero
/// rows of empty clusters, for the `rows` = nb k clusters of a pass.
void cluster_info(const int32_t* seg_start, const int32_t* seg_end, KeySpace ks, int64_t rows,
                  int64_t d, bool weighted, float* sums, float* weight_sums, int32_t* counts,
                  cudaStream_t stream);

/// Step 4 (segment_reduce_kernel) on `grid` (pieces / groups per block x
/// column blocks): v8 (16-byte loads of 8 fp16/bf16, a half-warp per piece),
/// else vec4 (4 elements per lane), else 1; `rows` in flight per group (16
/// or 8, reduce_rows). Defined for float, __half and __nv_bfloat16.
template <typename T>
void segment_reduce(dim3 grid, const ReduceParams& rp, bool v8, bool vec4, int rows,
                    cudaStream_t stream);

/// Step 5 (segment_combine_kernel): the clusters the reduce step listed as
/// cut, on a persistent grid sized for n_pieces pieces (per_problem each)
/// times col_blocks column blocks of 128 (vec4) or 32 columns.
void combine_cut_clusters(const CombineParams& cp, int64_t n_pieces, int64_t per_problem,
                          int64_t col_blocks, bool vec4, cudaStream_t stream);

/// The accumulate mode's last step (accumulate.cu). Checked.
void accumulate_chunk(const AccumulateParams& p, cudaStream_t stream);

} // namespace update
} // namespace cuda
} // namespace flashkmeans
