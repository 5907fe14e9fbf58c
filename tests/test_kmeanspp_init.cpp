// Tests of kernels::kmeanspp_init on the CPU (kernels/cpu/kmeanspp_init.cpp)
// against a plain float64 replay of the semantics in <flashkmeans/kernels.h>,
// and of the argument checks in kernels/dispatch.cpp.
#include <flashkmeans/kernels.h>

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

namespace fk = flashkmeans;
namespace kn = flashkmeans::kernels;

namespace {

const fk::Place kCpu{fk::Backend::CPU};

using fk_test::small_ints;
using fk_test::uniform_draws;

struct Seeded {
    std::vector<float> centroids; // k x d
    std::vector<int64_t> picks;   // k - n_given
};

/// The arguments of one CPU call (no given rows, no picks).
kn::KMeansPPArgs cpu_args(const std::vector<float>& x, int64_t n, int64_t d, int64_t k,
                          const std::vector<double>& draws, float* centroids) {
    kn::KMeansPPArgs a;
    a.x = x.data();
    a.n = n;
    a.d = d;
    a.k = k;
    a.draws = draws.data();
    a.centroids = centroids;
    return a;
}

/// kmeanspp_init on the CPU; `given` holds the first n_given rows.
Seeded run_kpp(const std::vector<float>& x, int64_t n, int64_t d, int64_t k,
               const std::vector<float>& given, const std::vector<double>& draws) {
    const int64_t n_given = int64_t(given.size()) / d;
    Seeded s{given, std::vector<int64_t>(k - n_given, -7)};
    s.centroids.resize(k * d, std::numeric_limits<float>::quiet_NaN());
    kn::KMeansPPArgs a = cpu_args(x, n, d, k, draws, s.centroids.data());
    a.n_given = n_given;
    a.picked = s.picks.data();
    kn::kmeanspp_init(kCpu, a);
    return s;
}

/// The semantics of the header, written plainly in float64: a sequential
/// prefix over every point for each new row.
std::vector<int64_t> replay(const std::vector<float>& x, int64_t n, int64_t d, int64_t k,
                            const std::vector<float>& given, const std::vector<double>& draws) {
    const int64_t n_given = int64_t(given.size()) / d;
    std::vector<double> D(n, std::numeric_limits<double>::infinity());
    auto add_row = [&](const float* c) {
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t t = 0; t < d; t++) {
                const double diff = double(x[i * d + t]) - double(c[t]);
                s += diff * diff;
            }
            D[i] = std::min(D[i], s);
        }
    };
    for (int64_t g = 0; g < n_given; g++) {
        add_row(given.data() + g * d);
    }
    auto uniform = [&](double u) { return std::min(n - 1, int64_t(std::floor(u * double(n)))); };
    std::vector<int64_t> picks;
    for (int64_t j = n_given; j < k; j++) {
        const double u = draws[j - n_given];
        int64_t pick = -1;
        double total = 0;
        for (int64_t i = 0; j > 0 && i < n; i++) {
            total += D[i];
        }
        if (j == 0 || total == 0) {
            pick = uniform(u);
        } else {
            const double r = u * total;
            double prefix = 0;
            for (int64_t i = 0; i < n && pick < 0; i++) {
                prefix += D[i];
                if (prefix > r && D[i] > 0) {
                    pick = i;
                }
            }
            for (int64_t i = n - 1; pick < 0; i--) {
                if (D[i] > 0) {
                    pick = i;
                }
            }
        }
        picks.push_back(pick);
        add_row(x.data() + pick * d);
    }
    return picks;
}

