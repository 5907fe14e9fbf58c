// flashkmeans::Clustering against faiss::Clustering: same init, same labels,
// same centroids and objectives; and the behaviours FAISS's own tests check.
#include <flashkmeans/Clustering.h>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/init.h"
#include "test_util.h"

namespace {

using flashkmeans::Backend;

flashkmeans::Options cpu_options() {
    flashkmeans::Options o;
    o.backend = Backend::CPU;
    return o;
}

// An IndexFlat that remembers the labels of its last k=1 search, to read the
// assignment faiss::Clustering made in its final iteration.
template <typename Flat>
struct Recording : Flat {
    explicit Recording(int64_t d) : Flat(d) {}
    mutable std::vector<int64_t> last;
    void search(int64_t n, const float* x, int64_t k, float* D, int64_t* I,
                const faiss::SearchParameters* p = nullptr) const override {
        Flat::search(n, x, k, D, I, p);
        last.assign(I, I + n * k);
    }
};

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
        num = std::max(num, double(std::fabs(a[i] - b[i])));
        den = std::max(den, double(std::fabs(b[i])));
    }
    return num / std::max(den, 1e-30);
}

struct ParityCase {
    int64_t n, d, k;
    bool inner_product;
    int max_points_per_centroid;
    bool weighted;
    bool skewed = false;
};

/// 90% of the points around 4 hot centres, the rest spread out: many splits
/// of empty clusters and many near-ties, where any rounding other than
/// FAISS's sends a run down another path.
std::vector<float> skewed_points(int64_t n, int64_t d, uint64_t seed) {
    auto x = fk_test::blobs(n, d, 40, seed, 1.0f);
    auto hot = fk_test::blobs(n, d, 4, seed + 1, 0.02f);
    for (int64_t i = 0; i < n; i++) {
        if (i % 10 != 0) {
            std::copy(hot.begin() + i * d, hot.begin() + (i + 1) * d, x.begin() + i * d);
        }
    }
    return x;
}

void expect_parity(const ParityCase& pc) {
    auto x = pc.skewed ? skewed_points(pc.n, pc.d, 42 + pc.d)
                       : fk_test::blobs(pc.n, pc.d, pc.k / 2 + 1, 42 + pc.d, 1.0f);
    auto w = fk_test::random_weights(pc.n, 7);
    const float* weights = pc.weighted ? w.data() : nullptr;
    faiss::ClusteringParameters cp;
    cp.niter = 8;
    cp.max_points_per_centroid = pc.max_points_per_centroid;
    cp.spherical = pc.inner_product;

    faiss::Clustering ref(pc.d, pc.k, cp);
    flashkmeans::Clustering ours(pc.d, pc.k, cp, cpu_options());
    std::vector<int64_t> ref_labels;
    if (pc.inner_product) {
        Recording<faiss::IndexFlatIP> ri(pc.d);
        faiss::IndexFlatIP oi(pc.d);
        ref.train(pc.n, x.data(), ri, weights);
        ours.train(pc.n, x.data(), oi, weights);
        ref_labels = ri.last;
        EXPECT_EQ(oi.ntotal, pc.k);
    } else {
        Recording<faiss::IndexFlatL2> ri(pc.d);
        faiss::IndexFlatL2 oi(pc.d);
        ref.train(pc.n, x.data(), ri, weights);
        ours.train(pc.n, x.data(), oi, weights);
        ref_labels = ri.last;
        EXPECT_EQ(oi.ntotal, pc.k);
        // the index holds the final centroids, as with FAISS
        EXPECT_EQ(0, memcmp(oi.get_xb(), ours.centroids.data(), ours.centroids.size() * 4));
    }
    ASSERT_EQ(ours.last_labels.size(), ref_labels.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < ref_labels.size(); i++) {
        mismatches += ours.last_labels[i] != ref_labels[i];
    }
    EXPECT_EQ(mismatches, 0u);
    // same OpenBLAS, same blocks: the centroids are FAISS's bit for bit
    ASSERT_EQ(ours.centroids.size(), ref.centroids.size());
    size_t rows_differ = 0;
    for (int64_t j = 0; j < pc.k; j++) {
        rows_differ += memcmp(&ours.centroids[j * pc.d], &ref.centroids[j * pc.d], pc.d * 4) != 0;
    }
    EXPECT_EQ(rows_differ, 0u) << "max relative difference "
                               << max_rel_diff(ours.centroids, ref.centroids);
    ASSERT_EQ(ours.iteration_stats.size(), ref.iteration_stats.size());
    for (size_t i = 0; i < ref.iteration_stats.size(); i++) {
        double a = ours.iteration_stats[i].obj, b = ref.iteration_stats[i].obj;
        // FAISS adds the distances into a float: within n ulp-units of ours
        EXPECT_NEAR(a, b, double(pc.n) * std::ldexp(1.0, -24) * std::fabs(b)) << "iteration " << i;
        EXPECT_EQ(ours.iteration_stats[i].nsplit, ref.iteration_stats[i].nsplit);
        EXPECT_NEAR(ours.iteration_stats[i].imbalance_factor,
                    ref.iteration_stats[i].imbalance_factor, 1e-9);
    }
}

