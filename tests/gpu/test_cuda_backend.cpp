// The CUDA backend end to end: from the same init it reproduces the CPU
// backend and FAISS (labels, centroids within float rounding), gives bitwise
// identical centroids run to run, and the batched API equals separate runs.
#include <flashkmeans/AssignIndex.h>
#include <flashkmeans/Clustering.h>
#include <flashkmeans/batch.h>
#include <flashkmeans/errors.h>
#include <flashkmeans/memory.h>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>

#include "test_util.h"

namespace {

using flashkmeans::Backend;

#define SKIP_WITHOUT_GPU()                          \
    if (flashkmeans::cuda_device_count() == 0) {    \
        GTEST_SKIP() << "no GPU";                   \
    }

flashkmeans::Options opts(Backend b) {
    flashkmeans::Options o;
    o.backend = b;
    return o;
}

struct TrainResult {
    std::vector<float> centroids;
    std::vector<int64_t> labels;
    std::vector<float> obj;
};

TrainResult train(Backend b, int64_t n, int64_t d, int64_t k, const std::vector<float>& x,
          bool ip = false, const float* w = nullptr, int niter = 8) {
    faiss::ClusteringParameters cp;
    cp.niter = niter;
    cp.spherical = ip;
    flashkmeans::Clustering c(d, k, cp, opts(b));
    std::unique_ptr<faiss::Index> index(ip ? static_cast<faiss::Index*>(new faiss::IndexFlatIP(d))
                                           : new faiss::IndexFlatL2(d));
    c.train(n, x.data(), *index, w);
    TrainResult r{c.centroids, c.last_labels, {}};
    for (auto& s : c.iteration_stats) r.obj.push_back(s.obj);
    return r;
}

using fk_test::max_rel;

// From the same init, one iteration assigns every point as the CPU backend
// does, except true near-ties (the CPU compares FAISS's rounded
// ||x||^2 + ||c||^2 - 2x.c, the GPU ||c||^2 - 2x.c: both are exact fp32 to a
// float64 reference). Over many iterations such a flip moves a centroid and
// trajectories drift apart slowly, so the full run is held to the objective
// and to the bulk of the labels.
void expect_backends_agree(int64_t n, int64_t d, int64_t k, bool ip, bool weighted) {
    auto x = fk_test::blobs(n, d, k, 100 + d, 1.0f);
    auto w = fk_test::random_weights(n, 5);
    const float* wp = weighted ? w.data() : nullptr;
    TrainResult cpu1 = train(Backend::CPU, n, d, k, x, ip, wp, 1);
    TrainResult gpu1 = train(Backend::CUDA, n, d, k, x, ip, wp, 1);
    ASSERT_EQ(cpu1.labels.size(), gpu1.labels.size());
    size_t diff1 = 0;
    for (size_t i = 0; i < cpu1.labels.size(); i++) diff1 += cpu1.labels[i] != gpu1.labels[i];
    EXPECT_LE(diff1, cpu1.labels.size() / 10000) << "labels differing after one iteration";
    EXPECT_LT(max_rel(gpu1.centroids, cpu1.centroids), diff1 == 0 ? 1e-5 : 1e-2);
    EXPECT_NEAR(gpu1.obj[0], cpu1.obj[0], 1e-5 * std::fabs(cpu1.obj[0]));

    TrainResult cpu = train(Backend::CPU, n, d, k, x, ip, wp);
    TrainResult gpu = train(Backend::CUDA, n, d, k, x, ip, wp);
    size_t diff = 0;
    for (size_t i = 0; i < cpu.labels.size(); i++) diff += cpu.labels[i] != gpu.labels[i];
    EXPECT_LE(diff, cpu.labels.size() / 200) << "labels differing after 8 iterations";
    for (size_t i = 0; i < cpu.obj.size(); i++) {
        EXPECT_NEAR(gpu.obj[i], cpu.obj[i], 1e-3 * std::fabs(cpu.obj[i])) << "iteration " << i;
    }
}

TEST(CudaBackend, ReproducesCpuBackendL2) {
    SKIP_WITHOUT_GPU();
    expect_backends_agree(20000, 128, 100, false, false);
    expect_backends_agree(7777, 17, 300, false, false);
}

TEST(CudaBackend, ReproducesCpuBackendSphericalIP) {
    SKIP_WITHOUT_GPU();
    expect_backends_agree(10000, 64, 50, true, false);
}

TEST(CudaBackend, ReproducesCpuBackendWeighted) {
    SKIP_WITHOUT_GPU();
    expect_backends_agree(10000, 96, 64, false, true);
}

TEST(CudaBackend, ReproducesFaissLabels) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 15000, d = 64, k = 128;
    auto x = fk_test::blobs(n, d, k, 3, 1.0f);
    faiss::ClusteringParameters cp;
    cp.niter = 6;
    faiss::Clustering ref(d, k, cp);
    faiss::IndexFlatL2 ri(d);
    ref.train(n, x.data(), ri);
    TrainResult gpu = train(Backend::CUDA, n, d, k, x, false, nullptr, 6);
    EXPECT_LT(max_rel(gpu.centroids, ref.centroids), 1e-4);
    // final assignment with each side's centroids
    faiss::IndexFlatL2 a(d), b(d);
    a.add(k, ref.centroids.data());
    b.add(k, gpu.centroids.data());
    std::vector<float> D(n);
    std::vector<int64_t> la(n), lb(n);
    a.search(n, x.data(), 1, D.data(), la.data());
    b.search(n, x.data(), 1, D.data(), lb.data());
    size_t diff = 0;
    for (int64_t i = 0; i < n; i++) diff += la[i] != lb[i];
    EXPECT_LE(diff, size_t(n / 10000));
}