TEST(CpuKMeansPPInit, SmallIntegerDataPicksEqualFloat64Replay) {
    struct Case { int64_t n, d, k, n_given; };
    // d = 1 has 17 distinct values: k = 25 runs into the total == 0 branch;
    // n = 20011 spans several blocks of the blocked prefix
    for (Case c : {Case{3001, 7, 40, 0}, Case{3001, 7, 40, 6}, Case{20011, 3, 30, 0},
                   Case{9000, 1, 25, 4}, Case{1, 5, 3, 0}}) {
        const auto x = small_ints(c.n, c.d, 100 + c.n + c.d);
        const auto given = small_ints(c.n_given, c.d, 7);
        const auto draws = uniform_draws(c.k - c.n_given, 200 + c.k);
        const Seeded s = run_kpp(x, c.n, c.d, c.k, given, draws);
        const std::string what = "n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) +
                                 " n_given=" + std::to_string(c.n_given);
        EXPECT_EQ(s.picks, replay(x, c.n, c.d, c.k, given, draws)) << what;
        EXPECT_TRUE(std::equal(given.begin(), given.end(), s.centroids.begin()))
                << what << ": given rows changed";
        EXPECT_EQ(fk_test::first_row_not_its_pick(s.centroids, x, c.d, c.n_given, s.picks), -1)
                << what;
    }
}

TEST(CpuKMeansPPInit, RandomFloatPicksAreDistinctPointsCopiedExactlyAndRepeatable) {
    const int64_t n = 9000, d = 16, k = 64;
    const auto x = fk_test::random_matrix(n, d, 300);
    const auto draws = uniform_draws(k, 301);
    const Seeded a = run_kpp(x, n, d, k, {}, draws);
    for (int64_t p : a.picks) {
        ASSERT_TRUE(p >= 0 && p < n) << p;
    }
    EXPECT_EQ(std::set<int64_t>(a.picks.begin(), a.picks.end()).size(), size_t(k));
    EXPECT_EQ(fk_test::first_row_not_its_pick(a.centroids, x, d, 0, a.picks), -1);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1); // the sums are blocked by a fixed size, not by thread
    const Seeded b = run_kpp(x, n, d, k, {}, draws);
    omp_set_num_threads(threads);
    EXPECT_EQ(a.picks, b.picks);
    EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), sizeof(float) * k * d));
    // picked is optional
    std::vector<float> c(k * d);
    kn::kmeanspp_init(kCpu, cpu_args(x, n, d, k, draws, c.data()));
    EXPECT_EQ(c, a.centroids);
}

TEST(CpuKMeansPPInit, SeparatedBlobsGetExactlyOneCentroidEach) {
    const int64_t blobs = 20, d = 8, per = 150, n = blobs * per;
    std::mt19937_64 rng(400);
    std::normal_distribution<float> g(0.f, 1.f);
    std::vector<float> centres(blobs * d);
    for (float& v : centres) {
        v = 20.f * g(rng);
    }
    for (int64_t a = 0; a < blobs; a++) {
        for (int64_t b = 0; b < a; b++) {
            double s = 0;
            for (int64_t t = 0; t < d; t++) {
                s += std::pow(centres[a * d + t] - centres[b * d + t], 2);
            }
            ASSERT_GT(s, 4.0) << "centres too close; change the seed";
        }
    }
    std::vector<float> x(n * d);
    std::vector<int64_t> blob(n);
    for (int64_t i = 0; i < n; i++) {
        blob[i] = (i * 7) % blobs; // interleaved, not in blocks of points
        for (int64_t t = 0; t < d; t++) {
            x[i * d + t] = centres[blob[i] * d + t] + 0.01f * g(rng);
        }
    }
    for (uint64_t seed : {1, 2, 3}) {
        const Seeded s = run_kpp(x, n, d, blobs, {}, uniform_draws(blobs, seed));
        std::vector<int> hits(blobs, 0);
        for (int64_t p : s.picks) {
            hits[blob[p]]++;
        }
        EXPECT_EQ(hits, std::vector<int>(blobs, 1)) << "seed " << seed;
    }
}

