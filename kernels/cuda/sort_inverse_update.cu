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
#include "tuning_variant.h"
#include "cuda_check.h"
#include "launch_after.cuh"
#include "cuda_kernels.h"
#include "dtype.cuh"

#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kReduceWarps = 8;    // warps (pieces) per reduce block
constexpr int kCombineWarps = 32;  // warps per block of the long-cluster combine
constexpr int kShortPieces = 32;   // clusters cut into <= this many pieces: one warp

size_t align256(size_t v) { return (v + 255) & ~size_t(255); }

struct UpdateVariant;                                         // below
const UpdateVariant& update_variant(const kernels::Variants* v);  // likewise
int64_t piece_len(int64_t n, int64_t d, const UpdateVariant& uv); // likewise
int sort_digit_bits(int bits, bool sort6);                        // likewise
bool pack_keys(const UpdateVariant& uv);                          // likewise
bool small_digits(const UpdateVariant& uv);                       // likewise

/// The radix sort of step 2. CUB's SM90 tuning sorts 8 bits per onesweep pass
/// (384 threads x 23 items). With 9-12 key bits (k ~ 256..4096, one
/// problem) that is two passes of 8 + 1..4 bits; 6 + 3..6 bits in 256 x 16
/// tiles makes the same two passes with smaller digit tables, and was
/// faster on the H200 (2026-11-22, 1M keys of 11 bits: 45.2 vs 47.7 us,
/// 8M: 181 vs 194; bench/results/2026-11-22-h200-session13/call1_sort_gather at 91e0225).
/// Where 6-bit digits would add a pass (13-16, 19-24 bits) they lose (21
/// bits, 2M keys: 114 vs 93 us). So the digit is the smallest that keeps
/// CUB's number of passes, at least 6 (sort_digit_bits): 6 for 9-12 bits, 7
/// for 13-14 (k = 4096 with its sentinel label is 13 bits), 6 for 17-18, 7
/// for 19-21, CUB's own 8 for 22-24. Same stable order either way. V: the
/// values (int32 ids, or cub::NullType for the packed keys-only sort).
/// CUB sizes the histogram kernel's grid by occupancy, so its 128-thread
/// blocks each count a few thousand keys and flush their bins with global
/// atomics; with 7-bit digits (4M x 4096: 2 x 4M keys of 13 bits, not
/// packed) 512-thread blocks of 4 sub-histograms were 3-4 us faster per
/// update (0.415-0.416 vs 0.418-0.420 ms, 3 alternating passes, H200,
/// bench/results/2026-11-22-h200-session15/call9_hist7 at 91e0225); for 6-bit digits
/// they were not (1M x 1024: the update slower, call 3).
template <typename V, int DIGIT, int HIST_THREADS = 128, int HIST_PARTS = 1>
struct DigitSort {
    using Base = typename cub::detail::radix::policy_hub<uint32_t, V, uint32_t>::Policy900;
    struct Policy : cub::ChainedPolicy<500, Policy, Policy> {
        static constexpr bool ONESWEEP = true;
        static constexpr int ONESWEEP_RADIX_BITS = DIGIT;
        using HistogramPolicy =
                cub::AgentRadixSortHistogramPolicy<HIST_THREADS, 16, HIST_PARTS, uint32_t,
                                                   ONESWEEP_RADIX_BITS>;
        using ExclusiveSumPolicy = cub::AgentRadixSortExclusiveSumPolicy<256, ONESWEEP_RADIX_BITS>;
        using OnesweepPolicy = cub::AgentRadixSortOnesweepPolicy<
                256, 16, uint32_t, 1, cub::RADIX_RANK_MATCH_EARLY_COUNTS_ANY,
                cub::BLOCK_SCAN_RAKING_MEMOIZE, cub::RADIX_SORT_STORE_DIRECT, ONESWEEP_RADIX_BITS>;
        // the rest as CUB's (only the single-tile one runs on SM90: small m)
        using ScanPolicy = typename Base::ScanPolicy;
        using DownsweepPolicy = typename Base::DownsweepPolicy;
        using AltDownsweepPolicy = typename Base::AltDownsweepPolicy;
        using UpsweepPolicy = typename Base::UpsweepPolicy;
        using AltUpsweepPolicy = typename Base::AltUpsweepPolicy;
        using SingleTilePolicy = typename Base::SingleTilePolicy;
        using SegmentedPolicy = typename Base::SegmentedPolicy;
        using AltSegmentedPolicy = typename Base::AltSegmentedPolicy;
    };
    using MaxPolicy = Policy;
};

