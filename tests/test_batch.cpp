// batch_kmeans: B problems in one call equal B separate runs, and a run from
// given centroids equals flashkmeans::Clustering from the same centroids.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/batch.h>

#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>

#include "test_util.h"

namespace {

flashkmeans::Options cpu_options() {
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    return o;
}

/// batch_kmeans on B problems of x gives bitwise the centroids, labels and
/// objectives of B separate calls.
void expect_batch_equals_separate_runs(const std::vector<float>& x, int64_t B, int64_t n,
                                       int64_t d, int64_t k, int niter,
                                       flashkmeans::Options opts = cpu_options()) {
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, B, n, d};
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = niter;
    std::vector<float> c(B * k * d);
    std::vector<int64_t> labels(B * n);
    std::vector<double> obj(B * params.niter);
    flashkmeans::batch_kmeans(p, params, {false, c.data(), labels.data(), obj.data()}, opts);
    for (int64_t b = 0; b < B; b++) {
        flashkmeans::PointsView one{x.data() + b * n * d, flashkmeans::DType::Float32, false, 1, n, d};
        std::vector<float> c1(k * d);
        std::vector<int64_t> l1(n);
        std::vector<double> o1(params.niter);
        flashkmeans::batch_kmeans(one, params, {false, c1.data(), l1.data(), o1.data()}, opts);
        EXPECT_EQ(0, memcmp(c1.data(), c.data() + b * k * d, c1.size() * 4)) << "problem " << b;
        EXPECT_TRUE(std::equal(l1.begin(), l1.end(), labels.begin() + b * n));
        for (int it = 0; it < params.niter; it++) EXPECT_EQ(o1[it], obj[b * params.niter + it]);
    }
}

TEST(BatchKMeans, BatchEqualsSeparateRuns) {
    const int64_t B = 3, n = 1500, d = 12, k = 20;
    expect_batch_equals_separate_runs(fk_test::random_matrix(B * n, d, 31), B, n, d, k, 6);
}

// k-means++ seeds each problem from its own points (problem b's offset).
TEST(BatchKMeans, BatchWithKMeansPPInitEqualsSeparateRuns) {
    const int64_t B = 3, n = 1200, d = 6, k = 15;
    flashkmeans::Options opts = cpu_options();
    opts.init = flashkmeans::Init::KMeansPP;
    expect_batch_equals_separate_runs(fk_test::random_matrix(B * n, d, 35), B, n, d, k, 3, opts);
}

// Problems 0 and 2 have 5 distinct points for 10 clusters, so clusters go
// empty every iteration and are split (all problems' splits in one pass);
// problem 1 has none. Each still equals its own run.
TEST(BatchKMeans, BatchWithEmptyClustersEqualsSeparateRuns) {
    const int64_t B = 3, n = 100, d = 4, k = 10;
    std::vector<float> x = fk_test::random_matrix(B * n, d, 33);
    for (int64_t b : {0, 2}) {
        for (int64_t i = 0; i < n; i++) {
            for (int64_t j = 0; j < d; j++) {
                x[(b * n + i) * d + j] = float(i % 5) + 0.25f * float(j) + float(b);
            }
        }
    }
    expect_batch_equals_separate_runs(x, B, n, d, k, 5);
}

TEST(BatchKMeans, SameInitGivesSameCentroidsAsClustering) {
    const int64_t n = 2000, d = 8, k = 16;
    auto x = fk_test::random_matrix(n, d, 37);
    auto init = fk_test::random_matrix(k, d, 38);
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, 1, n, d};
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 5;
    params.init_centroids = init.data();
    std::vector<float> c(k * d);
    flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr}, cpu_options());

    faiss::ClusteringParameters cp;
    cp.niter = 5;
    flashkmeans::Clustering clus(d, k, cp, cpu_options());
    clus.centroids = init;
    faiss::IndexFlatL2 index(d);
    clus.train(n, x.data(), index);
    EXPECT_EQ(0, memcmp(c.data(), clus.centroids.data(), c.size() * 4));
}

TEST(AssignPoints, LabelsEqualFloat64Reference) {
    const int64_t n = 777, d = 9, k = 31;
    auto x = fk_test::random_matrix(n, d, 41);
    auto c = fk_test::random_matrix(k, d, 42);
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, 1, n, d};
    std::vector<float> D(n);
    std::vector<int64_t> I(n);
    flashkmeans::assign_points(p, c.data(), k, flashkmeans::Metric::L2, D.data(), I.data(), false,
                               cpu_options());
    auto ref = fk_test::reference_assign(x.data(), n, c.data(), k, d);
    for (int64_t i = 0; i < n; i++) {
        if (ref.rel_gap[i] > 1e-6) {
            EXPECT_EQ(I[i], ref.labels[i]) << i;
        }
        EXPECT_NEAR(D[i], ref.best[i], 1e-4 * (1 + ref.best[i]));
    }
}

} // namespace
