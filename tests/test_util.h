// Helpers shared by the C++ tests: random data (never zeros) and float64
// references that the fast kernels are checked against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace fk_test {

/// n x d values uniform in [-1, 1) plus a per-row offset so rows differ.
inline std::vector<float> random_matrix(int64_t n, int64_t d, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> x(n * d);
    for (auto& v : x) {
        v = u(rng);
    }
    return x;
}

/// Points drawn around `k` well-separated centres (a Gaussian mixture).
inline std::vector<float> blobs(int64_t n, int64_t d, int64_t k, uint64_t seed, float spread = 0.1f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.f, 1.f);
    std::vector<float> centres(k * d);
    for (auto& v : centres) {
        v = 4.f * g(rng);
    }
    std::vector<float> x(n * d);
    std::uniform_int_distribution<int64_t> pick(0, k - 1);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = pick(rng);
        for (int64_t j = 0; j < d; j++) {
            x[i * d + j] = centres[c * d + j] + spread * g(rng);
        }
    }
    return x;
}

inline std::vector<float> random_weights(int64_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(0.1f, 2.f);
    std::vector<float> w(n);
    for (auto& v : w) {
        v = u(rng);
    }
    return w;
}

/// float64 brute-force assignment: for each point, the best centroid and the
/// gap between the best and second-best score (relative to the best's
/// magnitude), so tests can excuse true near-ties.
struct RefAssign {
    std::vector<int32_t> labels;
    std::vector<double> best;    ///< squared distance (L2) or inner product (IP)
    std::vector<double> rel_gap; ///< |second - best| / max(|best|, tiny)
};

inline RefAssign reference_assign(const float* x, int64_t n, const float* c, int64_t k, int64_t d,
                                  bool inner_product = false) {
    RefAssign r;
    r.labels.resize(n);
    r.best.resize(n);
    r.rel_gap.resize(n);
    for (int64_t i = 0; i < n; i++) {
        double best = std::numeric_limits<double>::infinity(), second = best;
        int32_t arg = -1;
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t t = 0; t < d; t++) {
                double xv = x[i * d + t], cv = c[j * d + t];
                s += inner_product ? -xv * cv : (xv - cv) * (xv - cv);
            }
            if (s < best) {
                second = best;
                best = s;
                arg = int32_t(j);
            } else if (s < second) {
                second = s;
            }
        }
        r.labels[i] = arg;
        r.best[i] = inner_product ? -best : best;
        // the scale of the terms being compared: norms, not just the result,
        // bound the fp32 cancellation error
        double scale = 0;
        for (int64_t t = 0; t < d; t++) {
            scale += double(x[i * d + t]) * x[i * d + t];
        }
        scale += std::fabs(best) + 1e-30;
        r.rel_gap[i] = k > 1 ? (second - best) / scale : 1.0;
    }
    return r;
}

} // namespace fk_test