/// Stable sort of keys on bits [begin_bit, end_bit), with their values;
/// tmp == nullptr: sets bytes to the temporary storage needed.
template <typename V>
cudaError_t radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                       cub::DoubleBuffer<V>& values, uint32_t m, int begin_bit, int end_bit,
                       bool sort6, cudaStream_t stream) {
    auto with = [&](auto policy) {
        using P = decltype(policy);
        return cub::DispatchRadixSort<cub::SortOrder::Ascending, uint32_t, V, uint32_t,
                                      cub::detail::identity_decomposer_t,
                                      P>::Dispatch(tmp, bytes, keys, values, m, begin_bit,
                                                   end_bit, true, stream);
    };
    switch (sort_digit_bits(end_bit - begin_bit, sort6)) {
    case 6:
        return with(DigitSort<V, 6>{});
    case 7:
        return with(DigitSort<V, 7, 512, 4>{});
    default:
        return cub::DispatchRadixSort<cub::SortOrder::Ascending, uint32_t, V,
                                      uint32_t>::Dispatch(tmp, bytes, keys, values, m, begin_bit,
                                                          end_bit, true, stream);
    }
}

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

/// How one call is cut into passes, and where everything lives in the
/// workspace of one pass.
struct Plan {
    int64_t nb = 0;     // problems per pass
    int64_t m = 0;      // points per pass (nb n)
    int64_t nkeys = 0;  // keys per pass: nb (k + 1), the +1 is the sentinel label
    int end_bit = 1;       // key bits
    bool packed = false;   // sorted keys-only as key << shift | point (SortedPoints)
    int shift = 0;         // bits of a point id when packed
    size_t cub_bytes = 0;
    size_t buf_bytes = 0;  // one keys or ids buffer, padded
    size_t off_keys0 = 0, off_ids0 = 0, off_keys1 = 0, off_ids1 = 0;
    size_t off_seg_start = 0, off_seg_end = 0, off_list = 0, off_cub = 0;
    int64_t piece = 0;     // points per piece (piece_len)
    const UpdateVariant* variant = nullptr;
    bool sort6 = true;     // the sort's smaller digits (sort_digit_bits)
    size_t off_part = 0;   // partial rows: their own region, or 0 = the sort's free half
    size_t total = 0;
};

