// Tests of the fused CPU kernel (kernels/cpu/fused_assign.cpp,
// AssignKernel::Fused): bitwise equal to a plain loop of the same arithmetic
// (one fma per element, in order), whatever the tile, thread, batch or subset
// a row or centroid is computed in, and the float64 argmin except near-ties.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/Options.h>
#include <flashkmeans/errors.h>
#include <flashkmeans/kernels.h>

#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace fk = flashkmeans;
namespace kn = flashkmeans::kernels;

namespace {

const fk::Place kCpu{fk::Backend::CPU};

struct Out {
    std::vector<int32_t> labels;
    std::vector<float> distances, second;
};

std::vector<float> norms_of(const std::vector<float>& x, int64_t d) {
    std::vector<float> out(x.size() / size_t(d));
    kn::row_norms(kCpu, x.data(), fk::DType::Float32, int64_t(out.size()), d, out.data());
    return out;
}

Out fused(const std::vector<float>& x, const std::vector<float>& c, int64_t d, fk::Metric metric,
          int64_t batch = 1) {
    const int64_t n = int64_t(x.size()) / d / batch, k = int64_t(c.size()) / d / batch;
    const std::vector<float> xn = norms_of(x, d), cn = norms_of(c, d);
    Out out;
    out.labels.assign(size_t(n * batch), -7);
    out.distances.assign(size_t(n * batch), -7.f);
    out.second.assign(size_t(n * batch), -7.f);
    kn::AssignArgs a;
    a.x = x.data();
    a.n = n;
    a.d = d;
    a.centroids = c.data();
    a.centroid_norms = cn.data();
    a.k = k;
    a.batch = batch;
    a.metric = metric;
    a.kernel = kn::AssignKernel::Fused;
    a.x_norms = xn.data();
    a.labels = out.labels.data();
    a.distances = out.distances.data();
    a.second = out.second.data();
    kn::flash_assign(kCpu, a);
    return out;
}

/// The kernel's arithmetic written as a plain loop: x.c as one fma per
/// element in increasing order, L2 as (||x||^2 + ||c||^2) - 2 x.c clamped at
/// 0, the first index among equal values, the runner-up among the others.
Out plain(const std::vector<float>& x, const std::vector<float>& c, int64_t d, fk::Metric metric) {
    const int64_t n = int64_t(x.size()) / d, k = int64_t(c.size()) / d;
    const std::vector<float> xn = norms_of(x, d), cn = norms_of(c, d);
    const bool l2 = metric == fk::Metric::L2;
    Out out;
    for (int64_t i = 0; i < n; i++) {
        float best = std::numeric_limits<float>::infinity(), second = best;
        int32_t arg = -1;
        for (int64_t j = 0; j < k; j++) {
            float acc = 0.f;
            for (int64_t t = 0; t < d; t++) {
                acc = std::fma(x[size_t(i * d + t)], c[size_t(j * d + t)], acc);
            }
            float s = l2 ? (xn[size_t(i)] + cn[size_t(j)]) - 2.f * acc : -acc;
            if (l2 && s < 0) {
                s = 0;
            }
            if (s < best) {
                second = best;
                best = s;
                arg = int32_t(j);
            } else if (s < second) {
                second = s;
            }
        }
        out.labels.push_back(arg);
        out.distances.push_back(l2 ? best : -best);
        out.second.push_back(l2 ? second : -second);
    }
    return out;
}

std::vector<float> gaussian(size_t count, uint64_t seed, float scale = 1.f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.f, scale);
    std::vector<float> v(count);
    for (float& e : v) {
        e = g(rng);
    }
    return v;
}

bool same_bits(float a, float b) {
    uint32_t x, y;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    return x == y || (a == 0 && b == 0); // the sign of a zero product sum is not pinned
}

void expect_bitwise(const Out& got, const Out& want, const char* what) {
    ASSERT_EQ(got.labels.size(), want.labels.size()) << what;
    for (size_t i = 0; i < want.labels.size(); i++) {
        ASSERT_EQ(got.labels[i], want.labels[i]) << what << ": row " << i;
        ASSERT_TRUE(same_bits(got.distances[i], want.distances[i]))
                << what << ": row " << i << " " << got.distances[i] << " vs " << want.distances[i];
        ASSERT_TRUE(same_bits(got.second[i], want.second[i]))
                << what << ": row " << i << " " << got.second[i] << " vs " << want.second[i];
    }
}

class FusedAssign : public ::testing::Test {
   protected:
    void SetUp() override {
        if (!kn::cpu_fused_assign_available()) {
            GTEST_SKIP() << "this CPU has no AVX2 + FMA";
        }
    }
};

