// Lloyd::iterate_many with LloydConfig::pipelined (faiss_plugin/engine/lloyd.h):
// iteration i + 1 is queued before the host reads iteration i, and undone
// when iteration i left clusters empty. Whatever the splits, the steps and
// results are those of iterate() one by one, bit for bit.
#include "engine/lloyd.h"

#include <flashkmeans/batch.h>
#include <flashkmeans/kernels.h>
#include <flashkmeans/memory.h>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "test_util.h"

namespace {

namespace fk = flashkmeans;

struct Outcome {
    std::vector<float> centroids;
    std::vector<int32_t> labels;
    std::vector<double> obj;
    std::vector<int> nsplit;
};

/// `count` iterations of B problems from centroids that repeat point rows
/// (`dup` pairs of equal centroids per problem: clusters that go empty and
/// are split), one by one or pipelined.
Outcome run(fk::DType dtype, bool pipelined, int count, int64_t dup, const char* graphs) {
    const int64_t B = 2, n = 20000, d = 64, k = 100;
    fk_test::ScopedVariant v(&fk::kernels::Variants::cuda_graph, graphs);
    const auto x = fk_test::random_matrix(B * n, d, 11);
    fk::LloydConfig cfg;
    cfg.k = k;
    cfg.compute_dtype = dtype;
    cfg.pipelined = pipelined;
    const fk::Place gpu{fk::Backend::CUDA, 0, nullptr};
    fk::Lloyd lloyd(gpu, fk::LloydData{x.data(), fk::DType::Float32, false, n, d, B, nullptr}, cfg);
    std::vector<int64_t> rows(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; j++) {
        rows[size_t(j)] = j < 2 * dup ? (j / 2) * 13 : j * 7 + 1;
    }
    lloyd.set_centroids_from_points(rows);
    Outcome r;
    auto keep = [&](int i, const fk::LloydStep& step) {
        EXPECT_EQ(i, int(r.nsplit.size()) / int(B)) << "steps in order";
        r.obj.insert(r.obj.end(), step.obj.begin(), step.obj.end());
        r.nsplit.insert(r.nsplit.end(), step.nsplit.begin(), step.nsplit.end());
    };
    if (pipelined) {
        lloyd.iterate_many(count, keep);
    } else {
        for (int i = 0; i < count; i++) {
            keep(i, lloyd.iterate());
        }
    }
    r.centroids.resize(size_t(B * k * d));
    lloyd.get_centroids(r.centroids.data());
    r.labels = lloyd.labels();
    return r;
}

void expect_same(const Outcome& a, const Outcome& b) {
    ASSERT_EQ(a.centroids.size(), b.centroids.size());
    EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * 4));
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.obj, b.obj);
    EXPECT_EQ(a.nsplit, b.nsplit);
}

TEST(CudaPipelinedIterations, SameStepsAsOneByOne) {
    if (fk::cuda_device_count() == 0) {
        GTEST_SKIP() << "no GPU";
    }
    for (fk::DType dtype : {fk::DType::Float16, fk::DType::Float32}) {
        SCOPED_TRACE(fk::dtype_name(dtype));
        for (const char* graphs : {"require", "0"}) {
            SCOPED_TRACE(graphs);
            fk::empty_cache();
            const Outcome plain = run(dtype, false, 6, 0, graphs);
            expect_same(run(dtype, true, 6, 0, graphs), plain);
            expect_same(run(dtype, true, 6, 0, graphs), plain); // a kept graph, updated
        }
    }
}

// Duplicate centroids leave clusters empty after the first iteration: the
// second, already queued, is undone and runs again from the split centroids.
TEST(CudaPipelinedIterations, AnIterationAfterEmptyClustersIsUndoneAndRedone) {
    if (fk::cuda_device_count() == 0) {
        GTEST_SKIP() << "no GPU";
    }
    for (fk::DType dtype : {fk::DType::Float16, fk::DType::Float32}) {
        SCOPED_TRACE(fk::dtype_name(dtype));
        fk::empty_cache();
        const Outcome plain = run(dtype, false, 5, 4, "require");
        ASSERT_EQ(plain.nsplit[0], 4) << "problem 0 splits its 4 empty clusters first";
        ASSERT_EQ(plain.nsplit[1], 4);
        expect_same(run(dtype, true, 5, 4, "require"), plain);
        // splits after the last iteration: nothing is queued behind it
        expect_same(run(dtype, true, 1, 4, "require"), run(dtype, false, 1, 4, "require"));
    }
}

// Two threads, each with its own stream and points, repeat calls of one
// shape at once: they share the kept graphs, streams and events of the
// process, and each gets the results it gets alone, bit for bit.
TEST(CudaPipelinedIterations, TwoThreadsOnTwoStreamsGetTheirOwnResults) {
    if (fk::cuda_device_count() == 0) {
        GTEST_SKIP() << "no GPU";
    }
    const int64_t n = 30000, d = 40, k = 64;
    struct Result {
        std::vector<float> centroids;
        std::vector<int64_t> labels;
        std::vector<double> obj;
    };
    auto call = [&](const std::vector<float>& x, cudaStream_t stream) {
        fk::BatchKMeansParams params;
        params.k = k;
        params.niter = 5;
        fk::Options o;
        o.backend = fk::Backend::CUDA;
        o.dtype = fk::DType::Float16;
        o.stream = stream;
        Result r{std::vector<float>(size_t(k * d)), std::vector<int64_t>(size_t(n)),
                 std::vector<double>(size_t(params.niter))};
        fk::PointsView p{x.data(), fk::DType::Float32, false, 1, n, d};
        fk::batch_kmeans(p, params, {false, r.centroids.data(), r.labels.data(), r.obj.data()}, o);
        return r;
    };
    const std::vector<float> xs[2] = {fk_test::random_matrix(n, d, 21),
                                      fk_test::random_matrix(n, d, 22)};
    cudaStream_t streams[2];
    for (cudaStream_t& s : streams) {
        ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
    }
    const Result alone[2] = {call(xs[0], streams[0]), call(xs[1], streams[1])};
    bool same[2] = {true, true};
    std::thread threads[2];
    for (int t = 0; t < 2; t++) {
        threads[t] = std::thread([&, t] {
            try {
                for (int rep = 0; rep < 6; rep++) {
                    const Result r = call(xs[t], streams[t]);
                    same[t] = same[t] && r.labels == alone[t].labels && r.obj == alone[t].obj &&
                              std::memcmp(r.centroids.data(), alone[t].centroids.data(),
                                          r.centroids.size() * 4) == 0;
                }
            } catch (const std::exception& e) {
                same[t] = false;
                std::fprintf(stderr, "thread %d: %s\n", t, e.what());
            }
        });
    }
    for (std::thread& th : threads) {
        th.join();
    }
    EXPECT_TRUE(same[0]);
    EXPECT_TRUE(same[1]);
    for (cudaStream_t s : streams) {
        cudaStreamDestroy(s);
    }
}

} // namespace
