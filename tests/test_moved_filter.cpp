// Tests of exact pruning's moved-centroid filter (engine/moved_filter.h) on
// the CPU: its steps (kernels::rows_differ, select_ids, gather_rows_by_id,
// merge_moved, scatter_assignment) and, with the fused kernel (which scores
// a pair the same in any call), whole Lloyd runs whose every assignment must
// equal the plain call's bit for bit. The same engine runs on CUDA
// (tests/gpu/test_moved_filter.cpp).
#include "engine/moved_filter.h"

#include <flashkmeans/kernels.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using flashkmeans::DType;
using flashkmeans::Metric;
using flashkmeans::Place;
using flashkmeans::kernels::AssignArgs;
using flashkmeans::kernels::AssignKernel;
namespace kn = flashkmeans::kernels;

const Place kCpu{};

TEST(MovedFilterSteps, FlagsSelectGatherScatter) {
    const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, -4, 5, 6};
    std::vector<uint8_t> flags(3);
    kn::rows_differ(kCpu, a.data(), b.data(), 3, 2 * sizeof(float), flags.data());
    EXPECT_EQ(flags, (std::vector<uint8_t>{0, 1, 0}));
    std::vector<int32_t> ids(5, -9);
    EXPECT_EQ(kn::select_ids(kCpu, flags.data(), nullptr, 3, ids.data(), nullptr, 0), 1);
    EXPECT_EQ(ids[0], 1);
    // points: a label of the moved centroid, or none, are selected
    const std::vector<int32_t> labels = {0, 1, 2, -1, 1};
    EXPECT_EQ(kn::select_ids(kCpu, flags.data(), labels.data(), 5, ids.data(), nullptr, 0), 3);
    EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 3), (std::vector<int32_t>{1, 3, 4}));
    std::vector<float> rows(4);
    const std::vector<int32_t> pick = {2, 0};
    kn::gather_rows_by_id(kCpu, a.data(), 2 * sizeof(float), pick.data(), 2, rows.data());
    EXPECT_EQ(rows, (std::vector<float>{5, 6, 1, 2}));
    std::vector<int32_t> out_labels(3, 7);
    std::vector<float> out_dist(3, 7.f);
    const std::vector<int32_t> l = {4, 5};
    const std::vector<float> dd = {0.5f, 0.25f};
    kn::scatter_assignment(kCpu, pick.data(), 2, l.data(), dd.data(), out_labels.data(),
                           out_dist.data());
    EXPECT_EQ(out_labels, (std::vector<int32_t>{5, 7, 4}));
    EXPECT_EQ(out_dist, (std::vector<float>{0.25f, 7.f, 0.5f}));
}

TEST(MovedFilterSteps, MergeKeepsTheBetterByDistanceThenIndexAndCountsNearTies) {
    // centroids 0..3; 1 and 3 moved (compact ids 0 -> 1, 1 -> 3)
    const std::vector<uint8_t> flags = {0, 1, 0, 1};
    const std::vector<int32_t> ids = {1, 3};
    const std::vector<float> x_norms = {1, 1, 1, 1, 1}, c_norms = {1, 1, 1, 1};
    std::vector<int32_t> labels = {0, 2, 2, 0, 3};
    std::vector<float> dist = {5.f, 5.f, 5.f, 2.f, 9.f};
    const std::vector<int32_t> cand = {0, 0, 1, 1, 0}; // -> centroids 1, 1, 3, 3, 1
    const std::vector<float> cand_dist = {4.f, 5.f, 5.f, 2.5f, 1.f};
    const int64_t ties = kn::merge_moved(kCpu, Metric::L2, 5, flags.data(), ids.data(), cand.data(),
                                         cand_dist.data(), x_norms.data(), c_norms.data(), 1e-3,
                                         labels.data(), dist.data(), nullptr);
    // 0: 4 < 5 -> 1; 1: tie, index 1 < 2 -> 1; 2: tie, index 3 > 2 -> stays;
    // 3: 2.5 > 2 -> stays; 4: own centroid 3 moved -> untouched (assigned in full)
    EXPECT_EQ(labels, (std::vector<int32_t>{1, 1, 2, 0, 3}));
    EXPECT_EQ(dist, (std::vector<float>{4.f, 5.f, 5.f, 2.f, 9.f}));
    EXPECT_EQ(ties, 2) << "the two equal distances (tol 3e-3), not the 0.5 and 1.0 gaps";
    // IP: larger is better
    labels = {0};
    dist = {5.f};
    const std::vector<float> bigger = {6.f};
    kn::merge_moved(kCpu, Metric::InnerProduct, 1, flags.data(), ids.data(), cand.data(),
                    bigger.data(), x_norms.data(), c_norms.data(), 0, labels.data(), dist.data(),
                    nullptr);
    EXPECT_EQ(labels[0], 1);
}

