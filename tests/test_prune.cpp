// Exact pruning (engine/prune.h, Options::prune): the CPU kernel's runner-up
// score, each pruned assignment against an unpruned one on the same
// centroids (labels differ only at counted near-ties, each a true float64
// near-tie), whole runs against unpruned runs, and a label that changes by a
// hair after a tiny drift, which the bounds must not skip.
#include "engine/lloyd.h"
#include "engine/prune.h"

#include <flashkmeans/Clustering.h>
#include <flashkmeans/errors.h>

#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "test_util.h"

namespace {

using flashkmeans::DType;
using flashkmeans::Lloyd;
using flashkmeans::LloydConfig;
using flashkmeans::LloydData;
using flashkmeans::Metric;
using flashkmeans::Place;
using flashkmeans::kernels::AssignArgs;
using flashkmeans::kernels::AssignKernel;

/// float64 scores of row i against every centroid (L2: squared distance,
/// IP: inner product), best first.
std::vector<double> sorted_scores(const float* x, const float* c, int64_t k, int64_t d, bool l2) {
    std::vector<double> s(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; j++) {
        double v = 0;
        for (int64_t t = 0; t < d; t++) {
            const double a = x[t], b = c[j * d + t];
            v += l2 ? (a - b) * (a - b) : a * b;
        }
        s[size_t(j)] = v;
    }
    if (l2) {
        std::sort(s.begin(), s.end());
    } else {
        std::sort(s.begin(), s.end(), std::greater<double>());
    }
    return s;
}

struct Assigned {
    std::vector<int32_t> labels;
    std::vector<float> distances, second;
};

/// An assignment of n x d points (norms xn) to k x d centroids (norms cn).
AssignArgs args_for(const std::vector<float>& x, const std::vector<float>& xn,
                    const std::vector<float>& c, const std::vector<float>& cn, int64_t d,
                    int32_t* labels, float* distances) {
    AssignArgs a;
    a.x = x.data();
    a.n = int64_t(x.size()) / d;
    a.d = d;
    a.centroids = c.data();
    a.centroid_norms = cn.data();
    a.k = int64_t(c.size()) / d;
    a.x_norms = xn.data();
    a.labels = labels;
    a.distances = distances;
    return a;
}

/// The CPU kernel on n x d points and k x d centroids, with runner-ups.
Assigned assign(const std::vector<float>& x, const std::vector<float>& c, int64_t d, bool l2,
                AssignKernel kernel = AssignKernel::Auto, bool with_second = true) {
    const int64_t n = int64_t(x.size()) / d, k = int64_t(c.size()) / d;
    std::vector<float> xn(static_cast<size_t>(n)), cn(static_cast<size_t>(k));
    flashkmeans::kernels::row_norms(Place{}, x.data(), DType::Float32, n, d, xn.data());
    flashkmeans::kernels::row_norms(Place{}, c.data(), DType::Float32, k, d, cn.data());
    Assigned r;
    r.labels.resize(size_t(n));
    r.distances.resize(size_t(n));
    r.second.resize(size_t(n));
    AssignArgs a = args_for(x, xn, c, cn, d, r.labels.data(), r.distances.data());
    a.metric = l2 ? Metric::L2 : Metric::InnerProduct;
    a.kernel = kernel;
    a.second = with_second ? r.second.data() : nullptr;
    flashkmeans::kernels::flash_assign(Place{}, a);
    return r;
}

/// Whether centroid `label` is within a float32 rounding of row i's best
/// (float64): the only labels an fp32 kernel may pick other than the best.
bool near_best(const float* x, const float* c, int64_t k, int64_t d, bool l2, int32_t label) {
    const std::vector<double> s = sorted_scores(x, c, k, d, l2);
    double v = 0, xx = 0;
    for (int64_t t = 0; t < d; t++) {
        const double a = x[t], b = c[label * d + t];
        v += l2 ? (a - b) * (a - b) : a * b;
        xx += a * a;
    }
    return std::abs(v - s[0]) <= 1e-5 * (xx + std::abs(s[0]) + 1);
}

TEST(PruneKernel, RunnerUpIsTheSecondBestScore) {
    const int64_t d = 24, k = 300;
    std::vector<float> c = fk_test::random_matrix(k, d, 7);
    // a copy of centroid 3: its points tie with it, runner-up == best
    std::copy(c.begin() + 3 * d, c.begin() + 4 * d, c.begin() + 250 * d);
    for (bool l2 : {true, false}) {
        for (int64_t n : {int64_t(5), int64_t(5000)}) { // FAISS's direct and blocked paths
            std::vector<float> x = fk_test::random_matrix(n, d, 11 + n);
            for (AssignKernel kernel : {AssignKernel::Auto, AssignKernel::Reference}) {
                const Assigned r = assign(x, c, d, l2, kernel);
                const Assigned plain = assign(x, c, d, l2, kernel, false);
                for (int64_t i = 0; i < n; i++) {
                    SCOPED_TRACE(testing::Message() << "l2 " << l2 << " n " << n << " row " << i);
                    // asking for the runner-up changes nothing else
                    ASSERT_EQ(r.labels[i], plain.labels[i]);
                    ASSERT_EQ(r.distances[i], plain.distances[i]);
                    const std::vector<double> s = sorted_scores(&x[i * d], c.data(), k, d, l2);
                    const double tol = 1e-5 * (std::abs(s[0]) + std::abs(s[1]) + 2 * d);
                    EXPECT_NEAR(r.second[i], s[1], tol);
                    EXPECT_TRUE(l2 ? r.second[i] >= r.distances[i] : r.second[i] <= r.distances[i]);
                    if (r.labels[i] == 3) {
                        // the copy's score: the same value, except where
                        // OpenBLAS rounds by the row's place in its panel
                        if (kernel == AssignKernel::Reference) {
                            EXPECT_EQ(r.second[i], r.distances[i]);
                        } else {
                            EXPECT_NEAR(r.second[i], r.distances[i], tol);
                        }
                    }
                }
            }
        }
    }
    // one centroid: no runner-up
    const std::vector<float> x = fk_test::random_matrix(100, d, 3);
    const std::vector<float> one(c.begin(), c.begin() + d);
    EXPECT_EQ(assign(x, one, d, true).second[0], std::numeric_limits<float>::infinity());
    EXPECT_EQ(assign(x, one, d, false).second[0], -std::numeric_limits<float>::infinity());
}

struct Problem {
    std::vector<float> x;
    std::vector<float> weights; // empty: unweighted
    std::vector<float> init;    // batch x k x d
    int64_t batch = 1, n = 0, d = 0, k = 0, k_frozen = 0;
    bool l2 = true, spherical = false;
    int64_t chunk_rows = 0;
    int niter = 12;
    AssignKernel kernel = AssignKernel::Auto; // Auto: FAISS's blocks
};

/// Points around `centres` Gaussian centres of spread `spread` (overlapping
/// when large), seeded with rows j n / k.
Problem mixture(int64_t n, int64_t d, int64_t k, int64_t centres, float spread, uint64_t seed,
                int64_t batch = 1) {
    Problem p;
    p.n = n;
    p.d = d;
    p.k = k;
    p.batch = batch;
    for (int64_t b = 0; b < batch; b++) {
        const std::vector<float> x = fk_test::blobs(n, d, centres, seed + 17 * b, spread);
        p.x.insert(p.x.end(), x.begin(), x.end());
        for (int64_t j = 0; j < k; j++) {
            const float* row = x.data() + (j * n / k) * d;
            p.init.insert(p.init.end(), row, row + d);
        }
    }
    return p;
}

struct StepCheck {
    double max_skipped = 0;
    int64_t near_ties = 0;
    int64_t differing = 0;
};

/// Runs the pruned engine; before each iteration, assigns the same centroids
/// without pruning, and checks the pruned labels against that assignment.
StepCheck check_each_step(const Problem& p) {
    LloydData data{p.x.data(),
                   DType::Float32,
                   false,
                   p.n,
                   p.d,
                   p.batch,
                   p.weights.empty() ? nullptr : p.weights.data()};
    LloydConfig cfg;
    cfg.k = p.k;
    cfg.k_frozen = p.k_frozen;
    cfg.metric = p.l2 ? Metric::L2 : Metric::InnerProduct;
    cfg.spherical = p.spherical;
    cfg.chunk_rows = p.chunk_rows;
    cfg.prune = true;
    cfg.kernel = p.kernel;
    Lloyd lloyd(Place{}, data, cfg);
    lloyd.set_centroids(p.init.data());
    StepCheck out;
    std::vector<float> c(size_t(p.batch * p.k * p.d));
    for (int it = 0; it < p.niter; it++) {
        lloyd.get_centroids(c.data());
        const flashkmeans::LloydStep step = lloyd.iterate();
        const std::vector<int32_t> labels = lloyd.labels();
        for (int64_t b = 0; b < p.batch; b++) {
            const std::vector<float> xb(p.x.begin() + b * p.n * p.d,
                                        p.x.begin() + (b + 1) * p.n * p.d);
            const std::vector<float> cb(c.begin() + b * p.k * p.d, c.begin() + (b + 1) * p.k * p.d);
            const Assigned ref = assign(xb, cb, p.d, p.l2, p.kernel, false);
            int64_t differing = 0;
            double obj = 0;
            for (int64_t i = 0; i < p.n; i++) {
                obj += ref.distances[size_t(i)];
                const int32_t got = labels[size_t(b * p.n + i)];
                if (got != ref.labels[size_t(i)]) {
                    differing++;
                    EXPECT_TRUE(near_best(&xb[i * p.d], cb.data(), p.k, p.d, p.l2, got))
                            << "iteration " << it << " point " << i << ": label " << got
                            << " is not a near-tie of " << ref.labels[size_t(i)];
                }
            }
            EXPECT_LE(differing, step.near_ties[size_t(b)]) << "iteration " << it;
            if (p.kernel == AssignKernel::Fused) { // its scores do not depend on the call
                EXPECT_EQ(differing, 0) << "iteration " << it;
                EXPECT_EQ(step.near_ties[size_t(b)], 0) << "iteration " << it;
            }
            EXPECT_NEAR(step.obj[size_t(b)], obj, 1e-5 * std::abs(obj)) << "iteration " << it;
            if (it == 0) {
                EXPECT_EQ(step.skipped[size_t(b)], 0.0) << "the first iteration runs in full";
            }
            out.max_skipped = std::max(out.max_skipped, step.skipped[size_t(b)]);
            out.near_ties += step.near_ties[size_t(b)];
            out.differing += differing;
        }
    }
    return out;
}

TEST(Prune, EachAssignmentMatchesAnUnprunedOneL2) {
    const StepCheck r = check_each_step(mixture(6000, 8, 40, 12, 0.8f, 1));
    EXPECT_GT(r.max_skipped, 0.4) << "pruning never skipped much: the test checks nothing";
}

TEST(Prune, EachAssignmentMatchesAnUnprunedOneInnerProduct) {
    Problem p = mixture(6000, 8, 40, 12, 0.8f, 2);
    p.l2 = false;
    p.spherical = true;
    p.niter = 20;
    const StepCheck r = check_each_step(p);
    // IP bounds give way by ||x|| times the drift: they prune less
    EXPECT_GT(r.max_skipped, 0.2);
}

TEST(Prune, EachAssignmentMatchesWithWeightsFrozenCentroidsAndBatches) {
    Problem p = mixture(5000, 6, 30, 10, 0.7f, 3, 3);
    p.weights.resize(size_t(p.n * p.batch));
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.5f, 2.f);
    for (float& w : p.weights) {
        w = u(rng);
    }
    p.k_frozen = 4;
    const StepCheck r = check_each_step(p);
    EXPECT_GT(r.max_skipped, 0.4);
}