TEST(CudaBackend, TwoRunsGiveBitwiseIdenticalCentroids) {
    SKIP_WITHOUT_GPU();
    auto x = fk_test::random_matrix(50000, 128, 9);
    TrainResult a = train(Backend::CUDA, 50000, 128, 256, x);
    TrainResult b = train(Backend::CUDA, 50000, 128, 256, x);
    ASSERT_EQ(a.centroids.size(), b.centroids.size());
    EXPECT_EQ(0, memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * 4));
    EXPECT_EQ(a.labels, b.labels);
}

TEST(CudaBackend, BatchedEqualsSeparateRunsAndDeviceInputWorks) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 4, n = 5000, d = 32, k = 40;
    auto x = fk_test::random_matrix(B * n, d, 21);
    float* dx = nullptr;
    ASSERT_EQ(cudaSuccess, cudaMalloc(&dx, x.size() * 4));
    ASSERT_EQ(cudaSuccess, cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 5;
    std::vector<float> c(B * k * d);
    std::vector<int64_t> labels(B * n);
    flashkmeans::PointsView p{dx, flashkmeans::DType::Float32, true, B, n, d};
    flashkmeans::batch_kmeans(p, params, {false, c.data(), labels.data(), nullptr},
                              opts(Backend::CUDA));
    for (int64_t b = 0; b < B; b++) {
        flashkmeans::PointsView one{x.data() + b * n * d, flashkmeans::DType::Float32, false, 1, n, d};
        std::vector<float> c1(k * d);
        std::vector<int64_t> l1(n);
        flashkmeans::batch_kmeans(one, params, {false, c1.data(), l1.data(), nullptr},
                                  opts(Backend::CUDA));
        EXPECT_EQ(0, memcmp(c1.data(), c.data() + b * k * d, c1.size() * 4)) << "problem " << b;
        EXPECT_TRUE(std::equal(l1.begin(), l1.end(), labels.begin() + b * n));
        // and the CPU backend agrees within rounding
        std::vector<float> c2(k * d);
        flashkmeans::batch_kmeans(one, params, {false, c2.data(), nullptr, nullptr},
                                  opts(Backend::CPU));
        EXPECT_LT(max_rel(c1, c2), 1e-4);
    }
    cudaFree(dx);
}