Plan make_plan(int64_t n, int64_t d, int64_t k, int64_t batch, const UpdateVariant& uv) {
    if (k >= int64_t(INT32_MAX) - 1) {
        throw KernelError("flashkmeans: sort_inverse_update: k = " + std::to_string(k) +
                          " must be below 2^31 - 2 (labels are int32)");
    }
    Plan p;
    p.variant = &uv;
    p.sort6 = small_digits(uv);
    int64_t nb = batch;
    if (n > 0) {
        nb = std::min<int64_t>(nb, int64_t(INT32_MAX) / n);
    }
    nb = std::min<int64_t>(nb, int64_t(INT32_MAX) / (k + 1));  // keys fit in int32
    p.nb = std::max<int64_t>(nb, 1);
    p.m = p.nb * n;
    p.nkeys = p.nb * (k + 1);
    int bits = 1;
    while ((int64_t(1) << bits) < p.nkeys) {
        ++bits;  // enough bits for the largest key nkeys - 1
    }
    p.end_bit = bits;
    int id_bits = 0;
    while ((int64_t(1) << id_bits) < p.m) {
        ++id_bits;  // enough bits for the largest point m - 1
    }
    // key and point in one word when they fit (2^20 points and k < 4096:
    // 20 + 12 bits): the sort moves 4 bytes per point instead of 8
    p.packed = p.m > 0 && pack_keys(uv) && bits + id_bits <= 32;
    p.shift = p.packed ? id_bits : 0;
    if (p.m > 0) {
        cub::DoubleBuffer<uint32_t> keys(nullptr, nullptr);
        if (p.packed) {
            cub::DoubleBuffer<cub::NullType> none;
            FK_CUDA_CHECK(radix_sort(nullptr, p.cub_bytes, keys, none, uint32_t(p.m), p.shift,
                                     p.shift + p.end_bit, p.sort6, 0));
        } else {
            cub::DoubleBuffer<int32_t> ids(nullptr, nullptr);
            FK_CUDA_CHECK(radix_sort(nullptr, p.cub_bytes, keys, ids, uint32_t(p.m), 0, p.end_bit,
                                     p.sort6, 0));
        }
    }
    p.buf_bytes = align256(size_t(p.m) * 4);
    // keys0 ids0 | keys1 ids1: whichever pair the sort leaves unused is one
    // contiguous region of 2 buf_bytes, reused for the partial rows
    p.off_keys0 = 0;
    p.off_ids0 = p.buf_bytes;
    p.off_keys1 = 2 * p.buf_bytes;
    p.off_ids1 = 3 * p.buf_bytes;
    p.off_seg_start = 4 * p.buf_bytes;
    p.off_seg_end = p.off_seg_start + align256(size_t(p.nkeys) * 4);
    // finisher lists of the combine step: 2 counters (short, long), then two
    // lists of at most one piece id per piece
    p.piece = piece_len(n, d, uv);
    const int64_t max_pieces = p.nb * ((n + p.piece - 1) / p.piece);
    p.off_list = p.off_seg_end + align256(size_t(p.nkeys) * 4);
    p.off_cub = p.off_list + align256(sizeof(Finisher) * size_t(2 * max_pieces + 1));
    p.total = p.off_cub + align256(p.cub_bytes);
    // partial rows (2 per piece, dround floats each) and their weights: in
    // the sort's free half (2 buf_bytes) when they fit, as they do for the
    // tuned lengths (piece >= 2 (d + 1)); short pieces get their own region
    const int64_t dround = (d + 3) / 4 * 4;
    const size_t part_bytes = size_t(max_pieces) * 2 * size_t(dround + 1) * 4;
    if (max_pieces > p.nb && part_bytes > 2 * p.buf_bytes) {
        p.off_part = p.total;
        p.total += align256(part_bytes);
    }
    return p;
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

// ------------------------------------------------------------------ kernels

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

template <int VEC>
struct Vec {
    float v[VEC];
};

template <typename T, int VEC>
__device__ __forceinline__ Vec<VEC> load_vec(const T* p) {
    Vec<VEC> r;
    if constexpr (VEC == 4) {
        const float4 f = load4(p);
        r.v[0] = f.x;
        r.v[1] = f.y;
        r.v[2] = f.z;
        r.v[3] = f.w;
    } else {
        r.v[0] = to_float(p[0]);
    }
    return r;
}

/// 16 bytes of a row read once: `use` ? *p : zeros. The non-coherent path
/// without L1 allocation (x is read-only here and each row is read once).
__device__ __forceinline__ uint4 load_once16(const void* p, bool use) {
    uint4 r;
    asm("{\n\t.reg .pred q;\n\t"
        "setp.ne.b32 q, %5, 0;\n\t"
        "mov.b32 %0, 0; mov.b32 %1, 0; mov.b32 %2, 0; mov.b32 %3, 0;\n\t"
        "@q ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n\t}"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p), "r"(int(use)));
    return r;
}

/// 8 fp16/bf16 elements of one 16-byte load (the v8 update variants keep
/// the loaded rows packed, 4 registers each, and convert when adding).
template <typename T>
__device__ __forceinline__ Vec<8> unpack8(const uint4 u) {
    static_assert(sizeof(T) == 2, "16-byte loads of 8 elements are for fp16/bf16");
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    Vec<8> r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const T* h = reinterpret_cast<const T*>(&w[i]);
        r.v[2 * i] = to_float(h[0]);
        r.v[2 * i + 1] = to_float(h[1]);
    }
    return r;
}

template <int VEC>
__device__ __forceinline__ void store_vec(float* p, const float (&a)[VEC]) {
    if constexpr (VEC == 8) {
        *reinterpret_cast<float4*>(p) = make_float4(a[0], a[1], a[2], a[3]);
        *reinterpret_cast<float4*>(p + 4) = make_float4(a[4], a[5], a[6], a[7]);
    } else if constexpr (VEC == 4) {
        *reinterpret_cast<float4*>(p) = make_float4(a[0], a[1], a[2], a[3]);
    } else {
        p[0] = a[0];
    }
}

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