/// The assignment of x (n x d) to c (k x d) into labels and distances,
/// with the centroids' norms computed now.
AssignArgs args_for(const std::vector<float>& x, const std::vector<float>& xn,
                    const std::vector<float>& c, std::vector<float>& cn, int64_t d,
                    std::vector<int32_t>& labels, std::vector<float>& dist) {
    const int64_t k = int64_t(c.size()) / d;
    kn::row_norms(kCpu, c.data(), DType::Float32, k, d, cn.data());
    AssignArgs a;
    a.x = x.data();
    a.n = int64_t(x.size()) / d;
    a.d = d;
    a.centroids = c.data();
    a.centroid_norms = cn.data();
    a.k = k;
    a.x_norms = xn.data();
    a.labels = labels.data();
    a.distances = dist.data();
    return a;
}

/// Lloyd by hand with the filter beside the plain fused call on the same
/// centroids each iteration: labels and distances equal bit for bit.
struct FilterRun {
    double max_skipped = 0;
    int plain_calls = 0, all_skipped = 0;
};

/// With `pieces` (sizes, used in turn), the filter sees the points a piece
/// at a time (begin, rows, end), as a streamed run shows them.
FilterRun lloyd_with_filter(const std::vector<float>& x, int64_t d, int64_t k, Metric metric,
                            int iters, const std::vector<int64_t>& pieces = {}) {
    const int64_t n = int64_t(x.size()) / d;
    std::vector<float> c(x.begin(), x.begin() + k * d);
    std::vector<float> xn(static_cast<size_t>(n)), cn(static_cast<size_t>(k));
    kn::row_norms(kCpu, x.data(), DType::Float32, n, d, xn.data());
    std::vector<int32_t> labels(static_cast<size_t>(n)), ref_labels(static_cast<size_t>(n));
    std::vector<float> dist(static_cast<size_t>(n)), ref_dist(static_cast<size_t>(n));
    flashkmeans::MovedFilter filter(kCpu, metric, n, k, d, DType::Float32);
    FilterRun run;
    for (int it = 0; it < iters; it++) {
        AssignArgs a = args_for(x, xn, c, cn, d, labels, dist);
        a.metric = metric;
        a.kernel = AssignKernel::Fused;
        flashkmeans::PruneStep step;
        if (pieces.empty()) {
            step = filter.assign(a);
        } else {
            filter.begin(a);
            for (int64_t first = 0, p = 0; first < n; p++) {
                AssignArgs piece = a;
                piece.n = std::min(pieces[size_t(p) % pieces.size()], n - first);
                piece.x = x.data() + first * d;
                piece.x_norms += first;
                piece.labels += first;
                piece.distances += first;
                filter.rows(piece, first);
                first += piece.n;
            }
            step = filter.end();
        }
        AssignArgs r = a;
        r.labels = ref_labels.data();
        r.distances = ref_dist.data();
        kn::flash_assign(kCpu, r);
        EXPECT_EQ(labels, ref_labels) << "iteration " << it;
        EXPECT_EQ(0, std::memcmp(dist.data(), ref_dist.data(), dist.size() * sizeof(float)))
                << "iteration " << it;
        if (it == 0) {
            EXPECT_EQ(step.skipped[0], 0.0) << "the first assignment runs in full";
        }
        run.max_skipped = std::max(run.max_skipped, step.skipped[0]);
        run.plain_calls += step.plain[0];
        run.all_skipped += step.skipped[0] == 1.0;
        // the update: each cluster's mean, in index order (a cluster that
        // kept its points gets bitwise the same centroid)
        std::vector<double> sums(size_t(k * d), 0.0);
        std::vector<int64_t> counts(static_cast<size_t>(k), 0);
        for (int64_t i = 0; i < n; i++) {
            counts[size_t(labels[size_t(i)])]++;
            for (int64_t t = 0; t < d; t++) {
                sums[size_t(labels[size_t(i)] * d + t)] += x[size_t(i * d + t)];
            }
        }
        for (int64_t j = 0; j < k; j++) {
            for (int64_t t = 0; counts[size_t(j)] > 0 && t < d; t++) {
                c[size_t(j * d + t)] = float(sums[size_t(j * d + t)] / double(counts[size_t(j)]));
            }
        }
    }
    return run;
}