TEST_F(FusedAssign, EqualsThePlainLoopBitwiseForEveryShapeAndMetric) {
    // rows and centroids that fill no tile, one tile, and tiles plus tails;
    // d = 1 and d past one cache chunk of centroids
    const int64_t shapes[][3] = {{1, 1, 1},       {5, 3, 7},       {7, 17, 2},     {97, 33, 64},
                                 {200, 100, 130}, {301, 1000, 24}, {13, 5000, 600}};
    for (const auto& s : shapes) {
        const int64_t n = s[0], k = s[1], d = s[2];
        const std::vector<float> x = gaussian(size_t(n * d), 1 + n);
        const std::vector<float> c = gaussian(size_t(k * d), 2 + k);
        for (fk::Metric m : {fk::Metric::L2, fk::Metric::InnerProduct}) {
            SCOPED_TRACE(::testing::Message()
                         << n << "x" << k << "x" << d << (m == fk::Metric::L2 ? " L2" : " IP"));
            expect_bitwise(fused(x, c, d, m), plain(x, c, d, m), "fused vs plain");
        }
    }
}

TEST_F(FusedAssign, ARowGetsTheSameBitsInAnySubsetBatchOrThreadCount) {
    const int64_t n = 1000, k = 700, d = 40;
    const std::vector<float> x = gaussian(size_t(n * d), 3), c = gaussian(size_t(k * d), 4);
    const Out whole = fused(x, c, d, fk::Metric::L2);
    // every 7th row, gathered: each lands at another place in the tiles
    std::vector<float> sub;
    std::vector<size_t> rows;
    for (int64_t i = 5; i < n; i += 7) {
        rows.push_back(size_t(i));
        sub.insert(sub.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    }
    const Out part = fused(sub, c, d, fk::Metric::L2);
    Out picked;
    for (size_t i : rows) {
        picked.labels.push_back(whole.labels[i]);
        picked.distances.push_back(whole.distances[i]);
        picked.second.push_back(whole.second[i]);
    }
    expect_bitwise(part, picked, "subset vs whole");
    // the same problem twice in a batch
    std::vector<float> xx = x, cc = c;
    xx.insert(xx.end(), x.begin(), x.end());
    cc.insert(cc.end(), c.begin(), c.end());
    const Out twice = fused(xx, cc, d, fk::Metric::L2, 2);
    Out second_half;
    second_half.labels.assign(twice.labels.begin() + n, twice.labels.end());
    second_half.distances.assign(twice.distances.begin() + n, twice.distances.end());
    second_half.second.assign(twice.second.begin() + n, twice.second.end());
    expect_bitwise(second_half, whole, "batch entry 2 vs alone");
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Out one = fused(x, c, d, fk::Metric::L2);
    omp_set_num_threads(threads);
    expect_bitwise(one, whole, "1 thread vs default");
}

/// Sets FLASHKMEANS_CPU_ISA for one scope (the fused kernel reads it per
/// call), then restores what the process had (scripts/test_core_types.sh
/// runs the suite with it set).
struct IsaScope {
    explicit IsaScope(const char* isa) {
        if (const char* was = std::getenv("FLASHKMEANS_CPU_ISA")) {
            saved = was;
            had = true;
        }
        setenv("FLASHKMEANS_CPU_ISA", isa, 1);
    }
    ~IsaScope() {
        if (had) {
            setenv("FLASHKMEANS_CPU_ISA", saved.c_str(), 1);
        } else {
            unsetenv("FLASHKMEANS_CPU_ISA");
        }
    }
    std::string saved;
    bool had = false;
};

TEST_F(FusedAssign, AvxAndAvx512GiveTheSameBits) {
    if (!__builtin_cpu_supports("avx512f")) {
        GTEST_SKIP() << "this CPU has no AVX-512: only the AVX2 width runs here";
    }
    // odd panel counts (the one-panel tail of the two-panel AVX-512 tile),
    // rows that fill no tile, both metrics, a batch of two
    const int64_t shapes[][3] = {{7, 17, 3}, {97, 48, 64}, {301, 1000, 24}, {50, 5000, 130}};
    for (const auto& s : shapes) {
        const int64_t n = s[0], k = s[1], d = s[2];
        const std::vector<float> x = gaussian(size_t(2 * n * d), 11 + n);
        const std::vector<float> c = gaussian(size_t(2 * k * d), 12 + k);
        for (fk::Metric m : {fk::Metric::L2, fk::Metric::InnerProduct}) {
            SCOPED_TRACE(::testing::Message()
                         << n << "x" << k << "x" << d << (m == fk::Metric::L2 ? " L2" : " IP"));
            Out narrow, wide;
            {
                IsaScope isa("avx2");
                narrow = fused(x, c, d, m, 2);
            }
            {
                IsaScope isa("avx512");
                wide = fused(x, c, d, m, 2);
            }
            expect_bitwise(wide, narrow, "AVX-512 vs AVX2");
        }
    }
}

TEST_F(FusedAssign, AnUnknownOrMissingIsaIsAClearError) {
    IsaScope isa("sse9");
    const std::vector<float> x = gaussian(64, 13), c = gaussian(32, 14);
    try {
        fused(x, c, 8, fk::Metric::L2);
        FAIL() << "FLASHKMEANS_CPU_ISA=sse9 was accepted";
    } catch (const fk::KernelError& e) {
        EXPECT_NE(std::string(e.what()).find("FLASHKMEANS_CPU_ISA='sse9'"), std::string::npos)
                << e.what();
    }
    if (!__builtin_cpu_supports("avx512f")) {
        IsaScope wide("avx512");
        EXPECT_THROW(fused(x, c, 8, fk::Metric::L2), fk::KernelError);
    }
}

TEST_F(FusedAssign, CopiesOfACentroidTieExactlyAndTheFirstWins) {
    // centroid 3 copied into other lanes, panels and cache chunks: a copy
    // anywhere scores bitwise the same, so no label lands on a later copy
    const int64_t n = 600, k = 5000, d = 16;
    const std::vector<float> x = gaussian(size_t(n * d), 5);
    std::vector<float> c = gaussian(size_t(k * d), 6, 8.f); // far away: centroid 3 wins often
    for (int64_t j : {4, 11, 19, 27, 1000, 4097, 4999}) {
        std::copy(c.begin() + 3 * d, c.begin() + 4 * d, c.begin() + j * d);
    }
    std::fill(c.begin() + 3 * d, c.begin() + 4 * d, 0.f);
    for (int64_t j : {4, 11, 19, 27, 1000, 4097, 4999}) {
        std::fill(c.begin() + j * d, c.begin() + (j + 1) * d, 0.f); // copies of the zero centroid
    }
    const Out out = fused(x, c, d, fk::Metric::L2);
    int64_t at_three = 0;
    for (int64_t i = 0; i < n; i++) {
        EXPECT_NE(out.labels[size_t(i)], 4);
        EXPECT_NE(out.labels[size_t(i)], 4999);
        at_three += out.labels[size_t(i)] == 3;
        if (out.labels[size_t(i)] == 3) {
            EXPECT_EQ(out.second[size_t(i)], out.distances[size_t(i)]) << "a copy is the runner-up";
        }
    }
    EXPECT_GT(at_three, n / 2);
}

TEST_F(FusedAssign, LabelsAreTheFloat64ArgminExceptNearTies) {
    const int64_t n = 2000, k = 300, d = 50;
    const std::vector<float> x = gaussian(size_t(n * d), 7), c = gaussian(size_t(k * d), 8);
    for (fk::Metric m : {fk::Metric::L2, fk::Metric::InnerProduct}) {
        const Out out = fused(x, c, d, m);
        const fk_test::RefAssign ref =
                fk_test::reference_assign(x.data(), n, c.data(), k, d, m != fk::Metric::L2);
        int64_t near_ties = 0;
        for (int64_t i = 0; i < n; i++) {
            if (ref.rel_gap[size_t(i)] < 1e-5) {
                near_ties++; // either label is right to fp32 accuracy
                continue;
            }
            EXPECT_EQ(out.labels[size_t(i)], ref.labels[size_t(i)]) << "row " << i;
        }
        EXPECT_LT(near_ties, n / 100) << "the data should decide almost every label";
    }
}

TEST_F(FusedAssign, GroupsGiveEachGroupsBestAndRunnerUpBitwise) {
    // random groups of uneven sizes (one of a single centroid), each point
    // asking for a random half of them: every answer is the plain loop's over
    // that group's members alone
    const int64_t m = 300, k = 200, d = 37, G = 7;
    const std::vector<float> x = gaussian(size_t(m * d), 21), c = gaussian(size_t(k * d), 22);
    std::vector<int32_t> group_of(static_cast<size_t>(k));
    std::mt19937 rng(5);
    for (int64_t j = 0; j < k; j++) {
        group_of[size_t(j)] = j == 0 ? 0 : int32_t(1 + rng() % (G - 1)); // group 0: {0}
    }
    std::vector<int32_t> begin(1, 0), members;
    for (int64_t g = 0; g < G; g++) {
        for (int64_t j = 0; j < k; j++) {
            if (group_of[size_t(j)] == g) {
                members.push_back(int32_t(j));
            }
        }
        begin.push_back(int32_t(members.size()));
    }
    std::vector<uint8_t> need(static_cast<size_t>(m * G));
    for (uint8_t& v : need) {
        v = uint8_t(rng() % 2);
    }
    const std::vector<float> xn = norms_of(x, d), cn = norms_of(c, d);
    for (fk::Metric metric : {fk::Metric::L2, fk::Metric::InnerProduct}) {
        SCOPED_TRACE(metric == fk::Metric::L2 ? "L2" : "IP");
        std::vector<float> best(size_t(m * G), -7.f), second(size_t(m * G), -7.f);
        std::vector<int32_t> arg(size_t(m * G), -7);
        kn::GroupAssignArgs a;
        a.x = x.data();
        a.x_norms = xn.data();
        a.m = m;
        a.d = d;
        a.centroids = c.data();
        a.centroid_norms = cn.data();
        a.k = k;
        a.metric = metric;
        a.groups = G;
        a.group_begin = begin.data();
        a.members = members.data();
        a.need = need.data();
        a.best = best.data();
        a.arg = arg.data();
        a.second = second.data();
        kn::cpu_fused_group_assign(a);
        for (int64_t g = 0; g < G; g++) {
            std::vector<float> cg;
            for (int32_t i = begin[size_t(g)]; i < begin[size_t(g + 1)]; i++) {
                const int32_t j = members[size_t(i)];
                cg.insert(cg.end(), c.begin() + j * d, c.begin() + (j + 1) * d);
            }
            const Out want = plain(x, cg, d, metric);
            for (int64_t i = 0; i < m; i++) {
                const size_t at = size_t(i * G + g);
                if (!need[at]) {
                    ASSERT_EQ(arg[at], -7) << "group " << g << " not asked for, written";
                    continue;
                }
                ASSERT_EQ(arg[at], members[size_t(begin[size_t(g)] + want.labels[size_t(i)])])
                        << "point " << i << " group " << g;
                ASSERT_TRUE(same_bits(best[at], want.distances[size_t(i)])) << i << " " << g;
                ASSERT_TRUE(same_bits(second[at], want.second[size_t(i)])) << i << " " << g;
            }
        }
    }
}

TEST(CpuKernelOption, ParsesAndResolvesPerBackend) {
    EXPECT_EQ(fk::parse_cpu_kernel("Fused"), fk::CpuKernel::Fused);
    EXPECT_EQ(fk::parse_cpu_kernel("faiss"), fk::CpuKernel::Faiss);
    EXPECT_THROW(fk::parse_cpu_kernel("blas"), faiss::FaissException);
    fk::Options o;
    EXPECT_EQ(fk::resolve_cpu_kernel(o, fk::Backend::CPU), kn::AssignKernel::Auto)
            << "the default keeps FAISS's bits";
    EXPECT_EQ(fk::resolve_cpu_kernel(o, fk::Backend::CUDA), kn::AssignKernel::Auto);
    o.prune = true;
    EXPECT_EQ(fk::resolve_cpu_kernel(o, fk::Backend::CPU),
              kn::cpu_fused_assign_available() ? kn::AssignKernel::Fused : kn::AssignKernel::Auto)
            << "pruning takes the fused kernel where it runs";
    o.cpu_kernel = fk::CpuKernel::Faiss;
    EXPECT_EQ(fk::resolve_cpu_kernel(o, fk::Backend::CPU), kn::AssignKernel::Auto);
    for (fk::CpuKernel k : {fk::CpuKernel::Faiss, fk::CpuKernel::Fused}) {
        o.cpu_kernel = k; // a CPU kernel named for the CUDA backend is a mistake, said so
        EXPECT_THROW(fk::resolve_cpu_kernel(o, fk::Backend::CUDA), fk::InputError);
    }
}

TEST_F(FusedAssign, ClusteringWithTheFusedKernelReachesTheSameObjective) {
    // the same run with FAISS's blocks and with the fused kernel: near-ties
    // may split differently, so objectives agree to float rounding only
    const int64_t n = 20000, d = 32, k = 50;
    const std::vector<float> x = fk_test::blobs(n, d, 25, 13, 0.3f);
    std::vector<double> obj[2];
    for (int f = 0; f < 2; f++) {
        faiss::ClusteringParameters cp;
        cp.niter = 8;
        fk::Options o;
        o.backend = fk::Backend::CPU;
        o.cpu_kernel = f ? fk::CpuKernel::Fused : fk::CpuKernel::Faiss;
        fk::Clustering clus(int(d), int(k), cp, o);
        faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(d));
        clus.train(n, x.data(), index);
        for (const auto& s : clus.iteration_stats) {
            obj[f].push_back(s.obj);
        }
    }
    ASSERT_EQ(obj[0].size(), obj[1].size());
    for (size_t i = 0; i < obj[0].size(); i++) {
        EXPECT_NEAR(obj[1][i], obj[0][i], 1e-4 * obj[0][i]) << "iteration " << i;
    }
}

} // namespace