/// Step 4: one group of G lanes (a warp, or a half-warp for the v8 update
/// variants) per (piece, column block blockIdx.y); ROWS rows in flight.
/// Whatever G, VEC and ROWS, every column adds the same rows in the same
/// (sorted) order: the sums are bitwise those of the default configuration.
///
/// Why the loop looks like this: the step is bound by memory-level
/// parallelism, so the registers per thread decide how many rows are in
/// flight per SM, and the instructions per row decide whether the warps keep
/// up (a first version shuffled each row's key, weight and flag and did
/// 64-bit address math per row: 122 registers, 2 blocks per SM, 0.4
/// instructions issued per cycle, 2.9 TB/s against 4.15 for a bare gather of
/// the same rows, ncu at 1M x 128 fp16). Now the run boundaries of a batch of
/// G keys come from one ballot, each row costs one shuffle (its point
/// id, -1 when it is not summed) and a run that goes through the whole
/// batch adds its rows with no per-row test.
///
/// ONCE: x rows through load_once16 (16-byte loads, fp16/bf16 v8 or fp32
/// VEC 4). H200, 2026-11-22, same call: with 16 rows in flight (pieces
/// shortened, n ~ 1M) the update took 0.143 vs 0.162 ms at 1M x 128 fp16 and
/// 0.205 vs 0.212 fp32; with 8 rows at 3 blocks per SM (the longest pieces)
/// it was slower, 0.743 vs 0.723 at 8M and 0.444 vs 0.432 at 4M x 4096, so
/// only the 16-row shapes use it.
template <typename T, int VEC, int G, int ROWS, int MINB, bool WEIGHTED, bool ONCE>
__global__ void __launch_bounds__(kReduceWarps * 32, MINB)
        segment_reduce_kernel(const ReduceParams p) {
    static_assert(G == 32 || G == 16, "a warp or a half-warp per piece");
    static_assert(ROWS <= G && G % ROWS == 0, "rows in flight come from one batch of G keys");
    wait_for_previous_grid();  // launched with launch_after
    allow_next_grid();
    constexpr int kGroups = kReduceWarps * 32 / G;  // pieces per block
    const int lane = threadIdx.x & (G - 1);
    // the group's lanes: shuffles and ballots name only them (the other
    // half-warp may be on another piece, or done)
    const int shift = G == 32 ? 0 : (threadIdx.x & 16);
    const unsigned gmask = G == 32 ? 0xffffffffu : (0xffffu << shift);
    const int64_t Q = int64_t(blockIdx.x) * kGroups + (threadIdx.x / G);
    if (Q >= p.n_pieces) {
        return;
    }
    const int32_t col = int32_t(blockIdx.y) * G * VEC + lane * VEC;
    const bool col_ok = col < p.d;  // VEC = 4 only when d % 4 == 0
    const bool first_cols = blockIdx.y == 0 && lane == 0;
    const T* xcol = static_cast<const T*>(p.x) + (col_ok ? col : 0);
    const int32_t d32 = int32_t(p.d);  // d < 2^31: the host checks the column blocks

    // sorted positions of a pass are below 2^31 (make_plan): 32-bit
    // positions keep the registers for rows in flight
    const int32_t p0 = int32_t(p.pieces.begin(Q));
    const int32_t p1 = int32_t(p.pieces.end(Q));
    if (p0 >= p1) {
        return;  // n == 0
    }
    // does the first run continue from the previous piece, the last into the
    // next? (keys of different problems always differ)
    const bool head_cont = p0 > 0 && p.sorted.key(p0 - 1) == p.sorted.key(p0);
    const bool tail_cont = p1 < p.m && p.sorted.key(p1) == p.sorted.key(p1 - 1);

    uint32_t cur = p.sorted.key(p0);
    int32_t run_start = p0;
    float acc[VEC];
    float wacc = 0.0f;
#pragma unroll
    for (int e = 0; e < VEC; ++e) acc[e] = 0.0f;

    auto flush = [&](uint32_t key, int32_t rs, int32_t re) {
        if (!p.ks.summed(key)) {
            return;
        }
        const bool complete = (rs > p0 || !head_cont) && (re < p1 || !tail_cont);
        if (complete) {
            const int64_t row = p.ks.row(key);
            if (col_ok) {
                store_vec<VEC>(p.sums + row * p.d + col, acc);
            }
            if (WEIGHTED && first_cols) {
                p.weight_sums[row] = wacc;
            }
        } else {
            // a cut cluster: the first run of the piece (slot 0) or the last (slot 1)
            const int64_t slot = Q * 2 + (rs == p0 ? 0 : 1);
            if (col_ok) {
                store_vec<VEC>(p.part + slot * p.dround + col, acc);
            }
            if (first_cols) {
                p.part_w[slot] = wacc;
                if (rs == p0 && head_cont && (re < p1 || !tail_cont)) {
                    // the cluster ends here: this piece finishes it (list
                    // order is irrelevant: each entry is summed on its own)
                    const int32_t s = p.seg_start[key];
                    Finisher fin;
                    fin.q_last = int32_t(Q);
                    fin.key = key;
                    fin.q_first = int32_t(p.pieces.of(p.ks.problem(key), s));
                    // the cluster is the last run (slot 1) of its first piece
                    // unless it starts exactly there
                    fin.first_slot = fin.q_first * 2 + (s > p.pieces.begin(fin.q_first) ? 1 : 0);
                    const int list = Q - fin.q_first + 1 <= kShortPieces ? 0 : 1;
                    const int32_t at = atomicAdd(p.finishers + list, 1);
                    finisher_list(p.finishers)[list * p.list_cap + at] = fin;
                }
            }
        }
    };
    // acc (and wacc) += row u of the chunk, in order
    auto add = [&](const uint4 raw, const Vec<VEC>& v, float w) {
        Vec<VEC> xv;
        if constexpr (VEC == 8) {
            xv = unpack8<T>(raw);
        } else {
            xv = v;
        }
        if constexpr (WEIGHTED) {
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
                acc[e] = __fadd_rn(acc[e], __fmul_rn(xv.v[e], w));  // c += x * w
            }
            wacc = __fadd_rn(wacc, w);
        } else {
#pragma unroll
            for (int e = 0; e < VEC; ++e) acc[e] += xv.v[e];
        }
    };

    // keys and ids of the first batch of G sorted positions (lane l: base + l);
    // each later batch's are loaded while the one before it is added, so the
    // x rows of a batch never wait behind their ids
    uint32_t next_key = 0u;
    int32_t next_id = 0;
    if (lane < p1 - p0) {
        p.sorted.get(p0 + lane, next_key, next_id);
    }
    for (int32_t base = p0; base < p1; base += G) {
        const int cnt = int(p1 - base < G ? p1 - base : G);
        const uint32_t my_key = next_key;
        const bool in = lane < cnt;
        const bool my_use = in && p.ks.summed(my_key);
        // the lane's point, -1: not summed (reads as +0.0)
        const int32_t my_row = my_use ? next_id : -1;
        float my_w = 1.0f;
        if constexpr (WEIGHTED) {
            my_w = my_use ? p.weights[next_id] : 1.0f;
        }
        // bit j: position base + j starts a run (its key differs from the
        // one before it, the key of the run going on at lane 0)
        const uint32_t prev = __shfl_up_sync(gmask, my_key, 1, G);
        const bool starts = in && my_key != (lane == 0 ? cur : prev);
        const uint32_t bounds = __ballot_sync(gmask, starts) >> shift;
        for (int j0 = 0; j0 < cnt; j0 += ROWS) {
            // issue the loads of up to ROWS rows first (memory-level parallelism) ...
            Vec<VEC> v[VEC == 8 ? 1 : ROWS];
            uint4 raw[VEC == 8 ? ROWS : 1];  // VEC 8: packed fp16/bf16 rows
#pragma unroll
            for (int u = 0; u < ROWS; ++u) {
                const int32_t row = __shfl_sync(gmask, my_row, (j0 + u) & (G - 1), G);
                const bool use = row >= 0 && col_ok;  // row = -1 past cnt too
                const int64_t off = int64_t(row) * d32;
                if constexpr (VEC == 8 && ONCE) {
                    raw[u] = load_once16(xcol + off, use);  // not used: +0.0 x 8
                } else if constexpr (VEC == 8) {
                    raw[u] = use ? *reinterpret_cast<const uint4*>(xcol + off)
                                 : make_uint4(0, 0, 0, 0);
                } else if constexpr (VEC == 4 && sizeof(T) == 4 && ONCE) {
                    const uint4 w = load_once16(xcol + off, use);
                    v[u].v[0] = __uint_as_float(w.x);
                    v[u].v[1] = __uint_as_float(w.y);
                    v[u].v[2] = __uint_as_float(w.z);
                    v[u].v[3] = __uint_as_float(w.w);
                } else if (use) {
                    v[u] = load_vec<T, VEC>(xcol + off);
                } else {
#pragma unroll
                    for (int e = 0; e < VEC; ++e) v[u].v[e] = 0.0f;
                }
            }
            if (j0 == 0 && base + G < p1) {
                // ... the next batch's keys and ids behind them ...
                const int32_t at = base + G + lane;
                next_key = 0u;
                next_id = 0;
                if (at < p1) {
                    p.sorted.get(at, next_key, next_id);
                }
            }
            // ... then add them in sorted order (the order fixes the rounding)
            const uint32_t chunk_bounds = (bounds >> j0) & ((1u << ROWS) - 1u);
            if (chunk_bounds == 0 && j0 + ROWS <= cnt) {
                // the run going on covers the whole chunk
#pragma unroll
                for (int u = 0; u < ROWS; ++u) {
                    const float w = WEIGHTED ? __shfl_sync(gmask, my_w, j0 + u, G) : 1.0f;
                    add(raw[VEC == 8 ? u : 0], v[VEC == 8 ? 0 : u], w);
                }
            } else {
#pragma unroll
                for (int u = 0; u < ROWS; ++u) {
                    if (j0 + u < cnt) {  // uniform across the group
                        if ((chunk_bounds >> u) & 1u) {
                            flush(cur, run_start, base + j0 + u);
                            cur = __shfl_sync(gmask, my_key, j0 + u, G);
                            run_start = base + j0 + u;
#pragma unroll
                            for (int e = 0; e < VEC; ++e) acc[e] = 0.0f;
                            wacc = 0.0f;
                        }
                        const float w = WEIGHTED ? __shfl_sync(gmask, my_w, j0 + u, G) : 1.0f;
                        add(raw[VEC == 8 ? u : 0], v[VEC == 8 ? 0 : u], w);
                    }
                }
            }
        }
    }
    flush(cur, run_start, p1);
}

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

