// Clustering::tol, scikit-learn's stopping rule inside the engine's loop
// (engine/convergence.h): where a run stops, what it reports, and that the
// iterations it runs are those of FAISS's fixed-count loop.
#include <flashkmeans/Clustering.h>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_util.h"

namespace {

constexpr int64_t kN = 3000, kD = 6, kK = 24;

std::vector<float> points() {
    return fk_test::blobs(kN, kD, 10, 11, 0.4f);
}

/// A CPU run on points() with every point used; the index ends holding the
/// centroids.
flashkmeans::Clustering trained(int niter, double tol, int nredo = 1,
                                faiss::IndexFlatL2* index = nullptr) {
    faiss::ClusteringParameters cp;
    cp.niter = niter;
    cp.nredo = nredo;
    cp.max_points_per_centroid = 1 << 20;
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    flashkmeans::Clustering c(kD, kK, cp, o);
    c.tol = tol;
    faiss::IndexFlatL2 own(kD);
    const auto x = points();
    c.train(kN, x.data(), index ? *index : own);
    return c;
}

TEST(Convergence, OffByDefaultEveryIterationRuns) {
    auto c = trained(60, -1);
    EXPECT_EQ(c.iteration_stats.size(), 60u);
    EXPECT_TRUE(c.centroid_shifts.empty());
    EXPECT_EQ(c.stop_reason, 0);
}

TEST(Convergence, TolZeroStopsAtAFixedPointWithTheCentroidsOfTheFullRun) {
    auto early = trained(200, 0);
    const size_t ran = early.iteration_stats.size();
    ASSERT_LT(ran, 200u);
    EXPECT_EQ(early.stop_reason, 1); // labels unchanged
    ASSERT_EQ(early.centroid_shifts.size(), ran);
    EXPECT_EQ(early.centroid_shifts.back(), 0.0);
    // past a fixed point FAISS's loop changes nothing: same centroids
    EXPECT_EQ(early.centroids, trained(200, -1).centroids);
}

TEST(Convergence, StopsAtTheFirstShiftWithinTolAndRunsTheSameIterationsAsFaissLoop) {
    auto loose = trained(200, 0);
    ASSERT_GT(loose.centroid_shifts.size(), 3u);
    // a tol between the 2nd and 3rd shifts stops after the 3rd iteration
    const double tol = loose.centroid_shifts[2] * 1.0001;
    ASSERT_LT(tol, loose.centroid_shifts[1]);
    auto c = trained(200, tol);
    ASSERT_EQ(c.iteration_stats.size(), 3u);
    EXPECT_EQ(c.stop_reason, 2); // centroid change within tol
    EXPECT_EQ(c.centroids, trained(3, -1).centroids);
}

TEST(Convergence, LabelsAreTheAssignmentToTheFinalCentroids) {
    faiss::IndexFlatL2 index(kD);
    auto c = trained(2, 0, 1, &index);
    const auto x = points();
    ASSERT_EQ(c.stop_reason, 0); // 2 iterations do not converge here
    std::vector<float> D(kN);
    std::vector<faiss::Index::idx_t> I(kN);
    index.search(kN, x.data(), 1, D.data(), I.data());
    ASSERT_EQ(c.last_labels.size(), size_t(kN));
    int64_t differ = 0;
    for (int64_t i = 0; i < kN; i++)
        differ += c.last_labels[i] != I[i];
    EXPECT_EQ(differ, 0);
}

TEST(Convergence, NredoKeepsTheShiftsAndStopOfTheKeptRun) {
    auto c = trained(200, 0, 3);
    EXPECT_EQ(c.centroid_shifts.size(), c.iteration_stats.size());
    EXPECT_EQ(c.stop_reason, 1);
}

TEST(Convergence, NanTolIsRejected) {
    EXPECT_THROW(trained(5, std::nan("")), faiss::FaissException);
}

} // namespace