// NaN and Inf in device points are found on the device (the sums of the
// squared norms) and named; so are fp32 values beyond fp16's range when the
// points are used in fp16 (they would become Inf there).
TEST(CudaBackend, NonFiniteDevicePointsAndFp16OverflowAreNamedErrors) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 2, n = 3000, d = 12, k = 8;
    auto x = fk_test::random_matrix(B * n, d, 23);
    x[(n + 1234) * d + 5] = std::nanf("");
    float* dx = nullptr;
    ASSERT_EQ(cudaSuccess, cudaMalloc(&dx, x.size() * 4));
    ASSERT_EQ(cudaSuccess, cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 3;
    std::vector<float> c(B * k * d);
    auto expect_input_error = [&](const flashkmeans::PointsView& p, const flashkmeans::Options& o,
                                  const std::string& needle) {
        try {
            flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr}, o);
            ADD_FAILURE() << "no exception; expected " << needle;
        } catch (const flashkmeans::InputError& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_input_error({dx, flashkmeans::DType::Float32, true, B, n, d}, opts(Backend::CUDA),
                       "NaN or Inf values, or values too large for float32 distances (point 1234 "
                       "of problem 1)");
    x[(n + 1234) * d + 5] = 0.25f;
    x[77 * d] = 70000.f;  // finite in fp32, Inf in fp16
    auto o = opts(Backend::CUDA);
    o.dtype = flashkmeans::DType::Float16;
    expect_input_error({x.data(), flashkmeans::DType::Float32, false, B, n, d}, o,
                       "values too large for float16 distances (point 77 of problem 0)");
    cudaFree(dx);
}

// Problems 1 and 3 have 5 distinct points for 10 clusters: clusters go empty
// every iteration and the engine splits those of all problems in one pass.
// Each problem still equals its own run bitwise. The CPU backend is compared
// on the random problems only: a split makes c (1 + eps) and c (1 - eps),
// which are exactly as far from a point sitting on c, so the duplicated
// points of problems 1 and 3 fall on true ties that either backend's
// rounding may break either way.
TEST(CudaBackend, BatchedWithEmptyClustersEqualsSeparateRuns) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 4, n = 300, d = 8, k = 10;
    auto x = fk_test::random_matrix(B * n, d, 23);
    for (int64_t b : {1, 3}) {
        for (int64_t i = 0; i < n; i++) {
            for (int64_t j = 0; j < d; j++) {
                x[(b * n + i) * d + j] = float(i % 5) + 0.25f * float(j) + float(b);
            }
        }
    }
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 5;
    std::vector<float> c(B * k * d);
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, B, n, d};
    flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr}, opts(Backend::CUDA));
    for (int64_t b = 0; b < B; b++) {
        flashkmeans::PointsView one{x.data() + b * n * d, flashkmeans::DType::Float32, false, 1, n, d};
        std::vector<float> c1(k * d), c2(k * d);
        flashkmeans::batch_kmeans(one, params, {false, c1.data(), nullptr, nullptr},
                                  opts(Backend::CUDA));
        flashkmeans::batch_kmeans(one, params, {false, c2.data(), nullptr, nullptr},
                                  opts(Backend::CPU));
        EXPECT_EQ(0, memcmp(c1.data(), c.data() + b * k * d, c1.size() * 4)) << "problem " << b;
        if (b == 0 || b == 2) {
            EXPECT_LT(max_rel(c1, c2), 1e-4) << "problem " << b;
        }
    }
}

