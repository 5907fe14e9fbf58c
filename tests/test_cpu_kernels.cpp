// Tests of the CPU kernels (kernels/cpu/*.cpp, kernels/split_clusters.cpp)
// against float64 references, plain loops written here, and FAISS itself.
#include <flashkmeans/kernels.h>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/utils/random.h>

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mt19937_blocks.h"
#include "split_draw.h"
#include "test_util.h"

namespace fk = flashkmeans;
namespace kn = flashkmeans::kernels;

namespace {

const fk::Place kCpu{fk::Backend::CPU};

std::vector<float> norms_of(const std::vector<float>& x, int64_t d) {
    std::vector<float> out(x.size() / d);
    kn::row_norms(kCpu, x.data(), fk::DType::Float32, int64_t(out.size()), d, out.data());
    return out;
}

struct AssignOut {
    std::vector<int32_t> labels;
    std::vector<float> distances;
};

AssignOut run_assign(const std::vector<float>& x, const std::vector<float>& c, int64_t n, int64_t k,
                     int64_t d, fk::Metric metric, int64_t batch = 1,
                     kn::AssignKernel kernel = kn::AssignKernel::Auto) {
    std::vector<float> xn = norms_of(x, d), cn = norms_of(c, d);
    AssignOut out;
    out.labels.assign(n * batch, -7);
    out.distances.assign(n * batch, -7.f);
    kn::AssignArgs a;
    a.x = x.data();
    a.n = n;
    a.d = d;
    a.centroids = c.data();
    a.centroid_norms = cn.data();
    a.k = k;
    a.batch = batch;
    a.metric = metric;
    a.kernel = kernel;
    a.x_norms = xn.data();
    a.labels = out.labels.data();
    a.distances = out.distances.data();
    kn::flash_assign(kCpu, a);
    return out;
}

/// float64 score of centroid j for point i, as the reference ranks it (the
/// squared distance for L2, minus the inner product for IP).
double score64(const float* x, const float* c, int64_t d, bool ip) {
    double s = 0;
    for (int64_t t = 0; t < d; t++) {
        double xv = x[t], cv = c[t];
        s += ip ? -xv * cv : (xv - cv) * (xv - cv);
    }
    return s;
}

/// Checks labels and distances against fk_test::reference_assign; a label
/// may differ only at a near-tie (relative gap below `tie`), and then must be
/// as good to within `tie`. Returns the number of such excused points.
int64_t expect_matches_reference(const AssignOut& out, const std::vector<float>& x,
                                 const std::vector<float>& c, int64_t n, int64_t k, int64_t d,
                                 bool ip, const std::string& what, double tie = 1e-6) {
    fk_test::RefAssign ref = fk_test::reference_assign(x.data(), n, c.data(), k, d, ip);
    int64_t excused = 0, bad_labels = 0, bad_dist = 0;
    for (int64_t i = 0; i < n; i++) {
        const float* xi = x.data() + i * d;
        double xnorm = 0;
        for (int64_t t = 0; t < d; t++) {
            xnorm += double(xi[t]) * xi[t];
        }
        const double scale = xnorm + std::fabs(ref.best[i]) + 1e-30;
        const int32_t l = out.labels[i];
        if (l < 0 || l >= k) {
            bad_labels++;
            continue;
        }
        if (l != ref.labels[i]) {
            const double best_score = ip ? -ref.best[i] : ref.best[i];
            const double ours = score64(xi, c.data() + l * d, d, ip);
            if (ref.rel_gap[i] < tie && (ours - best_score) / scale < tie) {
                excused++;
            } else {
                bad_labels++;
                ADD_FAILURE() << what << ": point " << i << " label " << l << " ref "
                              << ref.labels[i] << " rel_gap " << ref.rel_gap[i]
                              << " excess " << (ours - best_score) / scale;
            }
        }
        if (std::fabs(double(out.distances[i]) - ref.best[i]) > 1e-4 * scale) {
            bad_dist++;
        }
    }
    EXPECT_EQ(bad_labels, 0) << what;
    EXPECT_EQ(bad_dist, 0) << what;
    return excused;
}

// The order and rounding of FAISS's compute_centroids, written out plainly:
// for each point in index order, c[label] += x (or x * w) in float. No FMA
// contraction, as in FAISS's own build.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
void faiss_order_sums(const float* x, int64_t n, int64_t d, const int32_t* labels,
                      const float* weights, int64_t k, int64_t k_begin, float* sums,
                      float* hassign) {
    std::fill(sums + k_begin * d, sums + k * d, 0.0f);
    std::fill(hassign + k_begin, hassign + k, 0.0f);
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = labels[i];
        if (j < k_begin) {
            continue;
        }
        float* c = sums + j * d;
        if (weights) {
            float w = weights[i];
            hassign[j] += w;
            for (int64_t t = 0; t < d; t++) {
                c[t] += x[i * d + t] * w;
            }
        } else {
            hassign[j] += 1.0;
            for (int64_t t = 0; t < d; t++) {
                c[t] += x[i * d + t];
            }
        }
    }
}
#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<int32_t> random_labels(int64_t n, int64_t k, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int32_t> u(0, int32_t(k - 1));
    std::vector<int32_t> l(n);
    for (auto& v : l) {
        v = u(rng);
    }
    return l;
}

struct Update {
    std::vector<float> sums, weight_sums;
    std::vector<int32_t> counts;
};

Update run_update(const std::vector<float>& x, int64_t n, int64_t d,
                  const std::vector<int32_t>& labels, const float* weights, int64_t k,
                  int64_t k_begin = 0, int64_t batch = 1, float sentinel = 0.f) {
    Update u;
    u.sums.assign(k * d * batch, sentinel);
    u.weight_sums.assign(k * batch, sentinel);
    u.counts.assign(k * batch, -1);
    kn::UpdateArgs a;
    a.x = x.data();
    a.n = n;
    a.d = d;
    a.labels = labels.data();
    a.weights = weights;
    a.k = k;
    a.k_begin = k_begin;
    a.batch = batch;
    a.sums = u.sums.data();
    a.weight_sums = u.weight_sums.data();
    a.counts = u.counts.data();
    kn::sort_inverse_update(kCpu, a);
    return u;
}

/// Finalize of update `u` into the centroids `c` (one problem unless the
/// caller sets batch).
kn::FinalizeArgs finalize_args(const Update& u, int64_t k, int64_t d, int64_t k_begin,
                               std::vector<float>& c) {
    kn::FinalizeArgs f;
    f.sums = u.sums.data();
    f.weight_sums = u.weight_sums.data();
    f.k = k;
    f.d = d;
    f.k_begin = k_begin;
    f.centroids = c.data();
    return f;
}

void run_finalize(const Update& u, int64_t k, int64_t d, int64_t k_begin, std::vector<float>& c,
                  int32_t* n_empty = nullptr, float* max_shift = nullptr) {
    kn::FinalizeArgs f = finalize_args(u, k, d, k_begin, c);
    f.n_empty = n_empty;
    f.max_shift = max_shift;
    kn::finalize_centroids(kCpu, f);
}

} // namespace