TEST(ClusteringParity, L2MatchesFaissLabelsCentroidsAndObjective) {
    expect_parity({5000, 32, 50, false, 256, false});
}

TEST(ClusteringParity, L2WithSubsamplingMatchesFaiss) {
    // 6000 > 40 * 100: both subsample with FAISS's permutation
    expect_parity({6000, 24, 40, false, 100, false});
}

TEST(ClusteringParity, SphericalInnerProductMatchesFaiss) {
    expect_parity({4000, 16, 30, true, 256, false});
}

TEST(ClusteringParity, WeightedMatchesFaiss) {
    expect_parity({3000, 20, 25, false, 256, true});
}

TEST(ClusteringParity, SkewedDataWithSplitsAndNearTiesMatchesFaissBitwise) {
    // no subsampling, k < 1024 and n > 4096: FAISS's blocks in both directions
    ParityCase pc{30000, 128, 256, false, 1 << 20, false};
    pc.skewed = true;
    expect_parity(pc);
}

TEST(ClusteringParity, OddShapesMatchFaiss) {
    expect_parity({1237, 3, 211, false, 256, false});
    expect_parity({999, 100, 17, false, 256, false});
}

float train_obj(int64_t n, int64_t d, int64_t k, const std::vector<float>& x, int niter = 10) {
    faiss::ClusteringParameters cp;
    cp.niter = niter;
    flashkmeans::Clustering c(d, k, cp, cpu_options());
    faiss::IndexFlatL2 index(d);
    c.train(n, x.data(), index);
    return c.iteration_stats.back().obj;
}

TEST(ClusteringBehaviour, ObjectiveNeverIncreases) {
    auto x = fk_test::random_matrix(4000, 16, 3);
    faiss::ClusteringParameters cp;
    cp.niter = 15;
    flashkmeans::Clustering c(16, 40, cp, cpu_options());
    faiss::IndexFlatL2 index(16);
    c.train(4000, x.data(), index);
    for (size_t i = 1; i < c.iteration_stats.size(); i++) {
        EXPECT_LE(c.iteration_stats[i].obj, c.iteration_stats[i - 1].obj * (1 + 1e-6));
    }
    EXPECT_LT(c.iteration_stats.back().obj, c.iteration_stats.front().obj);
}

TEST(ClusteringBehaviour, MoreClustersGiveLowerError) {
    auto x = fk_test::random_matrix(5000, 8, 5);
    EXPECT_LT(train_obj(5000, 8, 64, x), train_obj(5000, 8, 32, x));
}

TEST(ClusteringBehaviour, IntCentroidsAreIntegers) {
    auto x = fk_test::random_matrix(2000, 8, 9);
    for (auto& v : x) v *= 100;
    faiss::ClusteringParameters cp;
    cp.int_centroids = true;
    cp.niter = 5;
    flashkmeans::Clustering c(8, 20, cp, cpu_options());
    faiss::IndexFlatL2 index(8);
    c.train(2000, x.data(), index);
    bool any_nonzero = false;
    for (float v : c.centroids) {
        EXPECT_EQ(v, std::round(v));
        any_nonzero |= v != 0;
    }
    EXPECT_TRUE(any_nonzero);
}