TEST(CudaBackend, SubsampledDeviceInputEqualsSubsampledHostInput) {
    SKIP_WITHOUT_GPU();
    // n > k * max_points_per_centroid: both subsample with FAISS's
    // permutation, the device input through one gather on the GPU
    const int64_t n = 60000, d = 48, k = 64;
    auto x = fk_test::random_matrix(n, d, 33);
    float* dx = nullptr;
    ASSERT_EQ(cudaSuccess, cudaMalloc(&dx, x.size() * 4));
    ASSERT_EQ(cudaSuccess, cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    faiss::ClusteringParameters cp;
    cp.niter = 5;
    cp.max_points_per_centroid = 100;
    flashkmeans::Clustering host(d, k, cp, opts(Backend::CUDA)), dev(d, k, cp, opts(Backend::CUDA));
    faiss::IndexFlatL2 i1(d), i2(d);
    host.train(n, x.data(), i1);
    dev.train_typed(n, dx, flashkmeans::DType::Float32, true, i2);
    cudaFree(dx);
    ASSERT_EQ(host.last_labels.size(), size_t(k * 100));
    EXPECT_EQ(host.last_labels, dev.last_labels);
    EXPECT_EQ(0, memcmp(host.centroids.data(), dev.centroids.data(), host.centroids.size() * 4));
}

// Host points subsampled: without a budget the sample is gathered straight
// into the upload's staging (several staging chunks here); with one, on the
// host first. The same sample, labels and centroids either way.
TEST(CudaBackend, SubsampledHostInputGatheredIntoStagingOrOnTheHost) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 200000, d = 48, k = 256;
    auto x = fk_test::random_matrix(n, d, 34);
    faiss::ClusteringParameters cp;
    cp.niter = 4;
    cp.max_points_per_centroid = 400; // 102400 rows of 192 bytes: 3 staging chunks
    flashkmeans::Options budgeted = opts(Backend::CUDA);
    budgeted.memory_budget = size_t(1) << 30;
    flashkmeans::Clustering staged(d, k, cp, opts(Backend::CUDA)), host(d, k, cp, budgeted);
    faiss::IndexFlatL2 i1(d), i2(d);
    staged.train(n, x.data(), i1);
    host.train(n, x.data(), i2);
    ASSERT_EQ(staged.last_labels.size(), size_t(k * 400));
    EXPECT_EQ(staged.last_labels, host.last_labels);
    EXPECT_EQ(0, memcmp(staged.centroids.data(), host.centroids.data(), host.centroids.size() * 4));
    EXPECT_EQ(staged.iteration_stats.back().obj, host.iteration_stats.back().obj);
}

// As FAISS (and as host points): a NaN, or a value too large for float32
// distances, in a device point that subsampling leaves out is an error
// naming the point.
TEST(CudaBackend, BadDevicePointOutsideTheSubsampleIsRejected) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 5000, d = 12, k = 10;
    auto x = fk_test::random_matrix(n, d, 12);
    float* dx = nullptr;
    ASSERT_EQ(cudaSuccess, cudaMalloc(&dx, x.size() * 4));
    faiss::ClusteringParameters cp;
    cp.max_points_per_centroid = 50; // 500 of 5000 points sampled
    const struct {
        int64_t row;
        float value;
        const char* says;
    } cases[] = {{7, std::nanf(""), "NaN or Inf values (point 7)"},
                 {4321, -std::numeric_limits<float>::infinity(), "NaN or Inf values (point 4321)"},
                 {99, 3e19f, "too large for float32 distances (point 99"}};
    for (const auto& c : cases) {
        std::vector<float> bad = x;
        bad[size_t(c.row * d + 5)] = c.value;
        ASSERT_EQ(cudaSuccess, cudaMemcpy(dx, bad.data(), bad.size() * 4, cudaMemcpyHostToDevice));
        flashkmeans::Clustering clus(d, k, cp, opts(Backend::CUDA));
        faiss::IndexFlatL2 index(d);
        try {
            clus.train_typed(n, dx, flashkmeans::DType::Float32, true, index);
            ADD_FAILURE() << "no error for row " << c.row;
        } catch (const std::exception& e) {
            EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
        }
    }
    cudaFree(dx);
}

TEST(CudaBackend, HalfPrecisionTrainingAgreesWithFp32) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 20000, d = 64, k = 32;
    auto x = fk_test::blobs(n, d, k, 77, 0.5f);
    for (auto dt : {flashkmeans::DType::Float16, flashkmeans::DType::BFloat16}) {
        faiss::ClusteringParameters cp;
        cp.niter = 8;
        auto o = opts(Backend::CUDA);
        o.dtype = dt;
        flashkmeans::Clustering c(d, k, cp, o);
        faiss::IndexFlatL2 index(d);
        c.train(n, x.data(), index);
        TrainResult ref = train(Backend::CUDA, n, d, k, x);
        size_t same = 0;
        for (size_t i = 0; i < ref.labels.size(); i++) same += ref.labels[i] == c.last_labels[i];
        double agree = double(same) / ref.labels.size();
        printf("  %s labels agreeing with fp32: %.5f\n", flashkmeans::dtype_name(dt), agree);
        // bf16 keeps 8 mantissa bits: points near a boundary move, and
        // trajectories drift; fp16 keeps 11
        EXPECT_GT(agree, dt == flashkmeans::DType::Float16 ? 0.99 : 0.95);
    }
}

