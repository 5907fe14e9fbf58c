#include "init.h"

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/random.h>

#include <cinttypes>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_map>
#include <vector>

namespace flashkmeans {

namespace {

/// The dense store's shuffle: perm[] of n entries of type T. The swap
/// targets depend on the draws alone, so they are drawn kAhead steps early
/// and their entries prefetched: the steps then wait on the memory a few at a
/// time, not one after another (2-3x on a 1M-point subsample).
template <class T>
void shuffle_dense(int64_t n, int64_t m, faiss::RandomGenerator& rng, int64_t* out) {
    constexpr int64_t kAhead = 64;
    std::vector<T> perm(static_cast<size_t>(n));
    std::iota(perm.begin(), perm.end(), T(0));
    int64_t target[kAhead];
    auto draw = [&](int64_t i) { // step i's swap target, in the draws' order
        if (i < m && i + 1 < n) {
            target[i % kAhead] = i + rng.rand_int(int(n - i));
            __builtin_prefetch(&perm[size_t(target[i % kAhead])], 1);
        }
    };
    for (int64_t i = 0; i < kAhead; i++) {
        draw(i);
    }
    for (int64_t i = 0; i < m; i++) {
        if (i + 1 < n) {
            const int64_t i2 = target[i % kAhead];
            const T vi = perm[size_t(i)];
            out[i] = perm[size_t(i2)];
            perm[size_t(i2)] = vi;
        } else {
            out[i] = perm[size_t(i)];
        }
        draw(i + kAhead);
    }
}

} // namespace

std::vector<int64_t> rand_perm_prefix(int64_t n, int64_t m, int64_t seed) {
    FAISS_THROW_IF_NOT_FMT(0 <= m && m <= n, "rand_perm_prefix: m = %" PRId64 " not in [0, %" PRId64 "]",
                           m, n);
    std::vector<int64_t> out(static_cast<size_t>(m));
    faiss::RandomGenerator rng(seed);
    // the same draws and swaps as faiss::rand_perm, over whichever store of
    // perm[] is cheaper (see init.h)
    if (m >= n / 64) {
        if (n <= std::numeric_limits<int32_t>::max()) {
            shuffle_dense<int32_t>(n, m, rng, out.data()); // half the memory to wait on
        } else {
            shuffle_dense<int64_t>(n, m, rng, out.data());
        }
        return out;
    }
    std::unordered_map<int64_t, int64_t> moved; // perm[j] for the j that steps changed
    moved.reserve(size_t(m));
    auto at = [&](int64_t j) {
        auto it = moved.find(j);
        return it == moved.end() ? j : it->second;
    };
    for (int64_t i = 0; i < m; i++) {
        if (i + 1 < n) {
            const int64_t i2 = i + rng.rand_int(int(n - i));
            const int64_t vi = at(i);
            out[size_t(i)] = at(i2);
            moved[i2] = vi;
        } else {
            out[size_t(i)] = at(i);
        }
    }
    return out;
}

std::vector<double> kmeanspp_draws(int64_t seed, size_t count) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0, 1);
    std::vector<double> draws(count);
    for (double& u : draws) {
        u = uniform(rng);
    }
    return draws;
}

namespace {

void init_random(Lloyd& lloyd, int64_t seed, size_t n_given, size_t k, size_t d, float* c,
                 int64_t b) {
    std::vector<int64_t> perm = rand_perm_prefix(lloyd.n(), int64_t(k), seed);
    lloyd.gather_points(b, perm.data() + n_given, int64_t(k - n_given), c + n_given * d);
}

// k-means++: each new centroid is a point drawn with probability proportional
// to its squared distance to the nearest centroid chosen so far (D^2
// sampling). The whole seeding runs on the backend (kernels::kmeanspp_init);
// the host only draws one uniform per new row from std::mt19937_64(seed),
// always k - n_given of them whatever branch the sampling takes, so row j's
// draw depends on the seed and j alone.
void init_kmeanspp(Lloyd& lloyd, int64_t seed, size_t n_given, size_t k, float* c, int64_t b) {
    const std::vector<double> draws = kmeanspp_draws(seed, k - n_given);
    lloyd.kmeanspp_init(b, int64_t(k), int64_t(n_given), draws.data(), c);
}

} // namespace

void initialize_centroids(Lloyd& lloyd, Init init, int64_t seed, size_t n_given, size_t k,
                          size_t d, float* centroids, int64_t b) {
    if (n_given >= k) {
        return;
    }
    if (init == Init::KMeansPP) {
        init_kmeanspp(lloyd, seed, n_given, k, centroids, b);
    } else {
        init_random(lloyd, seed, n_given, k, d, centroids, b);
    }
}

} // namespace flashkmeans