TEST(Prune, EachAssignmentMatchesWhenStreamed) {
    Problem p = mixture(9000, 8, 32, 10, 0.8f, 4);
    p.chunk_rows = 2000;
    const StepCheck r = check_each_step(p);
    EXPECT_GT(r.max_skipped, 0.4);
}

TEST(Prune, EachAssignmentMatchesAfterEmptyClusterSplits) {
    Problem p = mixture(4000, 5, 24, 8, 0.5f, 6);
    // several copies of one starting centroid: all but one go empty and split
    for (int64_t j = 1; j < 6; j++) {
        std::copy(p.init.begin(), p.init.begin() + p.d, p.init.begin() + j * p.d);
    }
    const StepCheck r = check_each_step(p);
    EXPECT_GT(r.max_skipped, 0.4);
}

TEST(Prune, EachAssignmentMatchesOnDuplicatesAndSymmetricLayouts) {
    // integers on a small grid, each point twice, and centroids seeded in
    // mirrored pairs: many points lie exactly between two centroids
    Problem p;
    p.d = 2;
    p.k = 16;
    for (int rep = 0; rep < 2; rep++) {
        for (int a = -20; a <= 20; a++) {
            for (int b = -20; b <= 20; b++) {
                p.x.push_back(float(a));
                p.x.push_back(float(b));
            }
        }
    }
    p.n = int64_t(p.x.size()) / 2;
    for (int64_t j = 0; j < p.k / 2; j++) {
        const float a = float(3 * j - 10), b = float(j % 3 + 2);
        p.init.insert(p.init.end(), {a, b, -a, -b});
    }
    const StepCheck r = check_each_step(p);
    EXPECT_GT(r.max_skipped, 0.3);
}