// ---------------------------------------------------------------- row_norms

TEST(CpuRowNorms, MatchesFloat64SumOfSquares) {
    for (int64_t d : {1, 17, 300}) {
        const int64_t n = 513;
        auto x = fk_test::random_matrix(n, d, 11 + d);
        auto norms = norms_of(x, d);
        for (int64_t i = 0; i < n; i++) {
            const double s = fk_test::norm2_f64(&x[i * d], d);
            ASSERT_NEAR(norms[i], s, 1e-5 * s) << "d=" << d << " i=" << i;
        }
    }
}

// ---------------------------------------------------------------- flash_assign

TEST(CpuFlashAssign, MatchesFloat64ReferenceOnGrid) {
    // N and K are not multiples of any tile size; K = 777 > N / 2.
    const int64_t n = 1013;
    int64_t total_excused = 0, total_points = 0;
    for (int64_t d : {1, 3, 17, 64, 100, 128, 768}) {
        for (int64_t k : {301, 777}) {
            auto x = fk_test::random_matrix(n, d, 1000 + d);
            auto c = fk_test::random_matrix(k, d, 2000 + d + k);
            for (bool ip : {false, true}) {
                const std::string what = "d=" + std::to_string(d) + " k=" + std::to_string(k) +
                                         (ip ? " IP" : " L2");
                auto out = run_assign(x, c, n, k, d, ip ? fk::Metric::InnerProduct : fk::Metric::L2);
                int64_t excused = expect_matches_reference(out, x, c, n, k, d, ip, what);
                EXPECT_LE(excused, n / 100) << what;
                total_excused += excused;
                total_points += n;
            }
        }
    }
    // true near-ties are rare on random data
    EXPECT_LE(total_excused * 1000, total_points) << total_excused << " excused points";
}

TEST(CpuFlashAssign, MatchesFloat64ReferenceOnClusteredDataLikeFaissIndexFlatL2) {
    // The realistic regime: points far from the origin and close to their
    // centroid, so ||x||^2 + ||c||^2 - 2 x.c cancels heavily. Here the fp32
    // dot-product error itself reaches ~1.3e-6 of ||x||^2 at d = 257, and
    // faiss::IndexFlatL2 (same sgemm) misassigns the same points; the tie
    // threshold is therefore 4e-6 here, not the 1e-6 of random data.
    const int64_t n = 777, k = 129;
    const double tie = 4e-6;
    for (int64_t d : {2, 40, 257}) {
        auto x = fk_test::blobs(n, d, 16, 77 + d, 0.05f);
        std::vector<float> c(x.begin(), x.begin() + k * d); // centroids = first k points
        auto out = run_assign(x, c, n, k, d, fk::Metric::L2);
        const std::string what = "blobs d=" + std::to_string(d);
        int64_t excused = expect_matches_reference(out, x, c, n, k, d, false, what, tie);
        EXPECT_LE(excused, n / 50) << what;
        for (int64_t i = 0; i < k; i++) {
            // a point that is itself a centroid is at distance ~0, never negative
            EXPECT_GE(out.distances[i], 0.f);
        }
        // FAISS itself: where it and we differ, both are within the tie
        faiss::IndexFlatL2 index(d);
        index.add(k, c.data());
        std::vector<float> dis(n);
        std::vector<faiss::Index::idx_t> I(n);
        index.search(n, x.data(), 1, dis.data(), I.data());
        auto ref = fk_test::reference_assign(x.data(), n, c.data(), k, d, false);
        for (int64_t i = 0; i < n; i++) {
            if (I[i] != out.labels[i]) {
                EXPECT_LT(ref.rel_gap[i], tie) << what << " point " << i;
            }
        }
    }
}

TEST(CpuFlashAssign, BlockedKernelMatchesReferenceKernel) {
    for (int64_t d : {5, 96}) {
        const int64_t n = 700, k = 530;
        auto x = fk_test::random_matrix(n, d, 31 + d);
        auto c = fk_test::random_matrix(k, d, 41 + d);
        for (auto metric : {fk::Metric::L2, fk::Metric::InnerProduct}) {
            bool ip = metric == fk::Metric::InnerProduct;
            auto blocked = run_assign(x, c, n, k, d, metric, 1, kn::AssignKernel::Tiled);
            auto plain = run_assign(x, c, n, k, d, metric, 1, kn::AssignKernel::Reference);
            // both agree with float64, so they agree with each other up to near-ties
            expect_matches_reference(plain, x, c, n, k, d, ip, "reference kernel");
            fk_test::RefAssign ref = fk_test::reference_assign(x.data(), n, c.data(), k, d, ip);
            int64_t differ = 0;
            for (int64_t i = 0; i < n; i++) {
                if (blocked.labels[i] != plain.labels[i]) {
                    differ++;
                    EXPECT_LT(ref.rel_gap[i], 1e-6) << "point " << i;
                }
            }
            EXPECT_LE(differ, 3);
        }
    }
}

// FAISS's IndexFlat search (k = 1) on the same points and centroids: the
// labels and distances it returns, for comparison bit for bit.
AssignOut faiss_search(const std::vector<float>& x, const std::vector<float>& c, int64_t n,
                       int64_t k, int64_t d, bool ip) {
    std::vector<float> dis(n);
    std::vector<faiss::Index::idx_t> I(n);
    if (ip) {
        faiss::IndexFlatIP index(d);
        index.add(k, c.data());
        index.search(n, x.data(), 1, dis.data(), I.data());
    } else {
        faiss::IndexFlatL2 index(d);
        index.add(k, c.data());
        index.search(n, x.data(), 1, dis.data(), I.data());
    }
    return {std::vector<int32_t>(I.begin(), I.end()), dis};
}

TEST(CpuFlashAssign, BitwiseEqualsFaissIndexFlatSearchOnEveryShape) {
    // Shapes that cross FAISS's blocks (4096 points, 1024 centroids), its BLAS
    // threshold (20 points), and rows that land in every micro-kernel panel
    // position; clustered data so near-ties are common. OpenBLAS's rounding
    // depends on the core type it dispatched to (CI runs this test under each).
    struct Shape {
        int64_t n, k, d;
    };
    for (Shape s : {Shape{5000, 1100, 24}, Shape{4097, 2049, 128}, Shape{19, 7, 33},
                    Shape{20, 20, 3}, Shape{777, 300, 100}}) {
        auto x = fk_test::blobs(s.n, s.d, 8, 500 + s.d, 0.05f);
        // centroids = the first k points, so near-ties abound
        std::vector<float> c(x.begin(), x.begin() + s.k * s.d);
        for (bool ip : {false, true}) {
            const std::string what = "n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
                                     " d=" + std::to_string(s.d) + (ip ? " IP" : " L2");
            auto ours = run_assign(x, c, s.n, s.k, s.d, ip ? fk::Metric::InnerProduct : fk::Metric::L2);
            auto ref = faiss_search(x, c, s.n, s.k, s.d, ip);
            for (int64_t i = 0; i < s.n; i++) {
                ASSERT_EQ(fk_test::float_bits(ours.distances[i]), fk_test::float_bits(ref.distances[i]))
                        << what << " point " << i;
                ASSERT_EQ(ours.labels[i], ref.labels[i]) << what << " point " << i;
            }
        }
    }
}