// k-means++ seeding on the device, end to end: on well separated blobs it
// finds every blob (every point within a few spreads of its centroid), for
// fp32 and fp16 points, with the same centroids on every run; in a batch each
// problem is seeded from its own points, bitwise as its separate run.
TEST(CudaBackend, KMeansPlusPlusInitFindsEveryBlobDeterministicallyAndPerProblem) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 3000, d = 8, k = 20;
    auto x = fk_test::blobs(n, d, k, 23, 0.05f);
    for (auto dt : {flashkmeans::DType::Float32, flashkmeans::DType::Float16}) {
        faiss::ClusteringParameters cp;
        cp.niter = 10;
        auto o = opts(Backend::CUDA);
        o.init = flashkmeans::Init::KMeansPP;
        o.dtype = dt;
        flashkmeans::Clustering a(d, k, cp, o), b(d, k, cp, o);
        faiss::IndexFlatL2 i1(d), i2(d);
        a.train(n, x.data(), i1);
        b.train(n, x.data(), i2);
        EXPECT_EQ(a.centroids, b.centroids) << flashkmeans::dtype_name(dt);
        EXPECT_LT(a.iteration_stats.back().obj / n, d * 0.05 * 0.05 * 3) << flashkmeans::dtype_name(dt);
    }

    const int64_t B = 3;
    auto xb = fk_test::blobs(B * n, d, k, 24, 0.05f);
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 3;
    auto o = opts(Backend::CUDA);
    o.init = flashkmeans::Init::KMeansPP;
    std::vector<float> c(B * k * d);
    flashkmeans::PointsView p{xb.data(), flashkmeans::DType::Float32, false, B, n, d};
    flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr}, o);
    for (int64_t pb = 0; pb < B; pb++) {
        flashkmeans::PointsView one{xb.data() + pb * n * d, flashkmeans::DType::Float32, false, 1, n, d};
        std::vector<float> c1(k * d);
        flashkmeans::batch_kmeans(one, params, {false, c1.data(), nullptr, nullptr}, o);
        EXPECT_EQ(0, memcmp(c1.data(), c.data() + pb * k * d, c1.size() * 4)) << "problem " << pb;
    }
}

TEST(CudaBackend, AssignIndexOnGpuMatchesIndexFlat) {
    SKIP_WITHOUT_GPU();
    const int64_t d = 96, nb = 3000, nq = 300000;
    auto xb = fk_test::random_matrix(nb, d, 1), xq = fk_test::random_matrix(nq, d, 2);
    faiss::IndexFlatL2 flat(d);
    flashkmeans::AssignIndex ours(d, opts(Backend::CUDA));
    flat.add(nb, xb.data());
    ours.add(nb, xb.data());
    std::vector<float> D1(nq), D2(nq);
    std::vector<int64_t> I1(nq), I2(nq);
    flat.search(nq, xq.data(), 1, D1.data(), I1.data());
    ours.search(nq, xq.data(), 1, D2.data(), I2.data());
    auto ref = fk_test::reference_assign(xq.data(), 2000, xb.data(), nb, d);
    size_t diff = 0;
    for (int64_t i = 0; i < 2000; i++) {
        if (ref.rel_gap[i] > 1e-6) {
            EXPECT_EQ(I2[i], ref.labels[i]) << i;
        }
    }
    for (int64_t i = 0; i < nq; i++) diff += I1[i] != I2[i];
    EXPECT_LE(diff, size_t(nq / 10000));
    for (int64_t i = 0; i < nq; i += 97) EXPECT_NEAR(D2[i], D1[i], 1e-4 * (1 + D1[i]));
}