/// Trains with and without prune; returns the pruned run's near-ties total
/// after checking it skipped work and matched the unpruned objectives.
int64_t train_both(const std::vector<float>& x, int64_t d, int64_t k,
                   faiss::ClusteringParameters cp, const std::vector<float>& init,
                   flashkmeans::Clustering& plain, flashkmeans::Clustering& pruned,
                   flashkmeans::CpuKernel kernel = flashkmeans::CpuKernel::Faiss,
                   double min_skipped = 0.5) {
    const int64_t n = int64_t(x.size()) / d;
    for (flashkmeans::Clustering* c : {&plain, &pruned}) {
        c->options.backend = flashkmeans::Backend::CPU;
        c->options.prune = c == &pruned;
        c->options.cpu_kernel = kernel;
        c->centroids = init;
        std::unique_ptr<faiss::IndexFlat> index;
        if (cp.spherical) {
            index.reset(new faiss::IndexFlatIP(d));
        } else {
            index.reset(new faiss::IndexFlatL2(d));
        }
        c->train(n, x.data(), *index);
    }
    EXPECT_TRUE(plain.skipped_work.empty());
    EXPECT_EQ(pruned.skipped_work.size(), pruned.iteration_stats.size());
    int64_t ties = 0;
    double skipped = 0;
    for (size_t i = 0; i < pruned.skipped_work.size(); i++) {
        ties += pruned.near_ties[i];
        skipped = std::max(skipped, pruned.skipped_work[i]);
        EXPECT_NEAR(pruned.iteration_stats[i].obj, plain.iteration_stats[i].obj,
                    1e-5 * std::abs(plain.iteration_stats[i].obj))
                << "iteration " << i;
    }
    EXPECT_EQ(pruned.skipped_work.at(0), 0.0) << "the first iteration runs in full";
    EXPECT_GT(skipped, min_skipped) << "pruning skipped little: the comparison is weak";
    return ties;
}

