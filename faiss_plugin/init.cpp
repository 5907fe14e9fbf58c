#include "init.h"

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/random.h>

#include <random>
#include <vector>

namespace flashkmeans {

namespace {

void init_random(Lloyd& lloyd, int64_t seed, size_t n_given, size_t k, size_t d, float* c,
                 int64_t b) {
    std::vector<int> perm(lloyd.n());
    faiss::rand_perm(perm.data(), lloyd.n(), seed);
    std::vector<int64_t> ids(perm.begin() + n_given, perm.begin() + k);
    lloyd.gather_points(b, ids.data(), ids.size(), c + n_given * d);
}

// k-means++: each new centroid is a point drawn with probability proportional
// to its squared distance to the nearest centroid chosen so far (D^2
// sampling). The whole seeding runs on the backend (kernels::kmeanspp_init);
// the host only draws one uniform per new row from std::mt19937_64(seed),
// always k - n_given of them whatever branch the sampling takes, so row j's
// draw depends on the seed and j alone.
void init_kmeanspp(Lloyd& lloyd, int64_t seed, size_t n_given, size_t k, float* c, int64_t b) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0, 1);
    std::vector<double> draws(k - n_given);
    for (double& u : draws) {
        u = uniform(rng);
    }
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