TEST(CpuFlashAssign, ResultDoesNotDependOnTheThreadCount) {
    const int64_t n = 9000, k = 1500, d = 40;
    auto x = fk_test::blobs(n, d, 12, 88, 0.05f);
    std::vector<float> c(x.begin(), x.begin() + k * d);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    auto one = run_assign(x, c, n, k, d, fk::Metric::L2);
    omp_set_num_threads(3);
    auto three = run_assign(x, c, n, k, d, fk::Metric::L2);
    omp_set_num_threads(saved);
    EXPECT_EQ(one.labels, three.labels);
    for (int64_t i = 0; i < n; i++) {
        ASSERT_EQ(fk_test::float_bits(one.distances[i]), fk_test::float_bits(three.distances[i])) << i;
    }
}

TEST(CpuFlashAssign, SmallShapesBelowOneTile) {
    // fewer points than threads, a single centroid, k > n
    struct Shape {
        int64_t n, k, d;
    };
    for (Shape s : {Shape{1, 1, 1}, Shape{7, 3, 5}, Shape{3, 40, 2}, Shape{33, 1, 9}}) {
        auto x = fk_test::random_matrix(s.n, s.d, 5 + s.n);
        auto c = fk_test::random_matrix(s.k, s.d, 6 + s.k);
        for (bool ip : {false, true}) {
            auto out = run_assign(x, c, s.n, s.k, s.d, ip ? fk::Metric::InnerProduct : fk::Metric::L2);
            expect_matches_reference(out, x, c, s.n, s.k, s.d, ip,
                                     "n=" + std::to_string(s.n) + " k=" + std::to_string(s.k));
        }
    }
}

TEST(CpuFlashAssign, BatchOfThreeEqualsThreeSeparateCalls) {
    const int64_t n = 301, k = 67, d = 19, B = 3;
    auto x = fk_test::random_matrix(B * n, d, 91);
    auto c = fk_test::random_matrix(B * k, d, 92);
    for (auto metric : {fk::Metric::L2, fk::Metric::InnerProduct}) {
        auto batched = run_assign(x, c, n, k, d, metric, B);
        for (int64_t b = 0; b < B; b++) {
            std::vector<float> xb(x.begin() + b * n * d, x.begin() + (b + 1) * n * d);
            std::vector<float> cb(c.begin() + b * k * d, c.begin() + (b + 1) * k * d);
            auto one = run_assign(xb, cb, n, k, d, metric);
            for (int64_t i = 0; i < n; i++) {
                ASSERT_EQ(batched.labels[b * n + i], one.labels[i]) << "b=" << b << " i=" << i;
                ASSERT_EQ(batched.distances[b * n + i], one.distances[i]) << "b=" << b << " i=" << i;
            }
        }
    }
}

TEST(CpuFlashAssign, DuplicateCentroidsTieToLowestIndex) {
    // Centroid j + k0 duplicates j (across centroid tiles), and 1 duplicates 0
    // (inside a tile): the label must always be the lower copy.
    const int64_t n = 600, k0 = 300, k = 2 * k0, d = 24;
    auto base = fk_test::random_matrix(k0, d, 123);
    std::copy(base.begin(), base.begin() + d, base.begin() + d); // row 1 = row 0
    std::vector<float> c(base);
    c.insert(c.end(), base.begin(), base.end());
    // half the points are exact copies of centroids 0 and 1, the rest random
    auto x = fk_test::random_matrix(n, d, 124);
    for (int64_t i = 0; i < n / 2; i++) {
        std::copy(base.begin(), base.begin() + d, x.begin() + i * d);
    }
    for (auto metric : {fk::Metric::L2, fk::Metric::InnerProduct}) {
        auto out = run_assign(x, c, n, k, d, metric);
        auto ref = fk_test::reference_assign(x.data(), n, base.data(), k0, d,
                                             metric == fk::Metric::InnerProduct);
        for (int64_t i = 0; i < n; i++) {
            ASSERT_EQ(out.labels[i], ref.labels[i]) << "point " << i;
            ASSERT_NE(out.labels[i], 1) << "point " << i << " took the second copy of centroid 0";
        }
    }
}

TEST(CpuFlashAssign, Float16OnCpuThrowsKernelErrorNamingFloat16) {
    std::vector<uint16_t> x(4 * 2, 0x3c00), c(2 * 2, 0x3c00);
    std::vector<float> cn(2, 2.f);
    std::vector<int32_t> labels(4);
    kn::AssignArgs a;
    a.x = x.data();
    a.dtype = fk::DType::Float16;
    a.n = 4;
    a.d = 2;
    a.centroids = c.data();
    a.centroid_norms = cn.data();
    a.k = 2;
    a.labels = labels.data();
    try {
        kn::flash_assign(fk::Place{fk::Backend::CPU}, a);
        FAIL() << "flash_assign accepted float16 on the CPU";
    } catch (const fk::KernelError& e) {
        EXPECT_NE(std::string(e.what()).find("float16"), std::string::npos) << e.what();
    }
}