// ------------------------------------------------------------------ variants
//
// Shapes of the reduce step for tuning on the GPU, picked by the variant
// `update` (flashkmeans/variants.h; "": "default"). The sweep shapes are
// compiled only with -DFLASHKMEANS_TUNING=ON; "sort8" and "pairs" always
// (tests run them against the default). The reduce is bound by
// memory latency, not bandwidth: each group walks its piece one batch of rows
// after another, so the time is (rows per group / rows in flight) load
// latencies, and the fix is more groups (shorter pieces) with more rows in
// flight each. A variant sets:
// - rows: rows in flight per group: 16 (a whole batch of a half-warp, 2
//   blocks per SM), 8 (3 blocks per SM), or 0 = 16 when the pieces were
//   shortened (small n: latency-bound, rows in flight per group matter) and
//   8 at the longest pieces (large n: several waves of blocks, more warps per
//   SM matter). H200, 2026-11-21: 16 rows 0.179 vs 8 rows 0.197 ms at 1M x 128
//   fp16 (128-point pieces); 0.926 vs 0.862 ms at 8M, 0.583 vs 0.539 at
//   1M x 768 (256-point pieces);
// - target: the pieces x column blocks a problem is cut into (at least 32 and
//   at most max_piece points per piece);
// - v8: fp16/bf16 with d % 8 == 0 and 16-byte aligned x: a half-warp per
//   piece, 16-byte loads of 8 elements (16 lanes x 8 = 128 columns, the
//   combine's column block); otherwise a warp, 4 elements per lane (fp32: 16
//   bytes) or 1 (d % 4 != 0);
// - sort6: the radix sort's smaller digits where they make no extra pass
//   (DigitSort); "sort8" keeps CUB's 8-bit tuning everywhere, for A/B runs;
// - pack: key and point id in one word when their bits fit in 32 (Plan);
//   "pairs" sorts (key, id) pairs always, for A/B runs.
// Variants with the same piece length give bitwise the same sums (each column
// adds the same rows in the same order); the length changes only how cut
// clusters are combined, never the run-to-run bits.
struct UpdateVariant {
    const char* name;
    int rows;
    int64_t target;
    int64_t max_piece;
    bool v8;
    int64_t min_piece;  // points per piece, at least
    bool sort6 = true;  // smaller sort digits where they make no extra pass (DigitSort)
    bool pack = true;   // key and point in one word where they fit
};