TEST(Prune, WholeRunEqualsTheUnprunedRunWithoutNearTies) {
    // Clustering with and without prune: the same labels and bitwise the same
    // centroids when no near-tie occurred. One starting centroid per blob,
    // off its centre: every point stays far from the boundaries while the
    // centroids move to the means.
    const int64_t n = 20000, d = 16, k = 16;
    const std::vector<float> x = fk_test::blobs(n, d, k, 9, 0.2f);
    // the first point met of each blob (a new one: far from those kept)
    std::vector<int64_t> firsts;
    for (int64_t i = 0; i < n && int64_t(firsts.size()) < k; i++) {
        bool seen = false;
        for (int64_t f : firsts) {
            double dd = 0;
            for (int64_t t = 0; t < d; t++) {
                const double v = x[i * d + t] - x[f * d + t];
                dd += v * v;
            }
            seen |= dd < 4.0; // same blob: within a few spreads
        }
        if (!seen) {
            firsts.push_back(i);
        }
    }
    ASSERT_EQ(int64_t(firsts.size()), k);
    std::vector<float> init;
    for (int64_t f : firsts) {
        init.insert(init.end(), x.begin() + f * d, x.begin() + (f + 1) * d);
    }
    for (bool ip : {false, true}) {
        SCOPED_TRACE(ip ? "inner product" : "L2");
        faiss::ClusteringParameters cp;
        cp.niter = 10;
        cp.spherical = ip;
        flashkmeans::Clustering plain(int(d), int(k), cp), pruned(int(d), int(k), cp);
        ASSERT_EQ(train_both(x, d, k, cp, init, plain, pruned), 0)
                << "data chosen to have no near-tie; the bitwise check needs none";
        EXPECT_EQ(pruned.centroids, plain.centroids);
        EXPECT_EQ(pruned.last_labels, plain.last_labels);
    }
}

