// Exact pruning's moved-centroid filter (CPU), the steps around FlashAssign
// (engine/moved_filter.h): the same rules as kernels/cuda/moved_filter.cu,
// so the engine's filter runs and is tested on either place.
#include "cpu_kernels.h"

#include "../moved_merge.h"

#include <cmath>
#include <cstring>

namespace flashkmeans {
namespace cpu {

void rows_differ(const void* a, const void* b, int64_t rows, size_t row_bytes, uint8_t* flags) {
    const auto* pa = static_cast<const uint8_t*>(a);
    const auto* pb = static_cast<const uint8_t*>(b);
    for (int64_t j = 0; j < rows; j++) {
        flags[j] = std::memcmp(pa + j * row_bytes, pb + j * row_bytes, row_bytes) != 0;
    }
}

int64_t select_ids(const uint8_t* flags, const int32_t* labels, int64_t count, int32_t* ids) {
    int64_t m = 0;
    for (int64_t i = 0; i < count; i++) {
        const bool take = labels ? (labels[i] < 0 || flags[labels[i]]) : flags[i] != 0;
        if (take) {
            ids[m++] = int32_t(i);
        }
    }
    return m;
}

void gather_rows_by_id(const void* x, size_t row_bytes, const int32_t* ids, int64_t m, void* out) {
    for (int64_t r = 0; r < m; r++) {
        std::memcpy(static_cast<uint8_t*>(out) + r * row_bytes,
                    static_cast<const uint8_t*>(x) + int64_t(ids[r]) * row_bytes, row_bytes);
    }
}

int64_t merge_moved(bool l2, int64_t n, const uint8_t* flags, const int32_t* ids,
                    const int32_t* cand_labels, const float* cand_distances, const float* x_norms,
                    const float* c_norms, double rel_tol, int32_t* labels, float* distances) {
    int64_t near_ties = 0;
    for (int64_t i = 0; i < n; i++) {
        const int32_t own = labels[i];
        if (own < 0 || flags[own] || cand_labels[i] < 0) {
            continue; // assigned in full elsewhere
        }
        const int32_t cand = ids[cand_labels[i]];
        const float d_own = distances[i], d_cand = cand_distances[i];
        near_ties += moved_merge::near_tie(rel_tol, x_norms[i], c_norms[own], c_norms[cand], d_own,
                                           d_cand);
        if (moved_merge::candidate_wins(l2, own, d_own, cand, d_cand)) {
            labels[i] = cand;
            distances[i] = d_cand;
        }
    }
    return near_ties;
}

void scatter_assignment(const int32_t* ids, int64_t m, const int32_t* l, const float* dist,
                        int32_t* labels, float* distances) {
    for (int64_t r = 0; r < m; r++) {
        labels[ids[r]] = l[r];
        distances[ids[r]] = dist[r];
    }
}

} // namespace cpu
} // namespace flashkmeans