const UpdateVariant kUpdateVariants[] = {
        {"default", 0, 8192, 256, true, 128},
        {"sort8", 0, 8192, 256, true, 128, false},
        {"pairs", 0, 8192, 256, true, 128, true, false},
#ifdef FLASHKMEANS_TUNING
        {"r16", 16, 8192, 256, true, 128},
        {"r8", 8, 8192, 256, true, 128},
        {"t16384", 0, 16384, 256, true, 128},
        {"m512", 0, 8192, 512, true, 128},
        {"w4", 0, 8192, 256, false, 128},  // a warp per piece, 8-byte fp16 loads
        {"s32", 0, 8192, 256, true, 32},
        {"s64", 0, 8192, 256, true, 64},
#endif
};

const UpdateVariant& update_variant(const kernels::Variants* v) {
    return variant_by_name("update", kernels::variants_or_default(v).update, kUpdateVariants);
}

bool small_digits(const UpdateVariant& uv) { return uv.sort6; }

int sort_digit_bits(int bits, bool sort6) {
    if (!sort6 || bits <= 8) {
        return 8;
    }
    const int passes = (bits + 7) / 8;  // CUB's, with 8-bit digits
    // the smallest digit making as many passes, at least 6 (DigitSort)
    return std::max(6, (bits + passes - 1) / passes);
}