TEST(CpuKMeansPPInit, AllPointsIdenticalPickFloorOfDrawTimesN) {
    const int64_t n = 1000, d = 5, k = 8;
    const std::vector<float> x(n * d, 1.5f);
    auto draws = uniform_draws(k, 500);
    draws[3] = 0.0;
    draws[4] = std::nextafter(1.0, 0.0); // floor(u n) = n - 1
    for (int64_t n_given : {0, 1}) {
        const std::vector<float> given(n_given * d, 1.5f);
        const std::vector<double> dr(draws.begin(), draws.end() - n_given);
        const Seeded s = run_kpp(x, n, d, k, given, dr);
        for (size_t t = 0; t < s.picks.size(); t++) {
            EXPECT_EQ(s.picks[t], int64_t(std::floor(dr[t] * n))) << "row " << t;
        }
        EXPECT_EQ(s.centroids, std::vector<float>(k * d, 1.5f));
    }
}

TEST(CpuKMeansPPInit, NEqualsKPicksEveryPointExactlyOnce) {
    const int64_t n = 57, d = 3;
    const auto x = fk_test::random_matrix(n, d, 600);
    const Seeded s = run_kpp(x, n, d, n, {}, uniform_draws(n, 601));
    std::vector<int64_t> sorted = s.picks;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < n; i++) {
        EXPECT_EQ(sorted[i], i);
    }
}

// A draw of 0 gives r = 0: the pick is the first point with D > 0, never a
// point already on a chosen row (D == 0, prefix still 0).
TEST(CpuKMeansPPInit, ZeroDrawsPickTheFirstPointsNotYetChosen) {
    const int64_t n = 300, d = 4, k = 6;
    const auto x = fk_test::random_matrix(n, d, 800);
    const std::vector<float> given(x.begin(), x.begin() + d); // x[0]
    const Seeded s = run_kpp(x, n, d, k, given, std::vector<double>(k - 1, 0.0));
    EXPECT_EQ(s.picks, (std::vector<int64_t>{1, 2, 3, 4, 5}));
}

// Runs kmeanspp_init with `a`, expects a KernelError whose message contains
// `needle`.
void expect_kernel_error(const fk::Place& place, const kn::KMeansPPArgs& a,
                         const std::string& needle) {
    try {
        kn::kmeanspp_init(place, a);
        ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
    } catch (const fk::KernelError& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(CpuKMeansPPInit, BadArgumentsThrowKernelErrorNamingTheProblem) {
    const int64_t n = 10, d = 2, k = 4;
    const auto x = fk_test::random_matrix(n, d, 700);
    std::vector<float> c(k * d);
    std::vector<double> draws(k, 0.5);
    const kn::KMeansPPArgs ok = cpu_args(x, n, d, k, draws, c.data());
    kn::kmeanspp_init(kCpu, ok);

    kn::KMeansPPArgs a = ok;
    a.n_given = k;
    expect_kernel_error(kCpu, a, "0 <= n_given < k, got n_given = 4, k = 4");
    a = ok;
    a.n_given = -1;
    expect_kernel_error(kCpu, a, "n_given = -1");
    a = ok;
    a.n = 0;
    expect_kernel_error(kCpu, a, "n >= 1 points and d >= 1, got n = 0");
    a = ok;
    a.d = 0;
    expect_kernel_error(kCpu, a, "d = 0");
    a = ok;
    a.x = nullptr;
    expect_kernel_error(kCpu, a, "x is null");
    a = ok;
    a.draws = nullptr;
    expect_kernel_error(kCpu, a, "draws is null");
    a = ok;
    a.centroids = nullptr;
    expect_kernel_error(kCpu, a, "centroids is null");
    a = ok;
    draws[2] = 1.0;
    expect_kernel_error(kCpu, a, "draws[2] = 1.0");
    draws[2] = std::nan("");
    expect_kernel_error(kCpu, a, "draws[2]");
    draws[2] = 0.5;
    a.dtype = fk::DType::BFloat16;
    expect_kernel_error(kCpu, a, "CPU backend takes float32 points, got bfloat16");
    if (!fk::cuda_compiled()) {
        expect_kernel_error(fk::Place{fk::Backend::CUDA}, ok, "no CUDA support");
    }
}

} // namespace