TEST(CpuFlashAssign, HopperKernelOnCpuThrowsKernelErrorNamingCuda) {
    const int64_t n = 5, k = 2, d = 3;
    const auto x = fk_test::random_matrix(n, d, 1), c = fk_test::random_matrix(k, d, 2);
    try {
        run_assign(x, c, n, k, d, fk::Metric::L2, 1, kn::AssignKernel::Hopper);
        FAIL() << "the CPU backend accepted AssignKernel::Hopper";
    } catch (const fk::KernelError& e) {
        EXPECT_NE(std::string(e.what()).find("CUDA backend"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------- sort_inverse_update + finalize

TEST(CpuSortInverseUpdate, MeansMatchFloat64ComputationWeightedAndUnweighted) {
    const int64_t n = 2000, k = 37, d = 33;
    auto x = fk_test::random_matrix(n, d, 7);
    auto labels = random_labels(n, k, 8);
    auto w = fk_test::random_weights(n, 9);
    for (bool weighted : {false, true}) {
        auto u = run_update(x, n, d, labels, weighted ? w.data() : nullptr, k);
        std::vector<float> c(k * d, 0.f);
        run_finalize(u, k, d, 0, c);
        std::vector<double> s(k * d, 0.0), ws(k, 0.0);
        for (int64_t i = 0; i < n; i++) {
            double wi = weighted ? w[i] : 1.0;
            ws[labels[i]] += wi;
            for (int64_t t = 0; t < d; t++) {
                s[labels[i] * d + t] += wi * x[i * d + t];
            }
        }
        for (int64_t j = 0; j < k; j++) {
            ASSERT_NEAR(u.weight_sums[j], ws[j], 1e-5 * ws[j]);
            for (int64_t t = 0; t < d; t++) {
                double mean = s[j * d + t] / ws[j];
                // the sum of |x| bounds the cancellation in a mean of mixed signs
                ASSERT_NEAR(c[j * d + t], mean, 1e-5 * (std::fabs(mean) + 1.0))
                        << "j=" << j << " t=" << t << " weighted=" << weighted;
            }
        }
    }
}

TEST(CpuSortInverseUpdate, SumsBitwiseEqualFaissPointOrderLoop) {
    const int64_t n = 3001, k = 53, d = 29;
    auto x = fk_test::random_matrix(n, d, 17);
    auto labels = random_labels(n, k, 18);
    auto w = fk_test::random_weights(n, 19);
    for (bool weighted : {false, true}) {
        for (int64_t k_begin : {0, 5}) {
            const float* wp = weighted ? w.data() : nullptr;
            auto u = run_update(x, n, d, labels, wp, k, k_begin);
            std::vector<float> sums(k * d, 0.f), hassign(k, 0.f);
            faiss_order_sums(x.data(), n, d, labels.data(), wp, k, k_begin, sums.data(),
                             hassign.data());
            EXPECT_TRUE(bitwise_equal(u.sums, sums)) << "weighted=" << weighted;
            EXPECT_TRUE(bitwise_equal(u.weight_sums, hassign)) << "weighted=" << weighted;
            // finalize multiplies by the float reciprocal, as FAISS does
            std::vector<float> c(k * d, 0.f), expect(k * d, 0.f);
            run_finalize(u, k, d, k_begin, c);
            for (int64_t j = k_begin; j < k; j++) {
                float norm = 1 / hassign[j];
                for (int64_t t = 0; t < d; t++) {
                    expect[j * d + t] = sums[j * d + t] * norm;
                }
            }
            EXPECT_TRUE(bitwise_equal(c, expect)) << "weighted=" << weighted;
        }
    }
}

TEST(CpuSortInverseUpdate, FrozenRowsBelowKBeginAreUntouched) {
    const int64_t n = 500, k = 20, d = 6, k_begin = 7;
    auto x = fk_test::random_matrix(n, d, 21);
    auto labels = random_labels(n, k, 22);
    const float sentinel = 12345.f;
    auto u = run_update(x, n, d, labels, nullptr, k, k_begin, 1, sentinel);
    for (int64_t j = 0; j < k; j++) {
        if (j < k_begin) {
            EXPECT_EQ(u.weight_sums[j], sentinel) << j;
            for (int64_t t = 0; t < d; t++) {
                EXPECT_EQ(u.sums[j * d + t], sentinel) << j;
            }
        } else {
            EXPECT_NE(u.weight_sums[j], sentinel) << j;
        }
    }
    // finalize leaves frozen centroids alone too
    std::vector<float> c(k * d, -3.f);
    u.weight_sums.assign(k, 0.f); // all empty: every updated row becomes 0
    int32_t n_empty = -1;
    run_finalize(u, k, d, k_begin, c, &n_empty);
    EXPECT_EQ(n_empty, k - k_begin);
    for (int64_t j = 0; j < k; j++) {
        for (int64_t t = 0; t < d; t++) {
            EXPECT_EQ(c[j * d + t], j < k_begin ? -3.f : 0.f) << j;
        }
    }
}

TEST(CpuSortInverseUpdate, CountsEqualLabelHistogramForEveryCluster) {
    const int64_t n = 1234, k = 41, d = 3;
    auto x = fk_test::random_matrix(n, d, 23);
    auto labels = random_labels(n, k, 24);
    auto w = fk_test::random_weights(n, 25);
    std::vector<int32_t> hist(k, 0);
    for (int32_t l : labels) {
        hist[l]++;
    }
    // weights do not change counts; counts cover frozen clusters too
    auto u = run_update(x, n, d, labels, w.data(), k, 4);
    EXPECT_EQ(u.counts, hist);
}

TEST(CpuSortInverseUpdate, EmptyClustersGiveZeroRowsAndAreCounted) {
    const int64_t n = 400, k = 12, d = 8;
    auto x = fk_test::random_matrix(n, d, 27);
    auto labels = random_labels(n, k, 28);
    for (auto& l : labels) {
        if (l == 3 || l == 8 || l == 11) {
            l = 0;
        }
    }
    auto u = run_update(x, n, d, labels, nullptr, k);
    std::vector<float> c(k * d, 9.f);
    int32_t n_empty = -1;
    float max_shift = -1;
    run_finalize(u, k, d, 0, c, &n_empty, &max_shift);
    EXPECT_EQ(n_empty, 3);
    for (int64_t j : {3, 8, 11}) {
        EXPECT_EQ(u.counts[j], 0);
        EXPECT_EQ(u.weight_sums[j], 0.f);
        for (int64_t t = 0; t < d; t++) {
            EXPECT_EQ(c[j * d + t], 0.f);
        }
    }
    EXPECT_GT(max_shift, 0.f);
}

TEST(CpuFinalizeCentroids, MaxShiftIsLargestSquaredMoveOfNonEmptyClusters) {
    const int64_t n = 300, k = 9, d = 4;
    auto x = fk_test::random_matrix(n, d, 29);
    auto labels = random_labels(n, k, 30);
    labels[0] = 2; // cluster 2 keeps its points; cluster 5 is emptied
    for (auto& l : labels) {
        l = l == 5 ? 2 : l;
    }
    auto u = run_update(x, n, d, labels, nullptr, k);
    auto old = fk_test::random_matrix(k, d, 31);
    for (int64_t t = 0; t < d; t++) {
        old[5 * d + t] = 1e3f; // an empty cluster's "move" to 0 must not count
    }
    std::vector<float> c(old);
    int32_t n_empty = -1;
    float max_shift = -1;
    run_finalize(u, k, d, 0, c, &n_empty, &max_shift);
    double expect = 0;
    for (int64_t j = 0; j < k; j++) {
        if (j == 5) {
            continue;
        }
        double s = 0;
        for (int64_t t = 0; t < d; t++) {
            double delta = double(c[j * d + t]) - old[j * d + t];
            s += delta * delta;
        }
        expect = std::max(expect, s);
    }
    EXPECT_EQ(n_empty, 1);
    EXPECT_NEAR(max_shift, expect, 1e-6 * expect);
    EXPECT_LT(max_shift, 100.f);
}

// finalize's optional norms are row_norms of the new rows (bitwise), for
// every problem of a batch; frozen rows keep theirs; typed rows are refused
// on the CPU (its kernels are float32).
TEST(CpuFinalizeCentroids, NormsAreRowNormsOfTheNewRowsAndTypedIsRefused) {
    const int64_t n = 400, k = 9, d = 6, B = 2, k_begin = 2;
    auto x = fk_test::random_matrix(B * n, d, 36);
    auto labels = random_labels(B * n, k, 37);
    auto u = run_update(x, n, d, labels, nullptr, k, k_begin, B);
    std::vector<float> c = fk_test::random_matrix(B * k, d, 38);
    std::vector<float> norms(B * k, -1.0f);
    kn::FinalizeArgs f = finalize_args(u, k, d, k_begin, c);
    f.batch = B;
    f.norms = norms.data();
    kn::finalize_centroids(kCpu, f);
    std::vector<float> want(B * k);
    kn::row_norms(kCpu, c.data(), fk::DType::Float32, k, d, want.data(), B);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t j = 0; j < k; j++) {
            const int64_t row = b * k + j;
            if (j < k_begin) {
                EXPECT_EQ(norms[row], -1.0f) << "frozen row " << row;
            } else {
                EXPECT_EQ(fk_test::float_bits(norms[row]), fk_test::float_bits(want[row])) << row;
                EXPECT_GT(norms[row], 0.0f) << row;
            }
        }
    }
    std::vector<uint16_t> typed(B * k * d);
    f.typed_dtype = fk::DType::Float16;
    f.typed = typed.data();
    EXPECT_THROW(kn::finalize_centroids(kCpu, f), fk::KernelError);
}

TEST(CpuSortInverseUpdate, BatchOfThreeEqualsThreeSeparateCalls) {
    const int64_t n = 250, k = 11, d = 7, B = 3;
    auto x = fk_test::random_matrix(B * n, d, 33);
    auto labels = random_labels(B * n, k, 34);
    auto w = fk_test::random_weights(B * n, 35);
    auto batched = run_update(x, n, d, labels, w.data(), k, 2, B);
    std::vector<float> c(B * k * d, 1.f);
    std::vector<int32_t> n_empty(B, -1);
    std::vector<float> shift(B, -1);
    {
        kn::FinalizeArgs f;
        f.sums = batched.sums.data();
        f.weight_sums = batched.weight_sums.data();
        f.k = k;
        f.d = d;
        f.k_begin = 2;
        f.batch = B;
        f.centroids = c.data();
        f.n_empty = n_empty.data();
        f.max_shift = shift.data();
        kn::finalize_centroids(kCpu, f);
    }
    for (int64_t b = 0; b < B; b++) {
        std::vector<float> xb(x.begin() + b * n * d, x.begin() + (b + 1) * n * d);
        std::vector<int32_t> lb(labels.begin() + b * n, labels.begin() + (b + 1) * n);
        auto one = run_update(xb, n, d, lb, w.data() + b * n, k, 2);
        std::vector<float> sb(batched.sums.begin() + b * k * d,
                              batched.sums.begin() + (b + 1) * k * d);
        std::vector<float> wb(batched.weight_sums.begin() + b * k,
                              batched.weight_sums.begin() + (b + 1) * k);
        std::vector<int32_t> cb(batched.counts.begin() + b * k, batched.counts.begin() + (b + 1) * k);
        EXPECT_TRUE(bitwise_equal(sb, one.sums)) << b;
        EXPECT_TRUE(bitwise_equal(wb, one.weight_sums)) << b;
        EXPECT_EQ(cb, one.counts) << b;
        std::vector<float> c1(k * d, 1.f), cbat(c.begin() + b * k * d, c.begin() + (b + 1) * k * d);
        int32_t e1 = -1;
        float s1 = -1;
        run_finalize(one, k, d, 2, c1, &e1, &s1);
        EXPECT_TRUE(bitwise_equal(cbat, c1)) << b;
        EXPECT_EQ(n_empty[b], e1);
        EXPECT_EQ(shift[b], s1);
    }
}

TEST(CpuSortInverseUpdate, OutOfRangeLabelThrowsKernelError) {
    const int64_t n = 10, k = 4, d = 2;
    auto x = fk_test::random_matrix(n, d, 36);
    std::vector<int32_t> labels(n, 1);
    labels[6] = int32_t(k);
    EXPECT_THROW(run_update(x, n, d, labels, nullptr, k), fk::KernelError);
    labels[6] = -1;
    EXPECT_THROW(run_update(x, n, d, labels, nullptr, k), fk::KernelError);
}

// ---------------------------------------------------------------- split_empty_clusters

TEST(CpuSplitEmptyClusters, OneEmptyClusterBecomesAPerturbedCopyOfItsDonor) {
    const int64_t k = 16, d = 5, n = 1000;
    auto c = fk_test::random_matrix(k, d, 41);
    std::vector<float> ws(k);
    for (int64_t j = 0; j < k; j++) {
        ws[j] = float(10 + 7 * j);
    }
    const int64_t ci = 9;
    ws[ci] = 0;
    std::fill(c.begin() + ci * d, c.begin() + (ci + 1) * d, 0.f);
    const auto before = c;
    const auto ws_before = ws;
    EXPECT_EQ(kn::split_empty_clusters(d, k, n, 0, ws.data(), c.data()), 1);
    int64_t donor = -1;
    for (int64_t j = 0; j < k; j++) {
        if (j != ci && ws[j] != ws_before[j]) {
            EXPECT_EQ(donor, -1) << "two donors";
            donor = j;
        }
    }
    ASSERT_GE(donor, 0);
    // the weight is halved between the two, nothing lost
    EXPECT_EQ(ws[ci] + ws[donor], ws_before[donor]);
    EXPECT_GT(ws[ci], 0.f);
    EXPECT_GT(ws[donor], 0.f);
    // even coordinates: new * (1 + 1/1024), donor * (1 - 1/1024); odd: reversed
    for (int64_t t = 0; t < d; t++) {
        const double x0 = before[donor * d + t];
        const double up = 1 + 1 / 1024., down = 1 - 1 / 1024.;
        EXPECT_EQ(c[ci * d + t], float(x0 * (t % 2 == 0 ? up : down))) << t;
        EXPECT_EQ(c[donor * d + t], float(x0 * (t % 2 == 0 ? down : up))) << t;
    }
    // every other row is untouched
    for (int64_t j = 0; j < k; j++) {
        if (j != ci && j != donor) {
            for (int64_t t = 0; t < d; t++) {
                EXPECT_EQ(c[j * d + t], before[j * d + t]);
            }
        }
    }
}

TEST(CpuSplitEmptyClusters, NoEmptyClusterLeftAndEachIsNearACopyOfAnother) {
    const int64_t k = 16, d = 5, n = 1000;
    auto c = fk_test::random_matrix(k, d, 42);
    std::vector<float> ws(k);
    for (int64_t j = 0; j < k; j++) {
        ws[j] = float(10 + 7 * j);
    }
    const std::vector<int64_t> empty = {2, 9, 15};
    for (int64_t j : empty) {
        ws[j] = 0;
        std::fill(c.begin() + j * d, c.begin() + (j + 1) * d, 0.f);
    }
    const float total = std::accumulate(ws.begin(), ws.end(), 0.f);
    EXPECT_EQ(kn::split_empty_clusters(d, k, n, 0, ws.data(), c.data()), int(empty.size()));
    for (int64_t j = 0; j < k; j++) {
        EXPECT_GT(ws[j], 0.f) << j;
    }
    EXPECT_FLOAT_EQ(std::accumulate(ws.begin(), ws.end(), 0.f), total);
    for (int64_t ci : empty) {
        // a donor split again later moves by another 1/1024 at most
        bool has_twin = false;
        for (int64_t j = 0; j < k && !has_twin; j++) {
            if (j == ci) {
                continue;
            }
            bool close = true, identical = true;
            for (int64_t t = 0; t < d; t++) {
                float a = c[ci * d + t], b = c[j * d + t];
                close = close && std::fabs(a - b) <= 4.f / 1024 * std::fabs(b);
                identical = identical && a == b;
            }
            has_twin = close && !identical;
        }
        EXPECT_TRUE(has_twin) << "cluster " << ci << " is not a perturbed copy of another";
    }
}

TEST(CpuSplitEmptyClusters, SameInputGivesSameResult) {
    const int64_t k = 40, d = 9, n = 500;
    auto c0 = fk_test::random_matrix(k, d, 43);
    std::vector<float> ws0(k);
    std::mt19937 rng(44);
    for (int64_t j = 0; j < k; j++) {
        ws0[j] = (rng() % 3 == 0) ? 0.f : float(1 + rng() % 30);
    }
    auto c1 = c0, c2 = c0, ws1 = ws0, ws2 = ws0;
    int s1 = kn::split_empty_clusters(d, k, n, 3, ws1.data(), c1.data());
    int s2 = kn::split_empty_clusters(d, k, n, 3, ws2.data(), c2.data());
    EXPECT_GT(s1, 0);
    EXPECT_EQ(s1, s2);
    EXPECT_TRUE(bitwise_equal(c1, c2));
    EXPECT_TRUE(bitwise_equal(ws1, ws2));
    // the frozen prefix is never used as a donor nor overwritten
    for (int64_t j = 0; j < 3; j++) {
        EXPECT_EQ(ws1[j], ws0[j]);
        for (int64_t t = 0; t < d; t++) {
            EXPECT_EQ(c1[j * d + t], c0[j * d + t]);
        }
    }
}

TEST(CpuSplitEmptyClusters, FrozenPrefixActsAsIfAbsent) {
    // FAISS offsets both arrays by k_frozen and uses the reduced k everywhere,
    // including the draw probability (w - 1) / (n - k): splitting with
    // k_begin = 20 equals splitting the 20 last clusters alone.
    const int64_t k = 40, k_begin = 20, d = 3, n = 60;
    auto c0 = fk_test::random_matrix(k, d, 46);
    std::vector<float> ws0(k);
    std::mt19937 rng(47);
    for (int64_t j = 0; j < k; j++) {
        ws0[j] = (j % 3 == 1) ? 0.f : float(1 + rng() % 5);
    }
    auto c1 = c0, c2 = c0, ws1 = ws0, ws2 = ws0;
    int s1 = kn::split_empty_clusters(d, k, n, k_begin, ws1.data(), c1.data());
    int s2 = kn::split_empty_clusters(d, k - k_begin, n, 0, ws2.data() + k_begin,
                                      c2.data() + k_begin * d);
    EXPECT_GT(s1, 3);
    EXPECT_EQ(s1, s2);
    EXPECT_TRUE(bitwise_equal(c1, c2));
    EXPECT_TRUE(bitwise_equal(ws1, ws2));
}

TEST(CpuSplitEmptyClusters, NothingToSplitThrowsInsteadOfLoopingForever) {
    const int64_t k = 4, d = 2, n = 10;
    auto c = fk_test::random_matrix(k, d, 45);
    std::vector<float> ws = {0.f, 0.5f, 1.f, 0.75f}; // no weight above 1
    EXPECT_THROW(kn::split_empty_clusters(d, k, n, 0, ws.data(), c.data()), fk::KernelError);
}

// The engine's way (plan on the weights, apply to a block of only the touched
// rows, renumbered, then copy them back) gives bitwise the centroids and
// weights of the split on all k rows, donors split twice included.
TEST(CpuSplitEmptyClusters, PlanAppliedToTheTouchedRowsEqualsTheFullSplit) {
    const int64_t k = 500, d = 7, n = 2000, k_begin = 20;
    auto c_full = fk_test::random_matrix(k, d, 46);
    std::vector<float> ws(k);
    for (int64_t j = 0; j < k; j++) {
        ws[j] = float(1 + (j * 37) % 11);
    }
    for (int64_t j = 25; j < k; j += 9) {
        ws[j] = 0;  // 53 empty clusters: some donors are drawn twice
    }
    auto c_rows = c_full;
    auto ws_full = ws, ws_plan = ws;
    const int nsplit = kn::split_empty_clusters(d, k, n, k_begin, ws_full.data(), c_full.data());

    std::vector<kn::ClusterSplit> splits = kn::plan_cluster_splits(k, n, k_begin, ws_plan.data());
    ASSERT_EQ(int(splits.size()), nsplit);
    EXPECT_EQ(ws_plan, ws_full);
    const std::vector<kn::ClusterSplit> absolute = splits;
    const std::vector<int64_t> ids = kn::renumber_touched_rows(splits);
    // each touched row once, and the renumbered splits name the same rows
    EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size());
    for (size_t i = 0; i < splits.size(); i++) {
        EXPECT_EQ(ids[splits[i].empty], absolute[i].empty);
        EXPECT_EQ(ids[splits[i].source], absolute[i].source);
    }
    std::vector<float> block(ids.size() * d);
    kn::gather_rows(kCpu, c_rows.data(), fk::DType::Float32, k, d, ids.data(), int64_t(ids.size()),
                    block.data());
    kn::apply_cluster_splits(d, splits, block.data());
    kn::scatter_rows(kCpu, block.data(), int64_t(ids.size()), d, ids.data(), k, c_rows.data());
    EXPECT_EQ(0, std::memcmp(c_rows.data(), c_full.data(), c_full.size() * sizeof(float)));
}

// The block generator's words are std::mt19937's and FAISS's generator's
// (seed 1234, FAISS's split seed; and another seed), across many blocks.
TEST(Mt19937Blocks, WordsAreStdMt19937AndFaissRandomGenerators) {
    for (uint32_t seed : {1234u, 987654321u}) {
        kn::Mt19937Blocks blocks(seed);
        std::mt19937 std_engine(seed);
        faiss::RandomGenerator faiss_rng(int64_t{seed});
        int64_t differ = 0;
        for (int i = 0; i < 3 * 1000 * 1000; i++) {
            const uint32_t w = blocks.next();
            differ += w != uint32_t(std_engine());
            differ += w != uint32_t(faiss_rng.mt());
        }
        EXPECT_EQ(differ, 0) << "seed " << seed;
    }
}

// The split's threshold at its edges: the word just below it passes FAISS's
// test `rand_float() < p` and the threshold itself does not, for weights
// whose p * 2^32 falls between words, on a word, and past every word.
TEST(CpuSplitEmptyClusters, DrawThresholdSitsExactlyWhereFaissTestTurns) {
    // rand_float() of a given word, as faiss::RandomGenerator computes it
    const auto r = [](uint64_t word) { return (unsigned long)word / float(std::mt19937::max()); };
    std::mt19937_64 rng(52);
    std::vector<float> weights = {0.f, 0.5f, 1.f, 1.0000001f, 1.5f, 2.f, 3.f, 1e9f, 3e38f};
    for (int i = 0; i < 2000; i++) {
        weights.push_back(1.f + float(rng() % 100000) / float(1 + rng() % 5000));
    }
    for (const size_t nk : {size_t(1), size_t(3), size_t(1000), size_t(983040), size_t(1) << 40}) {
        for (const float w : weights) {
            const float p = (w - 1.0) / (float)nk; // FAISS's p, with n - k = nk
            const uint64_t below = kn::split_accept_below(w, nk + 5, 5);
            ASSERT_LE(below, uint64_t(1) << 32);
            if (below > 0) {
                ASSERT_TRUE(r(below - 1) < p) << "weight " << w << ", n - k " << nk;
            }
            if (below < (uint64_t(1) << 32)) {
                ASSERT_FALSE(r(below) < p) << "weight " << w << ", n - k " << nk;
            }
        }
    }
}

/// FAISS 1.7.3's split draw loop as FAISS writes it (faiss/Clustering.cpp,
/// split_clusters): the splits it makes and the weights it leaves.
std::vector<kn::ClusterSplit> faiss_split_plan(size_t k, size_t n, float* hassign) {
    std::vector<kn::ClusterSplit> splits;
    faiss::RandomGenerator rng(1234);
    for (size_t ci = 0; ci < k; ci++) {
        if (hassign[ci] == 0) {
            size_t cj;
            for (cj = 0; 1; cj = (cj + 1) % k) {
                float p = (hassign[cj] - 1.0) / (float)(n - k);
                float r = rng.rand_float();
                if (r < p) {
                    break;
                }
            }
            splits.push_back({int64_t(ci), int64_t(cj)});
            hassign[ci] = hassign[cj] / 2;
            hassign[cj] -= hassign[ci];
        }
    }
    return splits;
}

// The plan tests each draw on the raw word against a threshold per cluster;
// that must accept exactly FAISS's `rand_float() < p`. Weights of every kind:
// counts, fractions (some clusters undrawable), weights far above n - k
// (every draw accepted), many empty clusters over a large k.
TEST(CpuSplitEmptyClusters, PlanDrawsExactlyAsFaissDoes) {
    std::mt19937_64 rng(51);
    struct Shape {
        size_t k, n;
        int kind;
    };
    const Shape shapes[] = {{50, 1000, 0},
                            {50, 1000, 1},
                            {50, 1000, 2},
                            {4096, 65536, 0},
                            {3000, 10000, 1}};
    for (const Shape& s : shapes) {
        SCOPED_TRACE(std::to_string(s.k) + " clusters, kind " + std::to_string(s.kind));
        std::vector<float> w(s.k);
        for (size_t j = 0; j < s.k; j++) {
            switch (s.kind) {
                case 0: // counts
                    w[j] = float(rng() % 40);
                    break;
                case 1: // fractional weights, some <= 1
                    w[j] = float(rng() % 1000) / 97.f;
                    break;
                default: // a few huge weights
                    w[j] = j % 7 == 0 ? 1e9f : float(rng() % 3);
            }
            if (rng() % 3 == 0) {
                w[j] = 0;
            }
        }
        w[s.k / 2] = 5e3f; // something to draw
        std::vector<float> w_ref = w, w_plan = w;
        const std::vector<kn::ClusterSplit> want = faiss_split_plan(s.k, s.n, w_ref.data());
        const std::vector<kn::ClusterSplit> got =
                kn::plan_cluster_splits(int64_t(s.k), int64_t(s.n), 0, w_plan.data());
        ASSERT_GT(want.size(), 0u);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < want.size(); i++) {
            ASSERT_EQ(got[i].empty, want[i].empty) << "split " << i;
            ASSERT_EQ(got[i].source, want[i].source) << "split " << i;
        }
        EXPECT_TRUE(bitwise_equal(w_plan, w_ref));
    }
}

