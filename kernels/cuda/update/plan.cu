// The workspace plan of the update (plan.h).
#include "plan.h"

#include "radix_sort.cuh"
#include "update_kernels.cuh"

#include "../cuda_check.h"

#include <algorithm>
#include <climits>
#include <string>

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

size_t align256(size_t v) { return (v + 255) & ~size_t(255); }

} // namespace

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

} // namespace update
} // namespace cuda
} // namespace flashkmeans
