// k-means++ seeding (CPU): rows [n_given, k) of the centroids by D^2
// sampling, with the semantics stated in <flashkmeans/kernels.h>.
//
// Per new row: one parallel pass over the points (distance to the newest row,
// running minimum D, and the double sum of D per fixed block of kBlock
// points), then a sequential walk over the n / kBlock block sums and inside
// the one block where the prefix crosses r. Traffic per row: x read once
// (n d floats), D read and written once (n floats); the walk touches
// n / kBlock + kBlock values, so the only O(n) work is the parallel pass.
//
// The order of the double sums is fixed by kBlock alone (never by the thread
// count): a block's sum is its D values added in point order, the prefix of
// point i in block b is (sum of blocks < b, added in block order) + (D of the
// block's points <= i, added in point order), and total is the prefix of the
// last point. So the block where the prefix crosses r always holds the pick,
// and the result is the same on every run and thread count. The fp32 sum over
// the d coordinates of one distance is vectorised (omp simd: lanes of
// partial sums, an order fixed by the build), which is why it may round
// differently from the CUDA kernel's; on data whose distances are exact
// (small integers) every order gives the same bits.
//
// The pass (kmeanspp_add_row), the uniform pick and the rounding fallback are
// exposed through <flashkmeans/kernels.h> for the seeding across ranks
// (faiss_plugin/engine/kmeanspp_on_ranks.cpp), which walks the prefix itself.
#include "cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace flashkmeans {
namespace cpu {

namespace {
constexpr int64_t kBlock = 4096;
} // namespace

int64_t kmeanspp_block_rows() {
    return kBlock;
}

int64_t kmeanspp_uniform_pick(double u, int64_t n) {
    return std::min(n - 1, int64_t(std::floor(u * double(n))));
}

void kmeanspp_add_row(const float* x, int64_t n, int64_t d, const float* c, bool first, float* dist,
                      double* block_sums) {
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t end = std::min(n, (b + 1) * kBlock);
        double s = 0;
        for (int64_t i = b * kBlock; i < end; i++) {
            const float* xi = x + i * d;
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t t = 0; t < d; t++) {
                const float diff = xi[t] - c[t];
                acc += diff * diff;
            }
            const float v = first || acc < dist[i] ? acc : dist[i];
            dist[i] = v;
            s += v;
        }
        block_sums[b] = s;
    }
}

int64_t kmeanspp_last_positive(const float* dist, int64_t n) {
    int64_t i = n - 1;
    while (i >= 0 && !(dist[i] > 0)) {
        i--;
    }
    return i;
}

namespace {

/// The D^2 draw for uniform `u` over D = dist (n points) and its block sums
/// (see the header for the rule).
int64_t pick(const float* dist, int64_t n, const std::vector<double>& block_sums, double u) {
    double total = 0;
    for (double s : block_sums) {
        total += s;
    }
    if (!(total > 0)) {
        return kmeanspp_uniform_pick(u, n);
    }
    const double r = u * total;
    double base = 0;
    for (size_t b = 0; b < block_sums.size(); b++) {
        if (base + block_sums[b] > r) {
            const int64_t begin = int64_t(b) * kBlock, end = std::min(n, begin + kBlock);
            double local = 0;
            for (int64_t i = begin; i < end; i++) {
                local += dist[i];
                if (base + local > r && dist[i] > 0) {
                    return i;
                }
            }
            break; // not reached: local ends at block_sums[b]
        }
        base += block_sums[b];
    }
    // rounding put r at or past the last prefix (total > 0: some D > 0)
    return kmeanspp_last_positive(dist, n);
}

} // namespace

void kmeanspp_init(const kernels::KMeansPPArgs& a) {
    const float* x = static_cast<const float*>(a.x);
    const int64_t n = a.n, d = a.d;
    std::vector<float> dist(static_cast<size_t>(n));
    std::vector<double> block_sums(size_t((n + kBlock - 1) / kBlock));
    int64_t j = a.n_given;
    if (j == 0) {
        const int64_t p = kmeanspp_uniform_pick(a.draws[0], n);
        std::copy(x + p * d, x + (p + 1) * d, a.centroids);
        if (a.picked) {
            a.picked[0] = p;
        }
        j = 1;
    }
    for (int64_t g = 0; g < j; g++) {
        kmeanspp_add_row(x, n, d, a.centroids + g * d, g == 0, dist.data(), block_sums.data());
    }
    for (; j < a.k; j++) {
        const int64_t p = pick(dist.data(), n, block_sums, a.draws[j - a.n_given]);
        std::copy(x + p * d, x + (p + 1) * d, a.centroids + j * d);
        if (a.picked) {
            a.picked[j - a.n_given] = p;
        }
        if (j + 1 < a.k) {
            kmeanspp_add_row(x, n, d, a.centroids + j * d, false, dist.data(), block_sums.data());
        }
    }
}

} // namespace cpu
} // namespace flashkmeans
