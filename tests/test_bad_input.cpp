// Bad input never crashes and never gives a silent wrong answer: each case
// throws a faiss::FaissException whose message names the problem.
#include <flashkmeans/AssignIndex.h>
#include <flashkmeans/Clustering.h>
#include <flashkmeans/batch.h>
#include <flashkmeans/ivf.h>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "test_util.h"

namespace {

flashkmeans::Options cpu_options() {
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    return o;
}

// Runs f, expects a faiss::FaissException whose message contains `needle`.
template <typename F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
                << "message was: " << e.what();
    }
}

void train(int64_t n, int d, int k, const float* x, const float* w = nullptr, int index_d = -1,
           flashkmeans::Options opts = cpu_options()) {
    flashkmeans::Clustering c(d, k, faiss::ClusteringParameters(), opts);
    faiss::IndexFlatL2 index(index_d < 0 ? d : index_d);
    c.train(n, x, index, w);
}

TEST(BadInput, NanOrInfInPointsIsRejected) {
    auto x = fk_test::random_matrix(100, 4, 1);
    x[57] = std::nanf("");
    expect_error([&] { train(100, 4, 5, x.data()); }, "NaN");
    x[57] = std::numeric_limits<float>::infinity();
    expect_error([&] { train(100, 4, 5, x.data()); }, "Inf");
}

// The engine finds NaN and Inf through the sums of the squared norms, then
// names the first bad point: here in the third problem of a batch.
TEST(BadInput, NanInABatchNamesTheProblemAndThePoint) {
    const int64_t B = 3, n = 200, d = 5, k = 4;
    auto x = fk_test::random_matrix(B * n, d, 11);
    x[(2 * n + 37) * d + 3] = std::numeric_limits<float>::infinity();
    x[(2 * n + 90) * d] = std::nanf("");
    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = 2;
    std::vector<float> c(B * k * d);
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, B, n, d};
    expect_error([&] { flashkmeans::batch_kmeans(p, params, {false, c.data(), nullptr, nullptr},
                                                 cpu_options()); },
                 "NaN or Inf values (point 37 of problem 2)");
}

// As FAISS: a NaN in a point that subsampling leaves out is still an error.
TEST(BadInput, NanOutsideTheSubsampleIsRejected) {
    const int64_t n = 5000, d = 4;
    const int k = 10;
    auto x = fk_test::random_matrix(n, d, 12);
    faiss::ClusteringParameters cp;
    cp.max_points_per_centroid = 50;  // 500 of 5000 points sampled
    int64_t missed = 0;
    for (int64_t i = 0; i < 21; i++) {  // most of these are outside the sample
        x[i * d] = std::nanf("");
        flashkmeans::Clustering c(d, k, cp, cpu_options());
        faiss::IndexFlatL2 index(d);
        try {
            c.train(n, x.data(), index);
            missed++;
        } catch (const faiss::FaissException& e) {
            EXPECT_NE(std::string(e.what()).find("NaN or Inf values (point " + std::to_string(i) + ")"),
                      std::string::npos) << e.what();
        }
        x[i * d] = 0.5f;
    }
    EXPECT_EQ(missed, 0);
}

TEST(BadInput, PointsTooLargeForFloat32DistancesAreRejected) {
    // |x| ~ 1e20: ||x||^2 overflows float32, and every distance with it
    auto x = fk_test::random_matrix(500, 4, 3);
    for (auto& v : x) {
        v *= 1e20f;
    }
    expect_error([&] { train(500, 4, 5, x.data()); }, "too large for float32 distances");
    // one huge point among ordinary ones is enough
    auto y = fk_test::random_matrix(500, 4, 4);
    y[4 * 321] = 3e19f;
    expect_error([&] { train(500, 4, 5, y.data()); }, "too large for float32 distances");
    // the batch API shares the check
    flashkmeans::PointsView p{x.data(), flashkmeans::DType::Float32, false, 2, 250, 4};
    flashkmeans::BatchKMeansParams params;
    params.k = 5;
    params.niter = 2;
    std::vector<float> c(2 * 5 * 4);
    expect_error([&] { flashkmeans::batch_kmeans(p, params, {false, c.data()}, cpu_options()); },
                 "too large for float32 distances");
}

TEST(BadInput, InitCentroidsTooLargeOrNanAreRejected) {
    auto x = fk_test::random_matrix(500, 4, 5);
    flashkmeans::Clustering c(4, 5, faiss::ClusteringParameters(), cpu_options());
    c.centroids = std::vector<float>(x.begin(), x.begin() + 5 * 4);
    c.centroids[2 * 4 + 1] = 1e20f;
    faiss::IndexFlatL2 index(4);
    expect_error([&] { c.train(500, x.data(), index); }, "centroid 2 has squared norm");
    c.centroids[2 * 4 + 1] = std::nanf("");
    expect_error([&] { c.train(500, x.data(), index); }, "NaN");
}

TEST(BadInput, FewerPointsThanClustersIsRejected) {
    auto x = fk_test::random_matrix(10, 4, 2);
    expect_error([&] { train(10, 4, 11, x.data()); }, "at least as large as number of clusters");
}

TEST(BadInput, NonPositiveKIsRejected) {
    auto x = fk_test::random_matrix(10, 4, 3);
    expect_error([&] { train(10, 4, 0, x.data()); }, "k must be positive");
    expect_error([&] { train(10, 4, -3, x.data()); }, "k must be positive");
}

