// Helpers shared by the C++ tests: random data (never zeros) and float64
// references that the fast kernels are checked against.
#pragma once

#include <flashkmeans/variants.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
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

/// m uniforms in [0, 1) from std::mt19937_64(seed), as the engine draws
/// k-means++'s.
inline std::vector<double> uniform_draws(int64_t m, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<double> v(m);
    for (auto& x : v) {
        x = u(rng);
    }
    return v;
}

/// n x d integers in [-8, 8]: exact in fp32, fp16 and bf16, and so are their
/// squared distances and the double sums of those, in any order.
inline std::vector<float> small_ints(int64_t n, int64_t d, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> u(-8, 8);
    std::vector<float> x(n * d);
    for (auto& v : x) {
        v = float(u(rng));
    }
    return x;
}

/// ||row||^2 of a d-vector, summed in float64 (what the norm kernels are
/// checked against).
inline double norm2_f64(const float* row, int64_t d) {
    double s = 0;
    for (int64_t t = 0; t < d; t++) {
        s += double(row[t]) * row[t];
    }
    return s;
}

/// Seeding output check: the first row j >= n_given of `centroids` (k x d)
/// that is not bitwise x[picks[j - n_given]], or -1 when every one is.
inline int64_t first_row_not_its_pick(const std::vector<float>& centroids,
                                      const std::vector<float>& x, int64_t d, int64_t n_given,
                                      const std::vector<int64_t>& picks) {
    for (size_t t = 0; t < picks.size(); t++) {
        if (std::memcmp(centroids.data() + (n_given + t) * d, x.data() + picks[t] * d,
                        sizeof(float) * d) != 0) {
            return n_given + int64_t(t);
        }
    }
    return -1;
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
        const double scale = norm2_f64(x + i * d, d) + std::fabs(best) + 1e-30;
        r.rel_gap[i] = k > 1 ? (second - best) / scale : 1.0;
    }
    return r;
}

/// Sets an environment variable for one scope (the code under test reads it
/// when it runs).
/// The bit pattern of a float, for bitwise comparisons with a readable failure.
inline uint32_t float_bits(float v) {
    uint32_t u;
    std::memcpy(&u, &v, sizeof(u));
    return u;
}

/// Sets one field of the process's default kernel variants
/// (flashkmeans/variants.h) for a scope: the code path every call in it
/// takes unless its arguments name variants of their own.
class ScopedVariant {
   public:
    using Field = const char* flashkmeans::kernels::Variants::*;
    ScopedVariant(Field field, const char* value)
        : old_(flashkmeans::kernels::default_variants()) {
        flashkmeans::kernels::Variants v = old_;
        v.*field = value;
        flashkmeans::kernels::set_default_variants(v);
    }
    ~ScopedVariant() { flashkmeans::kernels::set_default_variants(old_); }
    ScopedVariant(const ScopedVariant&) = delete;
    ScopedVariant& operator=(const ScopedVariant&) = delete;

   private:
    flashkmeans::kernels::Variants old_;
};

/// Largest |a - b| over the largest |b|: relative difference of two arrays.
inline double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
        num = std::max(num, double(std::fabs(a[i] - b[i])));
        den = std::max(den, double(std::fabs(b[i])));
    }
    return num / std::max(den, 1e-30);
}

} // namespace fk_test
