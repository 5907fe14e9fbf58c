// The update's configuration by rule (heuristics.h): the variants table and
// the functions of the shape, each with its reason.
#include "heuristics.h"

#include "../tuning_variant.h"

#include <algorithm>

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

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

} // namespace

const UpdateVariant& update_variant(const kernels::Variants* v) {
    return variant_by_name("update", kernels::variants_or_default(v).update, kUpdateVariants);
}

bool small_digits(const UpdateVariant& uv) { return uv.sort6; }

/// The smallest digit that keeps CUB's number of passes, at least 6: 6 for
/// 9-12 bits, 7 for 13-14 (k = 4096 with its sentinel label is 13 bits), 6
/// for 17-18, 7 for 19-21, CUB's own 8 for 22-24 (why: sort_policy.cuh).
int sort_digit_bits(int bits, bool sort6) {
    if (!sort6 || bits <= 8) {
        return 8;
    }
    const int passes = (bits + 7) / 8;  // CUB's, with 8-bit digits
    // the smallest digit making as many passes, at least 6 (DigitSort)
    return std::max(6, (bits + passes - 1) / passes);
}

bool pack_keys(const UpdateVariant& uv) { return uv.pack; }

/// Long enough to keep the partial rows few (2 per piece), short enough that
/// a problem makes ~target groups (pieces x 128-column blocks) to fill the
/// GPU: 100000 points in 256-point pieces made 22 blocks (123 us for 25 MB).
/// At least 128 points: 32 (s32) fills the GPU better for one small problem,
/// but a batch of small problems (32 x 65536, where the GPU is full anyway)
/// then cuts every cluster into many pieces (H200 with CUDA graphs, 128
/// against 32: 32 x 65536 x 1024 1.420 vs 1.460 ms per iteration; 100000 x
/// 100 0.103-0.110 vs 0.095). A function of n, d and the variant only, never
/// of the batch: a batch keeps the bits of separate calls.
int64_t piece_len(int64_t n, int64_t d, const UpdateVariant& uv) {
    const int64_t col_blocks = (d + 127) / 128;
    const int64_t fill = ((n * col_blocks + uv.target - 1) / uv.target + 31) / 32 * 32;
    return std::min(uv.max_piece, std::max(uv.min_piece, fill));
}

/// 16 rows (a whole batch of a half-warp, 2 blocks per SM) when the pieces
/// were shortened (small n: latency-bound, rows in flight per group matter),
/// 8 (3 blocks per SM) at the longest pieces (large n: several waves of
/// blocks, more warps per SM matter). H200, 16 vs 8 rows: 0.179 vs 0.197 ms
/// at 1M x 128 fp16 (128-point pieces); 0.926 vs 0.862 ms at 8M, 0.583 vs
/// 0.539 at 1M x 768 (256-point pieces).
int reduce_rows(const UpdateVariant& uv, int64_t piece) {
    const bool r8 = uv.rows == 8 || (uv.rows == 0 && piece == uv.max_piece);
    return r8 ? 8 : 16;
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
