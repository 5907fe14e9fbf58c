// Sort-inverse update (CPU): for each cluster j >= k_begin, sums[j] = sum of
// w_i x_i and weight_sums[j] = sum of w_i over the points labelled j; counts[j]
// = number of points labelled j (every j, frozen ones included, since it is
// the assignment histogram).
//
// Why this shape: a counting sort (histogram, exclusive scan, stable scatter)
// turns the labels into one contiguous, ascending run of point ids per
// cluster. Each cluster is then reduced by one thread with no atomics and no
// per-thread partial sums, so the result does not depend on the thread count.
// Adding the points of a cluster in increasing index order, in float, with
// FAISS's exact expressions (`c += x` or `c += x * w`; `hassign += 1` or `+= w`)
// makes the sums bitwise equal to faiss compute_centroids, which walks the
// points in that same order. Memory traffic: n labels twice, n*d floats once.
// Accumulating (points streamed in chunks), each cluster's sum goes on from
// where the previous chunk left it, so chunks in index order add the same
// terms in the same order as one call: bitwise the same sums.
#include "cpu_kernels.h"

#include <algorithm>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cpu {

namespace {

// FAISS's compute_centroids is compiled without FMA contraction; fusing
// `c + x * w` into one rounding would break bitwise equality with it when this
// file is built with -march flags that enable FMA.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

/// Reduces one cluster's points (ids ascending) into sum (d floats) and
/// returns the weight sum, in FAISS's order and rounding, starting from zero
/// or, accumulating, from `sum` and `hassign` as an earlier chunk left them:
/// the same additions in the same order as one call over both chunks.
float reduce_segment(const float* x, int64_t d, const int32_t* ids, int64_t count,
                     const float* weights, float* sum, bool accumulate, float hassign) {
    if (!accumulate) {
        std::fill(sum, sum + d, 0.0f);
        hassign = 0.0f;
    }
    if (weights) {
        for (int64_t p = 0; p < count; p++) {
            const int64_t i = ids[p];
            const float* xi = x + i * d;
            const float w = weights[i];
            hassign += w;
            for (int64_t t = 0; t < d; t++) {
                sum[t] += xi[t] * w;
            }
        }
    } else {
        for (int64_t p = 0; p < count; p++) {
            const float* xi = x + int64_t(ids[p]) * d;
            hassign += 1.0;
            for (int64_t t = 0; t < d; t++) {
                sum[t] += xi[t];
            }
        }
    }
    return hassign;
}

#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

void update_one(const kernels::UpdateArgs& a, int64_t b, std::vector<int64_t>& offsets,
                std::vector<int32_t>& order) {
    const int64_t n = a.n, d = a.d, k = a.k;
    const float* x = static_cast<const float*>(a.x) + b * n * d;
    const int32_t* labels = a.labels + b * n;
    const float* weights = a.weights ? a.weights + b * n : nullptr;
    float* sums = a.sums + b * k * d;
    float* weight_sums = a.weight_sums + b * k;

    // histogram -> exclusive scan -> stable scatter (ids ascending per cluster)
    std::fill(offsets.begin(), offsets.end(), 0);
    for (int64_t i = 0; i < n; i++) {
        const int32_t l = labels[i];
        if (l < 0 || l >= k) {
            // labels are data, not checked by dispatch; a bad one would write
            // out of bounds below
            throw KernelError("flashkmeans kernels: sort_inverse_update: label " +
                              std::to_string(l) + " of point " + std::to_string(i) +
                              " is out of range [0, " + std::to_string(k) + ")");
        }
        offsets[l + 1]++;
    }
    if (a.counts) {
        int32_t* counts = a.counts + b * k;
        for (int64_t j = 0; j < k; j++) {
            counts[j] = int32_t(offsets[j + 1]) + (a.accumulate ? counts[j] : 0);
        }
    }
    for (int64_t j = 0; j < k; j++) {
        offsets[j + 1] += offsets[j];
    }
    {
        std::vector<int64_t> cursor(offsets.begin(), offsets.end() - 1);
        for (int64_t i = 0; i < n; i++) {
            order[cursor[labels[i]]++] = int32_t(i);
        }
    }

    // one cluster per task; dynamic because cluster sizes are skewed
#pragma omp parallel for schedule(dynamic, 16) if (n * d > (int64_t(1) << 15))
    for (int64_t j = a.k_begin; j < k; j++) {
        weight_sums[j] = reduce_segment(x, d, order.data() + offsets[j],
                                        offsets[j + 1] - offsets[j], weights, sums + j * d,
                                        a.accumulate, a.accumulate ? weight_sums[j] : 0.0f);
    }
}

} // namespace

void sort_inverse_update(const kernels::UpdateArgs& a) {
    std::vector<int64_t> offsets(a.k + 1);
    std::vector<int32_t> order(a.n);
    for (int64_t b = 0; b < a.batch; b++) {
        update_one(a, b, offsets, order);
    }
}

} // namespace cpu
} // namespace flashkmeans