TEST(Prune, WholeRunEqualsTheUnprunedRunOnIntegers) {
    // small integers and integer centroids: every score is exact, so even
    // exact ties rank the same, pruned or not, through redos and subsampling
    const int64_t d = 3, k = 20;
    std::vector<float> x;
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> u(-30, 30);
    for (int i = 0; i < 6000 * d; i++) {
        x.push_back(float(u(rng)));
    }
    faiss::ClusteringParameters cp;
    cp.niter = 15;
    cp.nredo = 2;
    cp.int_centroids = true;
    cp.max_points_per_centroid = 250; // a 5000-point subsample
    flashkmeans::Clustering plain(int(d), int(k), cp), pruned(int(d), int(k), cp);
    train_both(x, d, k, cp, {}, plain, pruned);
    EXPECT_EQ(pruned.centroids, plain.centroids);
    EXPECT_EQ(pruned.last_labels, plain.last_labels);
    for (size_t i = 0; i < plain.iteration_stats.size(); i++) {
        EXPECT_EQ(pruned.iteration_stats[i].obj, plain.iteration_stats[i].obj);
    }
}

TEST(Prune, FusedKernelEachAssignmentEqualsTheUnprunedOne) {
    // the fused kernel scores a point against a centroid the same bits in
    // any call, so a pruned assignment is the unpruned one: no near-ties
    if (!flashkmeans::kernels::cpu_fused_assign_available()) {
        GTEST_SKIP() << "this CPU has no AVX2 + FMA";
    }
    std::vector<Problem> problems;
    problems.push_back(mixture(6000, 8, 40, 12, 0.8f, 1));
    problems.push_back(mixture(6000, 8, 40, 12, 0.8f, 2));
    problems.back().l2 = false;
    problems.back().spherical = true;
    problems.push_back(mixture(5000, 6, 30, 10, 0.7f, 3, 3));
    problems.back().weights.assign(size_t(5000 * 3), 1.5f);
    problems.back().k_frozen = 4;
    problems.push_back(mixture(9000, 8, 32, 10, 0.8f, 4));
    problems.back().chunk_rows = 2000;
    problems.push_back(mixture(4000, 40, 300, 6, 1.5f, 5));   // heavy overlap: near-ties
    problems.push_back(mixture(3000, 384, 400, 30, 1.0f, 7)); // 25 groups of 16
    problems.back().l2 = false;                               // and inner product over many groups
    problems.back().spherical = true;
    problems.push_back(mixture(3000, 384, 400, 30, 1.0f, 8));
    for (Problem& p : problems) {
        p.kernel = AssignKernel::Fused;
        SCOPED_TRACE(::testing::Message() << p.n << "x" << p.d << " k=" << p.k << " groups "
                                          << flashkmeans::Pruner::group_count(p.k, p.d));
        const StepCheck r = check_each_step(p);
        EXPECT_GT(r.max_skipped, 0.2);
    }
}

