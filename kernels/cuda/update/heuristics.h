// The update's configuration, chosen by rule: the variants of the reduce
// step (flashkmeans/variants.h `update`) and plain functions of the shape,
// each with its reason (heuristics.cu). Plain C++: the plan and the tests use
// it too.
#pragma once

#include <flashkmeans/variants.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

/// Shapes of the reduce step for tuning on the GPU, picked by the variant
/// `update` (flashkmeans/variants.h; "": "default"). The sweep shapes are
/// compiled only with -DFLASHKMEANS_TUNING=ON; "sort8" and "pairs" always
/// (tests run them against the default). The reduce is bound by memory
/// latency, not bandwidth: each group walks its piece one batch of rows after
/// another, so the time is (rows per group / rows in flight) load latencies,
/// and the fix is more groups (shorter pieces) with more rows in flight each.
/// Variants with the same piece length give bitwise the same sums (each
/// column adds the same rows in the same order); the length changes only how
/// cut clusters are combined, never the run-to-run bits.
struct UpdateVariant {
    const char* name;
    int rows;           // rows in flight per group: 16, 8, or 0 = by rule (reduce_rows)
    int64_t target;     // pieces x column blocks a problem is cut into (piece_len)
    int64_t max_piece;  // points per piece, at most
    /// fp16/bf16 with d % 8 == 0 and 16-byte aligned x: a half-warp per
    /// piece, 16-byte loads of 8 elements (16 lanes x 8 = 128 columns, the
    /// combine's column block); otherwise a warp, 4 elements per lane (fp32:
    /// 16 bytes) or 1 (d % 4 != 0)
    bool v8;
    int64_t min_piece;  // points per piece, at least
    /// the radix sort's smaller digits where they make no extra pass
    /// (sort_policy.cuh); "sort8" keeps CUB's 8-bit tuning everywhere, for A/B runs
    bool sort6 = true;
    /// key and point id in one word when their bits fit in 32 (Plan); "pairs"
    /// sorts (key, id) pairs always, for A/B runs
    bool pack = true;
};

/// The variant named by `v` (or the process default).
const UpdateVariant& update_variant(const kernels::Variants* v);

/// Whether the sort may use digits smaller than CUB's 8 bits.
bool small_digits(const UpdateVariant& uv);

/// Whether key and point may share one 32-bit word.
bool pack_keys(const UpdateVariant& uv);

/// Digit bits of the radix sort of `bits` key bits.
int sort_digit_bits(int bits, bool sort6);

/// Points per piece for problems of n points of dimension d.
int64_t piece_len(int64_t n, int64_t d, const UpdateVariant& uv);

/// Rows in flight per group of the reduce step (16 or 8) at this piece length.
int reduce_rows(const UpdateVariant& uv, int64_t piece);

} // namespace update
} // namespace cuda
} // namespace flashkmeans
