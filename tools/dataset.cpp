// The built-in Gaussian mixture and the centre-recovery measure.
#include "dataset.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

namespace flashkmeans {
namespace dataset {

namespace {

/// Standard normal pairs by Box-Muller from a standard-fixed engine.
struct Normal {
    std::mt19937_64 rng;
    double spare = 0;
    bool has_spare = false;

    explicit Normal(uint64_t seed) : rng(seed) {}

    double uniform_open0() { // (0, 1]
        return (double(rng() >> 11) + 1.0) * 0x1.0p-53;
    }
    double operator()() {
        if (has_spare) {
            has_spare = false;
            return spare;
        }
        const double r = std::sqrt(-2.0 * std::log(uniform_open0()));
        const double t = 2.0 * M_PI * (double(rng() >> 11) * 0x1.0p-53);
        spare = r * std::sin(t);
        has_spare = true;
        return r * std::cos(t);
    }
    /// uniform in [0, m)
    int64_t below(int64_t m) {
        return int64_t((unsigned __int128)rng() * uint64_t(m) >> 64);
    }
};

double dist2(const float* a, const float* b, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
        const double t = double(a[j]) - double(b[j]);
        s += t * t;
    }
    return s;
}

} // namespace

Mixture make_mixture(const MixtureParams& params) {
    if (params.n <= 0 || params.d <= 0 || params.centers <= 0) {
        throw std::invalid_argument("built-in dataset: n, d and the number of centres must be > 0 (got n=" +
                                    std::to_string(params.n) + ", d=" + std::to_string(params.d) +
                                    ", centers=" + std::to_string(params.centers) + ")");
    }
    if (params.n > (int64_t(1) << 40) / params.d) {
        throw std::invalid_argument("built-in dataset: n x d = " + std::to_string(params.n) + " x " +
                                    std::to_string(params.d) + " is too large to generate");
    }
    Mixture m;
    m.params = params;
    const int64_t n = params.n, d = params.d, c = params.centers;
    Normal g(params.seed);
    m.centres.resize(size_t(c * d));
    for (auto& v : m.centres) {
        v = float(params.center_std * g());
    }
    m.x.resize(size_t(n * d));
    m.component.resize(size_t(n));
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = g.below(c);
        m.component[size_t(i)] = int32_t(j);
        const float* centre = m.centres.data() + j * d;
        float* xi = m.x.data() + i * d;
        for (int64_t t = 0; t < d; t++) {
            xi[t] = centre[t] + float(params.noise_std * g());
        }
    }
    return m;
}

Recovery evaluate_recovery(const Mixture& mixture, const float* centroids, int64_t k) {
    const int64_t c = mixture.params.centers, d = mixture.params.d;
    const float* centres = mixture.centres.data();
    Recovery r;
    r.centers = c;
    r.noise_radius = double(mixture.params.noise_std) * std::sqrt(double(d));
    double min_gap2 = std::numeric_limits<double>::infinity();
    for (int64_t a = 0; a < c; a++) {
        for (int64_t b = a + 1; b < c; b++) {
            min_gap2 = std::min(min_gap2, dist2(centres + a * d, centres + b * d, d));
        }
    }
    // with a single true centre there is no gap: use the noise scale instead
    r.match_radius = c > 1 ? 0.25 * std::sqrt(min_gap2) : r.noise_radius;
    if (k <= 0) {
        return r;
    }
    double sum = 0;
    for (int64_t a = 0; a < c; a++) {
        double best = std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < k; j++) {
            best = std::min(best, dist2(centres + a * d, centroids + j * d, d));
        }
        const double dist = std::sqrt(best);
        sum += dist;
        r.max_distance = std::max(r.max_distance, dist);
        if (dist <= r.match_radius) {
            r.matched++;
        }
    }
    r.mean_distance = sum / double(c);
    return r;
}

} // namespace dataset
} // namespace flashkmeans