TEST(Prune, FusedKernelWholeRunIsBitwiseTheUnprunedRun) {
    // overlapping blobs, where FAISS's blocks would leave counted near-ties:
    // with the fused kernel, labels, centroids and every objective are the
    // unpruned run's bit for bit
    if (!flashkmeans::kernels::cpu_fused_assign_available()) {
        GTEST_SKIP() << "this CPU has no AVX2 + FMA";
    }
    // d = 24, k = 64: one group (Hamerly's bounds); d = 192, k = 320: 10
    for (const auto& [n, d, k] : {std::tuple<int64_t, int64_t, int64_t>{20000, 24, 64},
                                  std::tuple<int64_t, int64_t, int64_t>{13000, 192, 320}}) {
        for (bool ip : {false, true}) {
            SCOPED_TRACE(::testing::Message() << (ip ? "inner product" : "L2") << " d=" << d);
            const std::vector<float> x = fk_test::blobs(n, d, 20, 11, 0.6f);
            faiss::ClusteringParameters cp;
            cp.niter = 20;
            cp.spherical = ip;
            flashkmeans::Clustering plain(int(d), int(k), cp), pruned(int(d), int(k), cp);
            // inner-product bounds give way by ||x|| times the drift: they skip less
            EXPECT_EQ(train_both(x, d, k, cp, {}, plain, pruned, flashkmeans::CpuKernel::Fused,
                                 ip ? 0.1 : 0.5),
                      0);
            EXPECT_EQ(pruned.centroids, plain.centroids);
            EXPECT_EQ(pruned.last_labels, plain.last_labels);
            for (size_t i = 0; i < plain.iteration_stats.size(); i++) {
                EXPECT_EQ(pruned.iteration_stats[i].obj, plain.iteration_stats[i].obj) << i;
            }
        }
    }
}

/// A Pruner on host points and centroids the test changes between calls:
/// assign() recomputes the centroid norms, then runs the pruned assignment.
struct PrunerRig {
    std::vector<float> x, c, xn, cn, dist;
    std::vector<int32_t> labels;
    int64_t n, k, d;
    AssignKernel kernel;
    flashkmeans::Pruner pruner;
    PrunerRig(std::vector<float> points, std::vector<float> centroids, int64_t dim,
              AssignKernel kern = AssignKernel::Auto)
            : x(std::move(points)),
              c(std::move(centroids)),
              n(int64_t(x.size()) / dim),
              k(int64_t(c.size()) / dim),
              d(dim),
              kernel(kern),
              pruner(Metric::L2, n, k, d, 1, kern) {
        xn.resize(size_t(n));
        cn.resize(size_t(k));
        dist.resize(size_t(n));
        labels.resize(size_t(n));
        flashkmeans::kernels::row_norms(Place{}, x.data(), DType::Float32, n, d, xn.data());
    }
    flashkmeans::PruneStep assign() {
        flashkmeans::kernels::row_norms(Place{}, c.data(), DType::Float32, k, d, cn.data());
        AssignArgs a = args_for(x, xn, c, cn, d, labels.data(), dist.data());
        a.kernel = kernel;
        return pruner.assign(a);
    }
};

TEST(Prune, LabelChangedByAHairAfterATinyDriftIsNotSkipped) {
    // x = (1, 0) between c0 = (0, 0) and c1 = (2 + h, 0): label 0. Then c1
    // moves by 2h to (2 - h, 0): x is now closer to c1 by about 2h, a few
    // times the rounding bound. Far points keep their labels (skipped).
    const int64_t d = 2;
    const float h = 2e-5f;
    std::vector<float> x = {1.f, 0.f};
    for (int i = 0; i < 200; i++) { // far from the boundary, either side
        x.push_back(float(i % 2 == 0 ? -3 - i % 7 : 5 + i % 5));
        x.push_back(float(i % 3) * 0.1f);
    }
    std::vector<AssignKernel> kernels = {AssignKernel::Auto}; // Hamerly's bounds
    if (flashkmeans::kernels::cpu_fused_assign_available()) {
        kernels.push_back(AssignKernel::Fused); // group bounds
    }
    for (AssignKernel kernel : kernels) {
        SCOPED_TRACE(kernel == AssignKernel::Fused ? "fused" : "faiss");
        PrunerRig r(x, {0.f, 0.f, 2.f + h, 0.f}, d, kernel);
        r.assign();
        ASSERT_EQ(r.labels[0], 0);
        r.c[2] = 2.f - h;
        const flashkmeans::PruneStep step = r.assign();
        EXPECT_EQ(r.labels[0], 1) << "the point whose label changed was skipped";
        EXPECT_GT(step.skipped[0], 0.9) << "the far points should be skipped";
        EXPECT_EQ(r.labels, assign(x, r.c, d, true, kernel).labels);
    }
}