bool pack_keys(const UpdateVariant& uv) { return uv.pack; }

template <typename T, int VEC, int G, int ROWS, int MINB, bool ONCE>
void launch_reduce(dim3 grid, const ReduceParams& rp, cudaStream_t stream) {
    if (rp.weights != nullptr) {
        launch_after(segment_reduce_kernel<T, VEC, G, ROWS, MINB, true, ONCE>, grid,
                     kReduceWarps * 32, 0, stream, rp);
    } else {
        launch_after(segment_reduce_kernel<T, VEC, G, ROWS, MINB, false, ONCE>, grid,
                     kReduceWarps * 32, 0, stream, rp);
    }
}

/// Points per piece for problems of n points of dimension d: long enough to
/// keep the partial rows few (2 per piece), short enough that a problem makes
/// ~target groups (pieces x 128-column blocks) to fill the GPU: 100000 points
/// in 256-point pieces made 22 blocks (123 us for 25 MB). At least 128
/// points: 32 (s32) filled the GPU better for one small problem, but a batch
/// of small problems (32 x 65536, where the GPU is full anyway) then cuts
/// every cluster into many pieces: with CUDA graphs, H200, same binary,
/// 128 against 32 gives 32 x 65536 x 1024 1.420 vs 1.460 ms per iteration,
/// 100000 x 100 0.103-0.110 vs 0.095 (bench/results/2026-11-21-h200-session11 at 91e0225).
/// A function of n, d and the variant only, never of the batch: a batch
/// keeps the bits of separate calls.
int64_t piece_len(int64_t n, int64_t d, const UpdateVariant& uv) {
    const int64_t col_blocks = (d + 127) / 128;
    const int64_t fill = ((n * col_blocks + uv.target - 1) / uv.target + 31) / 32 * 32;
    return std::min(uv.max_piece, std::max(uv.min_piece, fill));
}