TEST(CpuScatterRows, WritesTheRowsAndRejectsBadIds) {
    const int64_t n = 30, d = 5;
    auto x = fk_test::random_matrix(n, d, 47);
    const auto before = x;
    const std::vector<int64_t> ids = {29, 0, 11};
    auto rows = fk_test::random_matrix(int64_t(ids.size()), d, 48);
    kn::scatter_rows(kCpu, rows.data(), int64_t(ids.size()), d, ids.data(), n, x.data());
    for (int64_t r = 0; r < n; r++) {
        const auto at = std::find(ids.begin(), ids.end(), r);
        const float* want = at == ids.end() ? &before[r * d] : &rows[(at - ids.begin()) * d];
        for (int64_t t = 0; t < d; t++) {
            EXPECT_EQ(x[r * d + t], want[t]) << "row " << r;
        }
    }
    const std::vector<int64_t> twice = {3, 3}, outside = {30};
    EXPECT_THROW(kn::scatter_rows(kCpu, rows.data(), 2, d, twice.data(), n, x.data()), fk::KernelError);
    EXPECT_THROW(kn::scatter_rows(kCpu, rows.data(), 1, d, outside.data(), n, x.data()), fk::KernelError);
}

// ------------------------------------------ the whole update against faiss::Clustering

// One FAISS iteration from a known start (labels from FAISS's own IndexFlatL2)
// must give bitwise the same centroids and split count as our update,
// finalize, split and post-process kernels: the claim that the CPU backend
// reproduces FAISS.
struct FaissCase {
    bool weighted;
    int n_input;   ///< centroids given as input (the rest sampled by FAISS)
    bool frozen;   ///< input centroids frozen
    bool spherical;
    bool expect_split;
};