// From the second iteration on, an iteration's kernels run as one CUDA graph
// (PlaceGraph). The variant cuda_graph = "require" makes a failed recording an
// error instead of a fallback to plain launches, so these runs took the graph
// path; they give the bits of plain launches (=0) with clusters going empty
// and split on the host between graph launches, weights, fp16 batches, and
// the assignment timer (events recorded inside the graph) still measures.
TEST(CudaBackend, IterationGraphGivesTheBitsOfPlainLaunches) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 6000, d = 32, k = 300;
    auto x = fk_test::random_matrix(n, d, 31);
    for (int64_t i = n / 2; i < n; i++) {  // 100 rows repeated: duplicate seeds, empty clusters
        std::copy_n(&x[(i % 100) * d], d, &x[i * d]);
    }
    std::vector<float> w(n);
    for (int64_t i = 0; i < n; i++) {
        w[i] = 0.5f + float(i % 7) / 4;
    }
    struct Run {
        std::vector<float> centroids;
        std::vector<int64_t> labels;
        std::vector<faiss::ClusteringIterationStats> stats;
    };
    auto run = [&](const char* mode) {
        fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::cuda_graph, mode);
        faiss::ClusteringParameters cp;
        cp.niter = 10;
        flashkmeans::Clustering c(d, k, cp, opts(Backend::CUDA));
        faiss::IndexFlatL2 index(d);
        c.train(n, x.data(), index, w.data());
        return Run{c.centroids, c.last_labels, c.iteration_stats};
    };
    // the second graph run updates the graph the first one kept (same key)
    const Run plain = run("0"), graph = run("require"), kept = run("require");
    ASSERT_EQ(plain.centroids.size(), graph.centroids.size());
    EXPECT_EQ(0, memcmp(plain.centroids.data(), graph.centroids.data(), plain.centroids.size() * 4));
    EXPECT_EQ(plain.labels, graph.labels);
    ASSERT_EQ(plain.centroids.size(), kept.centroids.size());
    EXPECT_EQ(0, memcmp(plain.centroids.data(), kept.centroids.data(), plain.centroids.size() * 4));
    EXPECT_EQ(plain.labels, kept.labels);
    ASSERT_EQ(plain.stats.size(), graph.stats.size());
    int splits = 0;
    for (size_t i = 0; i < plain.stats.size(); i++) {
        EXPECT_EQ(plain.stats[i].obj, graph.stats[i].obj) << "iteration " << i;
        EXPECT_EQ(plain.stats[i].nsplit, graph.stats[i].nsplit) << "iteration " << i;
        EXPECT_GT(graph.stats[i].time_search, 0.0) << "iteration " << i;
        EXPECT_GT(kept.stats[i].time_search, 0.0) << "iteration " << i;
        EXPECT_EQ(plain.stats[i].obj, kept.stats[i].obj) << "iteration " << i;
        splits += graph.stats[i].nsplit;
    }
    EXPECT_GT(splits, 0) << "the data was meant to empty clusters";

    // fp16, a batch of 3 problems, labels and objectives back
    const int64_t B = 3, bn = 20000, bd = 64, bk = 100;
    auto xb = fk_test::random_matrix(B * bn, bd, 32);
    flashkmeans::BatchKMeansParams params;
    params.k = bk;
    params.niter = 6;
    flashkmeans::Options o = opts(Backend::CUDA);
    o.dtype = flashkmeans::DType::Float16;
    flashkmeans::PointsView p{xb.data(), flashkmeans::DType::Float32, false, B, bn, bd};
    auto run_batch = [&](const char* mode, std::vector<float>& c, std::vector<int64_t>& l,
                         std::vector<double>& obj) {
        fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::cuda_graph, mode);
        c.assign(B * bk * bd, 0.f);
        l.assign(B * bn, -1);
        obj.assign(B * params.niter, 0.0);
        flashkmeans::batch_kmeans(p, params, {false, c.data(), l.data(), obj.data()}, o);
    };
    std::vector<float> c0, c1;
    std::vector<int64_t> l0, l1;
    std::vector<double> o0, o1;
    run_batch("0", c0, l0, o0);
    run_batch("require", c1, l1, o1);
    EXPECT_EQ(0, memcmp(c0.data(), c1.data(), c0.size() * 4));
    EXPECT_EQ(l0, l1);
    EXPECT_EQ(o0, o1);
}

/// fp16 bits of a small integer (exact in fp16).
uint16_t half_of_int(int v) {
    if (v == 0) {
        return 0;
    }
    const uint16_t sign = v < 0 ? 0x8000 : 0;
    int a = v < 0 ? -v : v, e = 0;
    while ((a >> (e + 1)) != 0) {
        e++;
    }
    const int mantissa = ((a - (1 << e)) << 10) >> e;
    return uint16_t(sign | ((e + 15) << 10) | mantissa);
}