unsigned grid_1d(int64_t items, int threads) {
    const int64_t blocks = (items + threads - 1) / threads;
    return unsigned(blocks < (int64_t(1) << 20) ? (blocks > 0 ? blocks : 1) : (int64_t(1) << 20));
}

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
    constexpr int kThreads = 256;

    SortedPoints sorted{nullptr, nullptr, plan.shift};
    char* free_region = nullptr;  // 2 buf_bytes, free after the sort
    if (m > 0) {
        auto* keys0 = reinterpret_cast<uint32_t*>(ws + plan.off_keys0);
        auto* ids0 = plan.packed ? nullptr : reinterpret_cast<int32_t*>(ws + plan.off_ids0);
        auto* keys1 = reinterpret_cast<uint32_t*>(ws + plan.off_keys1);
        auto* ids1 = reinterpret_cast<int32_t*>(ws + plan.off_ids1);
        const unsigned kgrid = grid_1d((m + 3) / 4, kThreads);
        const auto zero_words = uint32_t(zero_bytes / sizeof(int32_t));
        if (reinterpret_cast<uintptr_t>(labels) % 16 == 0) {
            make_keys_kernel<true><<<kgrid, kThreads, 0, stream>>>(
                    labels, ks, uint32_t(m), plan.shift, keys0, ids0, seg_start, zero_words);
        } else {
            make_keys_kernel<false><<<kgrid, kThreads, 0, stream>>>(
                    labels, ks, uint32_t(m), plan.shift, keys0, ids0, seg_start, zero_words);
        }
        FK_CUDA_CHECK(cudaGetLastError());
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
        launch_after(segment_bounds_kernel, kgrid, kThreads, 0, stream,
                     static_cast<const uint32_t*>(sorted.keys), plan.shift, uint32_t(m), seg_start,
                     seg_end);
    }
    launch_after(cluster_info_kernel, grid_1d(nb * k, kThreads), kThreads, 0, stream,
                 static_cast<const int32_t*>(seg_start), static_cast<const int32_t*>(seg_end), ks,
                 nb * k, d, weights != nullptr, sums, weight_sums, counts);
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
    // 16 rows in flight at 2 blocks per SM, or 8 at 3 (see the variants);
    // the 16-row shapes read x with load_once16 (see the reduce kernel)
    const bool r8 = uv.rows == 8 || (uv.rows == 0 && pieces.len == uv.max_piece);
    if (v8) {
        if constexpr (sizeof(T) == 2) {
            if (r8) {
                launch_reduce<T, 8, 16, 8, 3, false>(rgrid, rp, stream);
            } else {
                launch_reduce<T, 8, 16, 16, 2, true>(rgrid, rp, stream);
            }
        }
    } else if (vec4) {
        if (r8) {
            launch_reduce<T, 4, 32, 8, 3, false>(rgrid, rp, stream);
        } else {
            launch_reduce<T, 4, 32, 16, 2, true>(rgrid, rp, stream);
        }
    } else {
        launch_reduce<T, 1, 32, 16, 2, false>(rgrid, rp, stream);
    }
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
        int device = 0, sms = 0;
        FK_CUDA_CHECK(cudaGetDevice(&device));
        FK_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        // the list lengths stay on the device: a persistent grid loops over
        // them (at most one finisher per two pieces, one warp each; a long
        // cluster takes a block, and there are at most n_pieces / 33)
        const int64_t short_blocks = ((n_pieces + 1) / 2 + kCombineWarps - 1) / kCombineWarps;
        const int64_t long_blocks =
                pieces.per_problem > kShortPieces ? n_pieces / (kShortPieces + 1) : 0;
        const int64_t blocks = std::min<int64_t>(std::max<int64_t>({1, short_blocks, long_blocks}),
                                                 std::max(1, 2 * sms));
        const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(col_blocks));
        if (vec4) {
            launch_after(segment_combine_kernel<4>, grid, kCombineWarps * 32, 0, stream, cp);
        } else {
            launch_after(segment_combine_kernel<1>, grid, kCombineWarps * 32, 0, stream, cp);
        }
    }
}

} // namespace

size_t update_workspace_bytes(int64_t n, int64_t d, int64_t k, int64_t batch) {
    return make_plan(n, d, k, batch, update_variant(nullptr)).total;
}

void sort_inverse_update(const Place& place, const kernels::UpdateArgs& a) {
    DeviceGuard guard(place.device);
    const cudaStream_t stream = stream_of(place);
    const Plan plan = make_plan(a.n, a.d, a.k, a.batch, update_variant(a.variants));
    char* ws = static_cast<char*>(a.workspace);
    if (ws != nullptr && a.workspace_bytes < plan.total) {
        throw KernelError("flashkmeans: sort_inverse_update: workspace of " +
                          std::to_string(a.workspace_bytes) + " bytes is too small; need " +
                          std::to_string(plan.total) + " (update_workspace_bytes)");
    }
    if (ws != nullptr && reinterpret_cast<uintptr_t>(ws) % 256 != 0) {
        throw KernelError("flashkmeans: sort_inverse_update: the workspace must be 256-byte aligned");
    }
    ScopedDeviceBuffer owned(ws == nullptr ? plan.total : 0, stream);
    if (ws == nullptr) {
        ws = static_cast<char*>(owned.get());
    }
    dispatch_dtype(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        for (int64_t b0 = 0; b0 < a.batch; b0 += plan.nb) {
            const int64_t nb = std::min<int64_t>(plan.nb, a.batch - b0);
            run_pass<T>(a, plan, b0, nb, ws, stream);
        }
    });
}

} // namespace cuda
} // namespace flashkmeans