TEST(BadInput, NonPositiveDimensionIsRejected) {
    auto x = fk_test::random_matrix(10, 4, 4);
    expect_error([&] { train(10, 0, 2, x.data(), nullptr, 0); }, "dimension");
}

TEST(BadInput, IndexDimensionMismatchIsRejected) {
    auto x = fk_test::random_matrix(100, 4, 5);
    expect_error([&] { train(100, 4, 5, x.data(), nullptr, 8); }, "Index dimension 8");
}

TEST(BadInput, NullPointsAreRejected) {
    expect_error([&] { train(100, 4, 5, nullptr); }, "null");
}

TEST(BadInput, NegativeOrAllZeroWeightsAreRejected) {
    auto x = fk_test::random_matrix(100, 4, 6);
    std::vector<float> w(100, 1.f);
    w[3] = -1.f;
    expect_error([&] { train(100, 4, 5, x.data(), w.data()); }, "weights");
    std::vector<float> z(100, 0.f);
    expect_error([&] { train(100, 4, 5, x.data(), z.data()); }, "weights are all zero");
    w[3] = std::nanf("");
    expect_error([&] { train(100, 4, 5, x.data(), w.data()); }, "weights");
}

TEST(BadInput, WrongSizedInputCentroidsAreRejected) {
    auto x = fk_test::random_matrix(100, 4, 7);
    flashkmeans::Clustering c(4, 5, faiss::ClusteringParameters(), cpu_options());
    c.centroids.assign(6, 0.5f); // not a multiple of d = 4
    faiss::IndexFlatL2 index(4);
    expect_error([&] { c.train(100, x.data(), index); }, "multiple of dimension");
}

TEST(BadInput, HalfPrecisionOnCpuIsRejected) {
    auto x = fk_test::random_matrix(100, 4, 8);
    auto opts = cpu_options();
    opts.dtype = flashkmeans::DType::Float16;
    expect_error([&] { train(100, 4, 5, x.data(), nullptr, -1, opts); }, "CUDA backend");
}

TEST(BadInput, CudaBackendWithoutGpuIsAClearError) {
    if (flashkmeans::cuda_device_count() > 0) {
        GTEST_SKIP() << "a GPU is visible";
    }
    auto x = fk_test::random_matrix(100, 4, 9);
    auto opts = cpu_options();
    opts.backend = flashkmeans::Backend::CUDA;
    expect_error([&] { train(100, 4, 5, x.data(), nullptr, -1, opts); }, "cuda");
}

TEST(BadInput, UnknownOptionNamesAreRejected) {
    expect_error([] { flashkmeans::parse_backend("tpu"); }, "unknown backend 'tpu'");
    expect_error([] { flashkmeans::parse_dtype("int8"); }, "unknown dtype 'int8'");
    expect_error([] { flashkmeans::parse_precision("fp64"); }, "unknown precision");
    expect_error([] { flashkmeans::parse_init("farthest"); }, "unknown init");
}

// The iteration-graph switch is read by every engine, CPU included: a typo
// must not silently leave graphs on or off.
TEST(BadInput, UnknownCudaGraphModeIsRejected) {
    auto x = fk_test::random_matrix(100, 4, 3);
    fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::cuda_graph, "off");
    expect_error([&] { train(100, 4, 5, x.data()); },
                 "variant cuda_graph = \"off\" is not one of 0, 1, require");
}

TEST(BadInput, TrainIvfOnNonIvfIndexIsRejected) {
    auto x = fk_test::random_matrix(1000, 8, 10);
    faiss::IndexFlatL2 flat(8);
    expect_error([&] { flashkmeans::train_ivf(flat, 1000, x.data(), cpu_options()); },
                 "neither an IndexIVF");
    std::unique_ptr<faiss::Index> ivf(faiss::index_factory(8, "IVF16,Flat"));
    flashkmeans::train_ivf(*ivf, 1000, x.data(), cpu_options());
    expect_error([&] { flashkmeans::train_ivf(*ivf, 1000, x.data(), cpu_options()); },
                 "already trained");
    x[5] = std::nanf("");
    std::unique_ptr<faiss::Index> ivf2(faiss::index_factory(8, "IVF16,Flat"));
    expect_error([&] { flashkmeans::train_ivf(*ivf2, 1000, x.data(), cpu_options()); }, "NaN");
}

TEST(BadInput, AssignIndexRejectsNanVectorsOnAdd) {
    flashkmeans::AssignIndex index(4, cpu_options());
    auto x = fk_test::random_matrix(10, 4, 11);
    x[9] = std::nanf("");
    expect_error([&] { index.add(10, x.data()); }, "NaN");
}

TEST(BadInput, BatchKMeansChecksItsArguments) {
    auto x = fk_test::random_matrix(50, 4, 12);
    std::vector<float> c(10 * 4);
    flashkmeans::PointsView p;
    p.x = x.data();
    p.n = 50;
    p.d = 4;
    flashkmeans::BatchKMeansParams params;
    params.k = 60;
    flashkmeans::BatchKMeansOutput out;
    out.centroids = c.data();
    expect_error([&] { flashkmeans::batch_kmeans(p, params, out, cpu_options()); },
                 "at least as large");
    params.k = 0;
    expect_error([&] { flashkmeans::batch_kmeans(p, params, out, cpu_options()); },
                 "k must be positive");
}

} // namespace