void PrintTo(const FaissCase& p, std::ostream* os) {
    *os << "{weighted=" << p.weighted << " n_input=" << p.n_input << " frozen=" << p.frozen
        << " spherical=" << p.spherical << "}";
}

class CpuUpdateVsFaissClustering : public ::testing::TestWithParam<FaissCase> {};

TEST_P(CpuUpdateVsFaissClustering, OneIterationBitwiseEqualsFaiss) {
    const FaissCase p = GetParam();
    const int64_t d = 6, k = 10, n_distinct = 5, n = 200;
    // only 5 distinct points: sampled initial centroids repeat, so ties leave
    // clusters empty and FAISS splits them
    auto distinct = fk_test::random_matrix(n_distinct, d, 51);
    std::vector<float> x(n * d);
    for (int64_t i = 0; i < n; i++) {
        int64_t s = (i * 7 + i / 3) % n_distinct;
        std::copy(distinct.begin() + s * d, distinct.begin() + (s + 1) * d, x.begin() + i * d);
    }
    auto w = fk_test::random_weights(n, 52);
    for (auto& v : w) {
        v += 1.f; // keeps every drawn donor's weight above 1
    }
    const float* wp = p.weighted ? w.data() : nullptr;
    auto given = fk_test::random_matrix(p.n_input, d, 53);
    for (int i = 0; i < p.n_input && i < 2; i++) {
        for (int64_t t = 0; t < d; t++) {
            given[i * d + t] += 50.f; // far from every point: stays empty
        }
    }

    faiss::ClusteringParameters cp;
    cp.niter = 1;
    cp.min_points_per_centroid = 1;
    cp.frozen_centroids = p.frozen;
    cp.spherical = p.spherical;
    faiss::Clustering clus(int(d), int(k), cp);
    clus.centroids = given;
    faiss::IndexFlatL2 faiss_index(d);
    clus.train(n, x.data(), faiss_index, wp);

    // our side: FAISS's initialisation, FAISS's labels, our kernels
    std::vector<float> c(k * d);
    std::copy(given.begin(), given.end(), c.begin());
    std::vector<int> perm(n);
    faiss::rand_perm(perm.data(), n, cp.seed + 1);
    for (int64_t i = p.n_input; i < k; i++) {
        std::copy(x.begin() + perm[i] * d, x.begin() + (perm[i] + 1) * d, c.begin() + i * d);
    }
    kn::postprocess_centroids(kCpu, c.data(), k, d, p.spherical, false);
    faiss::IndexFlatL2 index(d);
    index.add(k, c.data());
    std::vector<float> dis(n);
    std::vector<faiss::Index::idx_t> I(n);
    index.search(n, x.data(), 1, dis.data(), I.data());
    std::vector<int32_t> labels(I.begin(), I.end());

    const int64_t k_begin = p.frozen ? p.n_input : 0;
    auto u = run_update(x, n, d, labels, wp, k, k_begin);
    run_finalize(u, k, d, k_begin, c);
    int nsplit = kn::split_empty_clusters(d, k, n, k_begin, u.weight_sums.data(), c.data());
    kn::postprocess_centroids(kCpu, c.data(), k, d, p.spherical, false);

    ASSERT_EQ(clus.iteration_stats.size(), 1u);
    EXPECT_EQ(nsplit, clus.iteration_stats[0].nsplit);
    if (p.expect_split) {
        EXPECT_GT(nsplit, 0);
    }
    EXPECT_TRUE(bitwise_equal(c, clus.centroids));
    for (int64_t i = 0; i < k * d; i++) {
        ASSERT_EQ(c[i], clus.centroids[i]) << "value " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(
        CpuFaiss,
        CpuUpdateVsFaissClustering,
        ::testing::Values(FaissCase{false, 0, false, false, true},
                          FaissCase{true, 0, false, false, true},
                          FaissCase{false, 3, true, false, true},
                          FaissCase{true, 3, true, false, true},
                          FaissCase{false, 10, false, false, true},
                          FaissCase{false, 0, false, true, true},
                          FaissCase{true, 4, false, true, true}),
        [](const ::testing::TestParamInfo<FaissCase>& info) {
            const FaissCase& p = info.param;
            return std::string(p.weighted ? "weighted" : "unweighted") + "_input" +
                   std::to_string(p.n_input) + (p.frozen ? "_frozen" : "") +
                   (p.spherical ? "_spherical" : "");
        });

// ---------------------------------------------------------------- postprocess

TEST(CpuPostprocessCentroids, SphericalRowsHaveUnitNormAndZeroRowsStayZero) {
    const int64_t k = 33, d = 70;
    auto c = fk_test::random_matrix(k, d, 61);
    for (auto& v : c) {
        v *= 37.f;
    }
    std::fill(c.begin() + 4 * d, c.begin() + 5 * d, 0.f);
    auto before = c;
    kn::postprocess_centroids(kCpu, c.data(), k, d, true, false);
    for (int64_t j = 0; j < k; j++) {
        double s = 0;
        for (int64_t t = 0; t < d; t++) {
            s += double(c[j * d + t]) * c[j * d + t];
        }
        if (j == 4) {
            EXPECT_EQ(s, 0.0);
        } else {
            EXPECT_NEAR(s, 1.0, 1e-5) << j;
            // same direction
            EXPECT_GT(c[j * d] * before[j * d], 0.f);
        }
    }
}

TEST(CpuPostprocessCentroids, RoundToIntGivesNearestIntegers) {
    const int64_t k = 20, d = 13;
    auto c = fk_test::random_matrix(k, d, 62);
    for (auto& v : c) {
        v *= 10.f;
    }
    auto before = c;
    kn::postprocess_centroids(kCpu, c.data(), k, d, false, true);
    for (size_t i = 0; i < c.size(); i++) {
        EXPECT_EQ(c[i], std::nearbyint(c[i]));
        EXPECT_LE(std::fabs(c[i] - before[i]), 0.5f);
    }
}

// ---------------------------------------------------------------- gather_rows, iteration_stats

TEST(CpuGatherRows, CopiesTheSelectedRowsInOrder) {
    const int64_t n = 50, d = 7;
    auto x = fk_test::random_matrix(n, d, 71);
    std::vector<int64_t> ids = {49, 0, 17, 17, 3};
    std::vector<float> out(ids.size() * d, -1.f);
    kn::gather_rows(kCpu, x.data(), fk::DType::Float32, n, d, ids.data(), int64_t(ids.size()),
                    out.data());
    for (size_t i = 0; i < ids.size(); i++) {
        for (int64_t t = 0; t < d; t++) {
            EXPECT_EQ(out[i * d + t], x[ids[i] * d + t]);
        }
    }
    ids[2] = n;
    EXPECT_THROW(kn::gather_rows(kCpu, x.data(), fk::DType::Float32, n, d, ids.data(),
                                 int64_t(ids.size()), out.data()),
                 fk::KernelError);
}

// Per problem: the distances summed in index order in double, and the sum and
// sum of squares of the cluster sizes, exactly.
TEST(CpuIterationStats, EqualsInOrderDoubleSumsPerProblem) {
    const int64_t n = 100001, k = 37, B = 3;
    auto v = fk_test::random_matrix(B, n, 72);
    std::vector<int32_t> counts(k * B);
    for (size_t j = 0; j < counts.size(); j++) {
        counts[j] = int32_t((j * 7919) % 5003);
    }
    std::vector<double> got(3 * B, -1);
    kn::iteration_stats(kCpu, v.data(), n, counts.data(), k, B, got.data());
    for (int64_t b = 0; b < B; b++) {
        double s = 0, c = 0, c2 = 0;
        for (int64_t i = 0; i < n; i++) {
            s += v[b * n + i];
        }
        for (int64_t j = 0; j < k; j++) {
            c += counts[b * k + j];
            c2 += double(counts[b * k + j]) * counts[b * k + j];
        }
        EXPECT_EQ(got[3 * b], s) << "b=" << b;
        EXPECT_EQ(got[3 * b + 1], c) << "b=" << b;
        EXPECT_EQ(got[3 * b + 2], c2) << "b=" << b;
    }
    // no counts: the count sums are 0
    kn::iteration_stats(kCpu, v.data(), n, nullptr, k, 1, got.data());
    EXPECT_EQ(got[1], 0.0);
    EXPECT_EQ(got[2], 0.0);
    EXPECT_THROW(kn::iteration_stats(kCpu, v.data(), n, counts.data(), k, B, nullptr), fk::KernelError);
}
