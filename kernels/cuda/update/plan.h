// The workspace plan of the update: how one call is cut into passes over
// groups of problems (so that keys and sorted positions fit in 32 bits), and
// where the sort's buffers, the segment bounds, the combine's lists, CUB's
// temporary storage and the partial rows live in the workspace of one pass.
// A function of n, d, k, the batch and the variant only, as
// update_workspace_bytes promises.
#pragma once

#include "heuristics.h"

#include <cstddef>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

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

Plan make_plan(int64_t n, int64_t d, int64_t k, int64_t batch, const UpdateVariant& uv);

} // namespace update
} // namespace cuda
} // namespace flashkmeans
