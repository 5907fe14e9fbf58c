// flashkmeans::ProgressiveDimClustering against faiss::ProgressiveDimClustering
// (the same FAISS, in process): same PCA, same stages, same warm starts, so the
// same statistics and centroids to float rounding.
#include <flashkmeans/ProgressiveDimClustering.h>

#include <faiss/Clustering.h>
#include <faiss/impl/FaissException.h>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_util.h"

namespace {

/// Both trained on the same points with the same parameters.
void train_both(int64_t n, int d, int k, const std::vector<float>& x,
                faiss::ProgressiveDimClustering& ref, flashkmeans::ProgressiveDimClustering& ours) {
    faiss::ProgressiveDimIndexFactory factory;
    ref.train(n, x.data(), factory);
    ours.train(n, x.data());
    ASSERT_EQ(ours.iteration_stats.size(), ref.iteration_stats.size());
    ASSERT_EQ(ours.centroids.size(), size_t(k) * d);
}

faiss::ProgressiveDimClusteringParameters params(int steps, bool pca) {
    faiss::ProgressiveDimClusteringParameters cp;
    cp.progressive_dim_steps = steps;
    cp.apply_pca = pca;
    cp.niter = 8;
    return cp;
}

flashkmeans::Options cpu() {
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    return o;
}

void expect_same(const faiss::ProgressiveDimClustering& ref,
                 const flashkmeans::ProgressiveDimClustering& ours) {
    for (size_t i = 0; i < ref.iteration_stats.size(); i++) {
        EXPECT_NEAR(ours.iteration_stats[i].obj, ref.iteration_stats[i].obj,
                    1e-4 * std::fabs(ref.iteration_stats[i].obj))
                << "iteration " << i;
    }
    for (size_t i = 0; i < ref.centroids.size(); i++) {
        EXPECT_NEAR(ours.centroids[i], ref.centroids[i], 1e-4) << "value " << i;
    }
}

TEST(ProgressiveDimClustering, StagesWithPcaMatchFaiss) {
    const int64_t n = 3000;
    const int d = 27, k = 16;
    auto x = fk_test::blobs(n, d, 12, 21, 0.3f);
    auto cp = params(3, true);
    faiss::ProgressiveDimClustering ref(d, k, cp);
    flashkmeans::ProgressiveDimClustering ours(d, k, cp, cpu());
    train_both(n, d, k, x, ref, ours);
    EXPECT_EQ(ours.iteration_stats.size(), 3u * 8);
    expect_same(ref, ours);
}

TEST(ProgressiveDimClustering, StagesWithoutPcaAndWithSubsamplingMatchFaiss) {
    const int64_t n = 4000;
    const int d = 16, k = 20;
    auto x = fk_test::blobs(n, d, 10, 22, 0.5f);
    auto cp = params(4, false);
    cp.max_points_per_centroid = 100; // 2000 of the 4000 points, FAISS's permutation
    faiss::ProgressiveDimClustering ref(d, k, cp);
    flashkmeans::ProgressiveDimClustering ours(d, k, cp, cpu());
    train_both(n, d, k, x, ref, ours);
    expect_same(ref, ours);
}

TEST(ProgressiveDimClustering, NoStepIsRejected) {
    auto x = fk_test::blobs(100, 4, 2, 23);
    flashkmeans::ProgressiveDimClustering ours(4, 2, params(0, true), cpu());
    EXPECT_THROW(ours.train(100, x.data()), faiss::FaissException);
}

} // namespace