// fp32 points used in fp16 are converted on the device a chunk at a time
// (64 MB of fp32 rows per chunk; here 2 chunks, and rows padded from 70 to 72
// halves): from the host and from the device they give the bits of the same
// points handed over in fp16 by the caller.
TEST(CudaBackend, ChunkedFp16ConversionEqualsPointsGivenInFp16) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 250000, d = 70, k = 64;
    const auto x = fk_test::small_ints(n, d, 41);
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        h[i] = half_of_int(int(x[i]));
    }
    float* dx = nullptr;
    ASSERT_EQ(cudaSuccess, cudaMalloc(&dx, x.size() * 4));
    ASSERT_EQ(cudaSuccess, cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 4;
    auto o = opts(Backend::CUDA);
    o.dtype = flashkmeans::DType::Float16;
    auto run = [&](const flashkmeans::PointsView& p) {
        std::vector<float> c(k * d);
        std::vector<int64_t> l(n);
        flashkmeans::batch_kmeans(p, params, {false, c.data(), l.data(), nullptr}, o);
        return std::make_pair(c, l);
    };
    const auto given = run({h.data(), flashkmeans::DType::Float16, false, 1, n, d});
    const auto host = run({x.data(), flashkmeans::DType::Float32, false, 1, n, d});
    const auto dev = run({dx, flashkmeans::DType::Float32, true, 1, n, d});
    EXPECT_EQ(0, memcmp(given.first.data(), host.first.data(), given.first.size() * 4));
    EXPECT_EQ(given.second, host.second);
    EXPECT_EQ(0, memcmp(given.first.data(), dev.first.data(), given.first.size() * 4));
    EXPECT_EQ(given.second, dev.second);
    cudaFree(dx);
}

// Rows whose bytes are not a multiple of 16 are zero-padded inside the
// engine (so the Hopper kernel runs): a run on such rows equals, bit for bit,
// a run on the same rows padded by the caller, for every dtype and input place.
TEST(CudaBackend, OddDimensionRunsEqualRunsOnRowsPaddedByTheCaller) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 2, n = 6000, k = 40;
    for (flashkmeans::DType dtype : {flashkmeans::DType::Float32, flashkmeans::DType::Float16}) {
        for (int64_t d : {3, 100, 200}) {
            // the caller pads to 16 elements, the engine to 16 bytes (or 16
            // elements for 16-bit rows above 128): zeros change nothing
            const int64_t dp = (d + 15) / 16 * 16;
            SCOPED_TRACE("d=" + std::to_string(d) + (dtype == flashkmeans::DType::Float16 ? " fp16" : " fp32"));
            auto x = fk_test::random_matrix(B * n, d, 41 + d);
            std::vector<float> xp(B * n * dp, 0.f);
            for (int64_t r = 0; r < B * n; r++) {
                std::copy(x.begin() + r * d, x.begin() + (r + 1) * d, xp.begin() + r * dp);
            }
            flashkmeans::Options o = opts(Backend::CUDA);
            o.dtype = dtype;
            flashkmeans::BatchKMeansParams params;
            params.k = k;
            params.niter = 6;
            std::vector<float> c(B * k * d), cp(B * k * dp);
            std::vector<int64_t> l(B * n), lp(B * n);
            flashkmeans::batch_kmeans({x.data(), flashkmeans::DType::Float32, false, B, n, d}, params,
                                      {false, c.data(), l.data(), nullptr}, o);
            flashkmeans::batch_kmeans({xp.data(), flashkmeans::DType::Float32, false, B, n, dp},
                                      params, {false, cp.data(), lp.data(), nullptr}, o);
            EXPECT_EQ(l, lp);
            for (int64_t r = 0; r < B * k; r++) {
                ASSERT_EQ(0, memcmp(&c[r * d], &cp[r * dp], d * 4)) << "centroid row " << r;
            }
            // device input and device output too
            float* dx = nullptr;
            float* dc = nullptr;
            int64_t* dl = nullptr;
            ASSERT_EQ(cudaSuccess, cudaMalloc(&dx, x.size() * 4));
            ASSERT_EQ(cudaSuccess, cudaMalloc(&dc, c.size() * 4));
            ASSERT_EQ(cudaSuccess, cudaMalloc(&dl, l.size() * 8));
            ASSERT_EQ(cudaSuccess, cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
            ASSERT_EQ(cudaSuccess, cudaMemset(dl, 0xff, l.size() * 8));
            flashkmeans::batch_kmeans({dx, flashkmeans::DType::Float32, true, B, n, d}, params,
                                      {true, dc, dl, nullptr}, o);
            std::vector<float> cd(c.size());
            std::vector<int64_t> ld(l.size());
            ASSERT_EQ(cudaSuccess, cudaMemcpy(cd.data(), dc, c.size() * 4, cudaMemcpyDeviceToHost));
            ASSERT_EQ(cudaSuccess, cudaMemcpy(ld.data(), dl, l.size() * 8, cudaMemcpyDeviceToHost));
            EXPECT_EQ(0, memcmp(cd.data(), c.data(), c.size() * 4));
            EXPECT_EQ(ld, l) << "int64 labels widened on the device";
            if (dtype == flashkmeans::DType::Float16) {
                // fp16 points on the device: padded there by pad_rows
                std::vector<__half> xh(x.size());
                for (size_t i = 0; i < x.size(); i++) {
                    xh[i] = __float2half_rn(x[i]);
                }
                ASSERT_EQ(cudaSuccess,
                          cudaMemcpy(dx, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice));
                flashkmeans::batch_kmeans({dx, flashkmeans::DType::Float16, true, B, n, d}, params,
                                          {true, dc, nullptr, nullptr}, o);
                ASSERT_EQ(cudaSuccess,
                          cudaMemcpy(cd.data(), dc, c.size() * 4, cudaMemcpyDeviceToHost));
                EXPECT_EQ(0, memcmp(cd.data(), c.data(), c.size() * 4)) << "fp16 device points";
            }
            cudaFree(dx);
            cudaFree(dc);
            cudaFree(dl);
        }
    }
}

