#include "init.h"

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/random.h>

#include <algorithm>
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
// to its squared distance to the nearest centroid chosen so far. The
// distances come from FlashAssign with k = 1 on the backend; the running
// minimum and the draw are O(n) host work per centroid.
void init_kmeanspp(Lloyd& lloyd, int64_t seed, size_t n_given, size_t k, size_t d, float* c,
                   int64_t b) {
    const int64_t n = lloyd.n();
    std::mt19937_64 rng(seed);
    std::vector<double> best(n, HUGE_VAL);
    std::vector<float> dist(n);
    size_t next = n_given;
    if (n_given == 0) {
        int64_t first = std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
        lloyd.gather_points(b, &first, 1, c);
        next = 1;
    }
    for (size_t j = 0; j < next; j++) {
        lloyd.distances_to(b, c + j * d, dist.data());
        for (int64_t i = 0; i < n; i++) best[i] = std::min(best[i], double(dist[i]));
    }
    for (size_t j = next; j < k; j++) {
        double total = 0;
        for (double v : best) total += v;
        int64_t pick;
        if (total > 0) {
            double r = std::uniform_real_distribution<double>(0, total)(rng), acc = 0;
            pick = n - 1;
            for (int64_t i = 0; i < n; i++) {
                acc += best[i];
                if (acc > r && best[i] > 0) {
                    pick = i;
                    break;
                }
            }
        } else {
            // every point coincides with a centroid: any point will do
            pick = std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
        }
        lloyd.gather_points(b, &pick, 1, c + j * d);
        if (j + 1 < k) {
            lloyd.distances_to(b, c + j * d, dist.data());
            for (int64_t i = 0; i < n; i++) best[i] = std::min(best[i], double(dist[i]));
        }
    }
}

} // namespace

void initialize_centroids(Lloyd& lloyd, Init init, int64_t seed, size_t n_given, size_t k,
                          size_t d, float* centroids, int64_t b) {
    if (n_given >= k) {
        return;
    }
    if (init == Init::KMeansPP) {
        init_kmeanspp(lloyd, seed, n_given, k, d, centroids, b);
    } else {
        init_random(lloyd, seed, n_given, k, d, centroids, b);
    }
}

} // namespace flashkmeans