TEST(ClusteringBehaviour, FewDistinctValuesSplitsLikeFaiss) {
    // 100 points with only 5 distinct values, k = 10: empty clusters appear
    // every iteration and must be split as FAISS splits them
    std::vector<float> x(100 * 4);
    for (int i = 0; i < 100; i++)
        for (int j = 0; j < 4; j++) x[i * 4 + j] = float(i % 5) + 0.25f * j;
    faiss::ClusteringParameters cp;
    cp.niter = 5;
    faiss::Clustering ref(4, 10, cp);
    flashkmeans::Clustering ours(4, 10, cp, cpu_options());
    faiss::IndexFlatL2 i1(4), i2(4);
    ref.train(100, x.data(), i1);
    ours.train(100, x.data(), i2);
    int total_split = 0;
    for (size_t i = 0; i < ours.iteration_stats.size(); i++) {
        EXPECT_EQ(ours.iteration_stats[i].nsplit, ref.iteration_stats[i].nsplit);
        total_split += ours.iteration_stats[i].nsplit;
    }
    EXPECT_GT(total_split, 0);
    EXPECT_LT(max_rel_diff(ours.centroids, ref.centroids), 1e-5);
    for (float v : ours.centroids) EXPECT_TRUE(std::isfinite(v));
}

TEST(ClusteringBehaviour, AsManyIdenticalPointsAsClustersCopiesThem) {
    std::vector<float> x(5 * 3, 1.5f);
    flashkmeans::Clustering c(3, 5, faiss::ClusteringParameters(), cpu_options());
    faiss::IndexFlatL2 index(3);
    c.train(5, x.data(), index);
    EXPECT_EQ(c.centroids, x);
    EXPECT_EQ(index.ntotal, 5);
}

TEST(ClusteringBehaviour, SubsampleOfExactlyKPointsIsCopied) {
    // max_points_per_centroid = 1 samples k points: FAISS's n == k shortcut
    // then copies them (one statistics line, no Lloyd iteration). FAISS
    // 1.7.3 itself copies the first k input rows there, not the sample.
    const int64_t n = 400, d = 4, k = 30;
    const std::vector<float> x = fk_test::blobs(n, d, 5, 3);
    faiss::ClusteringParameters cp;
    cp.max_points_per_centroid = 1;
    flashkmeans::Clustering ours(int(d), int(k), cp, cpu_options());
    faiss::IndexFlatL2 index(d);
    ours.train(n, x.data(), index);
    ASSERT_EQ(ours.iteration_stats.size(), 1u);
    const std::vector<int64_t> sample = flashkmeans::rand_perm_prefix(n, k, cp.seed);
    for (int64_t j = 0; j < k; j++) {
        for (int64_t t = 0; t < d; t++) {
            ASSERT_EQ(ours.centroids[j * d + t], x[sample[j] * d + t]) << j;
        }
    }
}

TEST(ClusteringBehaviour, WeightsPullCentroidsTowardHeavyPoints) {
    // two points in one cluster: the centroid sits at the weighted mean
    std::vector<float> x = {0.f, 0.f, 1.f, 0.f, 10.f, 10.f};
    std::vector<float> w = {1.f, 3.f, 1.f};
    faiss::ClusteringParameters cp;
    cp.niter = 3;
    cp.min_points_per_centroid = 1;
    flashkmeans::Clustering c(2, 2, cp, cpu_options());
    c.centroids = {0.f, 0.f, 10.f, 10.f};
    faiss::IndexFlatL2 index(2);
    c.train(3, x.data(), index, w.data());
    EXPECT_FLOAT_EQ(c.centroids[0], 0.75f);
    flashkmeans::Clustering u(2, 2, cp, cpu_options());
    u.centroids = {0.f, 0.f, 10.f, 10.f};
    faiss::IndexFlatL2 index2(2);
    u.train(3, x.data(), index2);
    EXPECT_FLOAT_EQ(u.centroids[0], 0.5f);
}