TEST(Prune, GroupBoundsRememberTheCentroidAPointLeft) {
    // Two groups of 64 centroids (d = 2: left of x = 0 and right of it). The
    // point at the origin starts at c_old = (-1, 0) (left), moves to c_new
    // in the right group, and must come back to c_old when c_new leaves:
    // the left group, not computed when it moved, must have taken c_old in
    // among its others
    if (!flashkmeans::kernels::cpu_fused_assign_available()) {
        GTEST_SKIP() << "this CPU has no AVX2 + FMA";
    }
    const int64_t d = 2, k = 128;
    ASSERT_EQ(flashkmeans::Pruner::group_count(k, d), 2);
    std::vector<float> c;
    for (int i = 0; i < 63; i++) {
        c.insert(c.end(), {-20.f - float(i), 0.f});
    }
    c.insert(c.end(), {-1.f, 0.f}); // c_old: 63
    c.insert(c.end(), {1.2f, 0.f}); // c_new: 64
    for (int i = 0; i < 63; i++) {
        c.insert(c.end(), {20.f + float(i), 0.f});
    }
    PrunerRig r({0.f, 0.f}, c, d, AssignKernel::Fused);
    r.assign();
    ASSERT_EQ(r.labels[0], 63);
    r.c[64 * d] = 0.9f; // c_new is now the nearer
    r.assign();
    ASSERT_EQ(r.labels[0], 64);
    r.c[64 * d] = 5.f; // and leaves
    r.assign();
    EXPECT_EQ(r.labels[0], 63) << "the bounds forgot the centroid the point left";
}

TEST(Prune, BacksOffWhereBoundsPruneNothing) {
    // uniform points: while the centroids move, the bounds skip next to
    // nothing, so most calls are plain (no runner-up, no bounds) and equal
    // the unpruned assignment bit for bit
    const int64_t n = 10000, d = 64, k = 128;
    const std::vector<float> x = fk_test::random_matrix(n, d, 21);
    PrunerRig r(x, std::vector<float>(x.begin(), x.begin() + k * d), d);
    std::vector<float>& c = r.c;
    const std::vector<int32_t>& labels = r.labels;
    int plain_early = 0;
    double skipped_late = 0;
    const int calls = 25;
    for (int it = 0; it < calls; it++) {
        const flashkmeans::PruneStep step = r.assign();
        plain_early += it < 13 ? step.plain[0] : 0;
        skipped_late = std::max(skipped_late, it >= 13 ? step.skipped[0] : 0.0);
        if (step.plain[0]) {
            const Assigned ref = assign(x, c, d, true, AssignKernel::Auto, false);
            ASSERT_EQ(labels, ref.labels) << "call " << it;
            ASSERT_EQ(r.dist, ref.distances) << "call " << it;
        }
        // one Lloyd step, by hand: the means of the labels
        std::vector<double> sums(size_t(k * d), 0.0);
        std::vector<int64_t> counts(size_t(k), 0);
        for (int64_t i = 0; i < n; i++) {
            counts[size_t(labels[i])]++;
            for (int64_t t = 0; t < d; t++) {
                sums[size_t(labels[i] * d + t)] += x[i * d + t];
            }
        }
        for (int64_t j = 0; j < k; j++) {
            for (int64_t t = 0; t < d && counts[size_t(j)] > 0; t++) {
                c[j * d + t] = float(sums[size_t(j * d + t)] / double(counts[size_t(j)]));
            }
        }
    }
    // the first calls: bounds set, found useless, then plain for 1, 2, 4, 8
    EXPECT_GE(plain_early, 8) << "pruning kept paying for bounds that skip nothing";
    // and once the centroids settle, the bounds come back and pay
    EXPECT_GT(skipped_late, 0.2) << "pruning never came back";
}

} // namespace