TEST(CudaBackend, SecondCallReusesCachedMemoryAndEmptyCacheReturnsIt) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 3, n = 20000, d = 24, k = 50;
    auto x = fk_test::random_matrix(B * n, d, 31);
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 4;
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, B, n, d};
    auto run = [&] {
        std::vector<float> c(B * k * d);
        flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr}, opts(Backend::CUDA));
        return c;
    };
    flashkmeans::empty_cache();
    const auto first = run();
    const size_t cached = flashkmeans::cached_memory_bytes();
    // at least the points, their norms, labels and distances stayed cached
    EXPECT_GE(cached, size_t(B * n) * (d + 3) * 4);
    size_t free_before = 0, free_after = 0, total = 0;
    ASSERT_EQ(cudaSuccess, cudaMemGetInfo(&free_before, &total));
    const auto second = run();
    ASSERT_EQ(cudaSuccess, cudaMemGetInfo(&free_after, &total));
    EXPECT_EQ(0, memcmp(first.data(), second.data(), first.size() * 4));
    EXPECT_EQ(flashkmeans::cached_memory_bytes(), cached) << "the second call grew the cache";
    // (a few MiB of kernel scratch and graph state come and go with each call)
    EXPECT_GE(free_after + (size_t(8) << 20), free_before) << "the second call took memory from the driver";
    flashkmeans::empty_cache();
    EXPECT_EQ(flashkmeans::cached_memory_bytes(), 0u);
    ASSERT_EQ(cudaSuccess, cudaMemGetInfo(&free_after, &total));
    EXPECT_GE(free_after, free_before + cached - (size_t(16) << 20));
}

TEST(CudaBackend, OutOfMemoryIsAClearError) {
    SKIP_WITHOUT_GPU();
    // 8 problems of 2^31 - 1 points: the per-point buffers alone (norms,
    // labels, distances: 3 x 68 GB) exceed any GPU. The engine allocates
    // everything before its first launch, so the fake point pointer is never
    // read.
    flashkmeans::Options o = opts(Backend::CUDA);
    flashkmeans::PointsView p{reinterpret_cast<const void*>(256), flashkmeans::DType::Float32,
                              true, 8, (int64_t(1) << 31) - 1, 4};
    flashkmeans::BatchKMeansParams params;
    params.k = 10;
    params.niter = 1;
    std::vector<float> c(10 * 512);
    try {
        flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr}, o);
        ADD_FAILURE() << "no exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
    }
}

} // namespace