TEST(ClusteringBehaviour, WarmStartLowersFirstObjective) {
    auto x = fk_test::random_matrix(3000, 12, 11);
    faiss::ClusteringParameters cp;
    cp.niter = 10;
    flashkmeans::Clustering cold(12, 30, cp, cpu_options());
    faiss::IndexFlatL2 i1(12);
    cold.train(3000, x.data(), i1);
    flashkmeans::Clustering warm(12, 30, cp, cpu_options());
    warm.centroids = cold.centroids;
    faiss::IndexFlatL2 i2(12);
    warm.train(3000, x.data(), i2);
    EXPECT_LT(warm.iteration_stats.front().obj, cold.iteration_stats.front().obj);
}

TEST(ClusteringBehaviour, NredoKeepsTheBestRun) {
    auto x = fk_test::random_matrix(2000, 6, 13);
    faiss::ClusteringParameters cp;
    cp.niter = 4;
    cp.nredo = 3;
    flashkmeans::Clustering best(6, 25, cp, cpu_options());
    faiss::IndexFlatL2 index(6);
    best.train(2000, x.data(), index);
    // redo r seeds with seed + 1 + r * 15486557: reproduce each run alone
    float lowest = HUGE_VALF;
    for (int r = 0; r < 3; r++) {
        faiss::ClusteringParameters one = cp;
        one.nredo = 1;
        one.seed = cp.seed + r * 15486557;
        flashkmeans::Clustering c(6, 25, one, cpu_options());
        faiss::IndexFlatL2 i(6);
        c.train(2000, x.data(), i);
        lowest = std::min(lowest, c.iteration_stats.back().obj);
    }
    EXPECT_FLOAT_EQ(best.iteration_stats.back().obj, lowest);
    // and FAISS agrees on which run wins
    faiss::Clustering ref(6, 25, cp);
    faiss::IndexFlatL2 ri(6);
    ref.train(2000, x.data(), ri);
    EXPECT_LT(max_rel_diff(best.centroids, ref.centroids), 1e-5);
}

TEST(ClusteringBehaviour, FrozenCentroidsNeverMove) {
    auto x = fk_test::random_matrix(2000, 5, 17);
    faiss::ClusteringParameters cp;
    cp.niter = 6;
    cp.frozen_centroids = true;
    std::vector<float> given = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, -0.5f, -0.4f, -0.3f, -0.2f, -0.1f};
    flashkmeans::Clustering c(5, 20, cp, cpu_options());
    c.centroids = given;
    faiss::IndexFlatL2 index(5);
    c.train(2000, x.data(), index);
    for (size_t i = 0; i < given.size(); i++) EXPECT_EQ(c.centroids[i], given[i]);
    faiss::Clustering ref(5, 20, cp);
    ref.centroids = given;
    faiss::IndexFlatL2 ri(5);
    ref.train(2000, x.data(), ri);
    EXPECT_LT(max_rel_diff(c.centroids, ref.centroids), 1e-5);
}

TEST(ClusteringBehaviour, KMeansPlusPlusInitBeatsNothingWorseThanRandomOnBlobs) {
    // well separated blobs: k-means++ finds every blob; check it runs, is
    // deterministic for a seed and reaches a low objective
    auto x = fk_test::blobs(3000, 8, 20, 23, 0.05f);
    faiss::ClusteringParameters cp;
    cp.niter = 10;
    auto opts = cpu_options();
    opts.init = flashkmeans::Init::KMeansPP;
    flashkmeans::Clustering a(8, 20, cp, opts), b(8, 20, cp, opts);
    faiss::IndexFlatL2 i1(8), i2(8);
    a.train(3000, x.data(), i1);
    b.train(3000, x.data(), i2);
    EXPECT_EQ(a.centroids, b.centroids);
    // every point within a few spreads of its centroid: all 20 blobs found
    EXPECT_LT(a.iteration_stats.back().obj / 3000, 8 * 0.05 * 0.05 * 3);
}

TEST(ClusteringBehaviour, UpdateIndexTrainsAndFillsTheIndex) {
    auto x = fk_test::random_matrix(1000, 4, 29);
    faiss::ClusteringParameters cp;
    cp.niter = 2;
    cp.update_index = true;
    flashkmeans::Clustering c(4, 10, cp, cpu_options());
    faiss::IndexFlatL2 index(4);
    c.train(1000, x.data(), index);
    EXPECT_EQ(index.ntotal, 10);
}

} // namespace