TEST(MovedFilter, EveryAssignmentEqualsThePlainCallBitwise) {
    if (!kn::cpu_fused_assign_available()) {
        GTEST_SKIP() << "the bitwise check needs the fused kernel (AVX2 + FMA)";
    }
    // 20 points per cluster: most clusters settle within a few iterations
    const int64_t n = 4000, d = 16, k = 200;
    const std::vector<float> x = fk_test::blobs(n, d, k, 3, 0.3f);
    for (Metric m : {Metric::L2, Metric::InnerProduct}) {
        SCOPED_TRACE(m == Metric::L2 ? "L2" : "IP");
        const FilterRun run = lloyd_with_filter(x, d, k, m, 25);
        EXPECT_GT(run.max_skipped, 0.5) << "settled clusters should be skipped";
        if (m == Metric::L2) {
            EXPECT_GT(run.all_skipped, 0) << "Lloyd reaches a fixed point: nothing moves";
        }
    }
}

TEST(MovedFilter, PiecesOfThePointsGiveTheWholeAssignmentBitwise) {
    if (!kn::cpu_fused_assign_available()) {
        GTEST_SKIP() << "the bitwise check needs the fused kernel (AVX2 + FMA)";
    }
    // pieces as a streamed run's chunks: single points, odd sizes, one
    // piece short of everything
    const int64_t n = 4000, d = 16, k = 200;
    const std::vector<float> x = fk_test::blobs(n, d, k, 4, 0.3f);
    for (const std::vector<int64_t>& pieces :
         {std::vector<int64_t>{1, 7, 777}, std::vector<int64_t>{n - 1},
          std::vector<int64_t>{1000}}) {
        SCOPED_TRACE("first piece " + std::to_string(pieces[0]));
        const FilterRun run = lloyd_with_filter(x, d, k, Metric::L2, 25, pieces);
        EXPECT_GT(run.max_skipped, 0.5) << "settled clusters should be skipped";
        EXPECT_GT(run.all_skipped, 0) << "Lloyd reaches a fixed point: nothing moves";
    }
}

TEST(MovedFilter, IidPointsFallBackToThePlainCall) {
    if (!kn::cpu_fused_assign_available()) {
        GTEST_SKIP() << "the bitwise check needs the fused kernel (AVX2 + FMA)";
    }
    // few points per centroid but every centroid moving early on: the plain call
    const std::vector<float> x = fk_test::random_matrix(3000, 8, 5);
    const FilterRun run = lloyd_with_filter(x, 8, 300, Metric::L2, 6);
    EXPECT_GT(run.plain_calls, 0) << "with every centroid moving, the filter should step aside";
}

TEST(MovedFilter, AfterThePlainCallItWaitsBeforeLookingAgain) {
    // every centroid moves once (the plain call); then nothing moves, but
    // the next call is plain as well before the filter looks again
    const int64_t n = 3000, d = 8, k = 300;
    const std::vector<float> x = fk_test::random_matrix(n, d, 9);
    std::vector<float> c(x.begin(), x.begin() + k * d), xn(static_cast<size_t>(n)),
            cn(static_cast<size_t>(k)), dist(static_cast<size_t>(n));
    std::vector<int32_t> labels(static_cast<size_t>(n));
    kn::row_norms(kCpu, x.data(), DType::Float32, n, d, xn.data());
    flashkmeans::MovedFilter filter(kCpu, Metric::L2, n, k, d, DType::Float32);
    const auto step = [&] { return filter.assign(args_for(x, xn, c, cn, d, labels, dist)); };
    step(); // in full
    for (float& v : c) {
        v += 0.01f;
    }
    EXPECT_EQ(step().plain[0], 1) << "every centroid moved";
    const flashkmeans::PruneStep waiting = step();
    EXPECT_EQ(waiting.plain[0], 1) << "the filter looked again at once";
    EXPECT_EQ(waiting.skipped[0], 0.0);
    const flashkmeans::PruneStep looking = step();
    EXPECT_EQ(looking.plain[0], 0);
    EXPECT_EQ(looking.skipped[0], 1.0) << "nothing moved: nothing to assign";
    filter.reset(); // new centroids: in full, and no wait after
    EXPECT_EQ(step().skipped[0], 0.0);
    EXPECT_EQ(step().skipped[0], 1.0);
}

} // namespace
