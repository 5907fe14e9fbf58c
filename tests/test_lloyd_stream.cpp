// The engine's streamed pass on the CPU (engine/lloyd_stream.cpp): points
// walked in chunks give the labels, objectives and centroids of a resident
// run bit for bit, whatever the chunk; the memory budget chooses the chunk
// (engine/stream_plan.h) and a budget below the minimum names it.
#include "engine/lloyd.h"
#include "engine/stream_plan.h"

#include <flashkmeans/Clustering.h>
#include <flashkmeans/errors.h>

#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using flashkmeans::DType;
using flashkmeans::Lloyd;
using flashkmeans::LloydConfig;
using flashkmeans::LloydData;
using flashkmeans::Place;

struct Problem {
    std::vector<float> x;
    std::vector<float> weights; // empty: unweighted
    int64_t batch = 1, n = 0, d = 0, k = 0, k_frozen = 0;
    int niter = 6;
};

struct EngineRun {
    std::vector<float> centroids;
    std::vector<int32_t> labels;
    std::vector<double> obj;
    std::vector<int> nsplit;
    flashkmeans::StreamPlan plan;
};

/// niter iterations from the same seeding (rows j n / k of every problem).
EngineRun run(const Problem& p, int64_t chunk_rows, size_t budget = 0) {
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
    cfg.chunk_rows = chunk_rows;
    cfg.memory_budget = budget;
    Lloyd lloyd(Place{}, data, cfg);
    std::vector<int64_t> rows(size_t(p.k));
    for (int64_t j = 0; j < p.k; j++) {
        rows[size_t(j)] = j * p.n / p.k;
    }
    lloyd.set_centroids_from_points(rows);
    EngineRun r;
    for (int it = 0; it < p.niter; it++) {
        flashkmeans::LloydStep step = lloyd.iterate();
        r.obj.insert(r.obj.end(), step.obj.begin(), step.obj.end());
        r.nsplit.insert(r.nsplit.end(), step.nsplit.begin(), step.nsplit.end());
    }
    r.centroids.resize(size_t(p.batch * p.k * p.d));
    lloyd.get_centroids(r.centroids.data());
    r.labels = lloyd.labels();
    r.plan = lloyd.plan();
    return r;
}

void expect_streamed_equals_resident(const Problem& p, std::vector<int64_t> chunks) {
    const EngineRun resident = run(p, 0);
    ASSERT_FALSE(resident.plan.streamed);
    for (int64_t c : chunks) {
        SCOPED_TRACE("chunk of " + std::to_string(c) + " points");
        const EngineRun s = run(p, c);
        EXPECT_TRUE(s.plan.streamed);
        EXPECT_EQ(s.plan.chunk_rows, c);
        EXPECT_EQ(s.labels, resident.labels);
        EXPECT_EQ(s.obj, resident.obj);
        EXPECT_EQ(s.nsplit, resident.nsplit);
        ASSERT_EQ(s.centroids.size(), resident.centroids.size());
        EXPECT_EQ(0, std::memcmp(s.centroids.data(), resident.centroids.data(),
                                 s.centroids.size() * sizeof(float)));
    }
}

// n = 5000: past one assignment block (4096 points), and a multiple of none
// of the chunks but n itself.
// upload_rows with ids (FAISS's subsample of host points): dst row r is
// host row ids[r], into pitched rows whose tail stays as it was.
TEST(UploadRows, IdsGatherRowsIntoPitchedRows) {
    const int64_t n = 1000, d = 6, m = 300;
    const std::vector<float> x = fk_test::random_matrix(n, d, 3);
    std::vector<int64_t> ids(static_cast<size_t>(m));
    for (int64_t r = 0; r < m; r++) {
        ids[size_t(r)] = (r * 337 + 11) % n;
    }
    const int64_t pitch = d + 2;
    std::vector<float> out(size_t(m * pitch), -1.f);
    flashkmeans::upload_rows(Place{}, out.data(), pitch * sizeof(float), x.data(),
                             d * sizeof(float), size_t(m), d * sizeof(float), ids.data());
    for (int64_t r = 0; r < m; r++) {
        for (int64_t j = 0; j < pitch; j++) {
            const float want = j < d ? x[size_t(ids[size_t(r)] * d + j)] : -1.f;
            ASSERT_EQ(out[size_t(r * pitch + j)], want) << "row " << r << " column " << j;
        }
    }
}

TEST(LloydStream, StreamedEqualsResidentBitwiseForEveryChunkSize) {
    Problem p;
    p.n = 5000, p.d = 8, p.k = 20;
    p.x = fk_test::blobs(p.n, p.d, p.k, 7, 0.5f);
    expect_streamed_equals_resident(p, {1, 7, p.n - 1, p.n});
}

TEST(LloydStream, StreamedEqualsResidentBitwiseWithWeights) {
    Problem p;
    p.n = 4500, p.d = 5, p.k = 16;
    p.x = fk_test::random_matrix(p.n, p.d, 11);
    const std::vector<float> w = fk_test::random_matrix(p.n, 1, 12);
    for (float v : w) {
        p.weights.push_back(0.25f + std::abs(v));
    }
    expect_streamed_equals_resident(p, {1, 7, p.n - 1, p.n});
}

// Chunks run over the B n rows back to back: a chunk of 7 holds the end of
// one problem and the start of the next.
TEST(LloydStream, StreamedEqualsResidentBitwiseForABatch) {
    Problem p;
    p.batch = 3, p.n = 1000, p.d = 6, p.k = 12;
    p.x = fk_test::random_matrix(p.batch * p.n, p.d, 21);
    const std::vector<float> w = fk_test::random_matrix(p.batch * p.n, 1, 22);
    for (float v : w) {
        p.weights.push_back(1.0f + std::abs(v));
    }
    expect_streamed_equals_resident(p, {1, 7, p.n - 1, p.n, p.batch * p.n - 1});
}

TEST(LloydStream, StreamedEqualsResidentBitwiseWithFrozenCentroids) {
    Problem p;
    p.n = 3000, p.d = 4, p.k = 10, p.k_frozen = 4;
    p.x = fk_test::random_matrix(p.n, p.d, 31);
    expect_streamed_equals_resident(p, {1, 7, p.n - 1, p.n});
}

// Few distinct points for many clusters: clusters go empty and are split
// every iteration, from the same weight sums.
TEST(LloydStream, StreamedEqualsResidentBitwiseWithEmptyClusterSplits) {
    Problem p;
    p.n = 600, p.d = 3, p.k = 40;
    p.x = fk_test::small_ints(p.n, p.d, 41);
    for (float& v : p.x) {
        v = float(int(v) % 3);
    }
    const EngineRun r = run(p, 0);
    int splits = 0;
    for (int s : r.nsplit) {
        splits += s;
    }
    ASSERT_GT(splits, 0);
    expect_streamed_equals_resident(p, {1, 7, p.n - 1});
}

// The budget alone chooses the chunk: the bytes a plan of 7-point chunks
// needs stream in chunks of 7, one byte less in chunks of 6.
TEST(LloydStream, MemoryBudgetChoosesTheChunk) {
    Problem p;
    p.n = 2000, p.d = 8, p.k = 10, p.niter = 2;
    p.x = fk_test::random_matrix(p.n, p.d, 51);
    const EngineRun pinned = run(p, 7);
    const EngineRun by_budget = run(p, 0, pinned.plan.bytes);
    EXPECT_TRUE(by_budget.plan.streamed);
    EXPECT_EQ(by_budget.plan.chunk_rows, 7);
    EXPECT_EQ(by_budget.plan.chunks(), (p.n + 6) / 7);
    EXPECT_EQ(run(p, 0, pinned.plan.bytes - 1).plan.chunk_rows, 6);
    EXPECT_EQ(by_budget.centroids, run(p, 0).centroids);
    // a budget that holds everything: resident
    EXPECT_FALSE(run(p, 0, pinned.plan.bytes * 100).plan.streamed);
}

TEST(LloydStream, BudgetTooSmallNamesTheMinimum) {
    Problem p;
    p.n = 2000, p.d = 8, p.k = 10, p.niter = 1;
    p.x = fk_test::random_matrix(p.n, p.d, 61);
    const size_t min_bytes = run(p, 1).plan.min_bytes;
    EXPECT_EQ(run(p, 0, min_bytes).plan.chunk_rows, 1);
    try {
        run(p, 0, min_bytes - 1);
        FAIL() << "expected InputError";
    } catch (const flashkmeans::InputError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("memory_budget of " + std::to_string(min_bytes - 1) +
                           " bytes is too small"),
                  std::string::npos)
                << msg;
        EXPECT_NE(msg.find("at least " + std::to_string(min_bytes) + " bytes"), std::string::npos)
                << msg;
    }
}

// Through the public API: Options::memory_budget streams a Clustering run
// with weights and frozen input centroids, which equals the resident one.
TEST(LloydStream, ClusteringWithASmallBudgetEqualsResident) {
    const int64_t n = 4000, d = 6, k = 12;
    const std::vector<float> x = fk_test::random_matrix(n, d, 71);
    std::vector<float> w(n);
    for (int64_t i = 0; i < n; i++) {
        w[size_t(i)] = 1.0f + float(i % 5);
    }
    Problem p;
    p.n = n, p.d = d, p.k = k, p.x = x, p.niter = 1;
    const size_t budget = run(p, 100).plan.bytes; // + the weights' array below
    auto train = [&](size_t b) {
        faiss::ClusteringParameters cp;
        cp.niter = 8;
        cp.frozen_centroids = true;
        flashkmeans::Options o;
        o.backend = flashkmeans::Backend::CPU;
        o.memory_budget = b;
        flashkmeans::Clustering clus(int(d), int(k), cp, o);
        clus.centroids.assign(x.begin(), x.begin() + 3 * d); // 3 frozen centroids
        faiss::IndexFlatL2 index(d);
        clus.train(n, x.data(), index, w.data());
        return clus;
    };
    const flashkmeans::Clustering resident = train(0);
    const flashkmeans::Clustering streamed = train(budget + size_t(n) * sizeof(float));
    EXPECT_EQ(resident.memory_plan, "resident");
    EXPECT_EQ(streamed.memory_plan.rfind("streamed in ", 0), 0u) << streamed.memory_plan;
    EXPECT_EQ(streamed.last_labels, resident.last_labels);
    ASSERT_EQ(streamed.iteration_stats.size(), resident.iteration_stats.size());
    for (size_t i = 0; i < resident.iteration_stats.size(); i++) {
        EXPECT_EQ(streamed.iteration_stats[i].obj, resident.iteration_stats[i].obj);
    }
    EXPECT_EQ(0, std::memcmp(streamed.centroids.data(), resident.centroids.data(),
                             resident.centroids.size() * sizeof(float)));
}

flashkmeans::StreamSizes cuda_like_sizes() {
    flashkmeans::StreamSizes s;
    s.n = 1000;
    s.fixed_bytes = 10000;
    s.resident_row_bytes = 100;
    s.chunk_row_bytes = 200; // two slots
    s.workspace = [](int64_t rows, int64_t batch, bool acc) {
        return size_t(rows * batch) * 8 + (acc ? 500 : 0);
    };
    return s;
}

TEST(StreamPlan, ResidentWhenEverythingFits) {
    const flashkmeans::StreamSizes s = cuda_like_sizes();
    EXPECT_FALSE(flashkmeans::plan_stream(s, 0).streamed);
    const size_t all = 10000 + 1000 * 200 + 8000; // a resident plan counts the wider row
    EXPECT_FALSE(flashkmeans::plan_stream(s, all).streamed);
    EXPECT_TRUE(flashkmeans::plan_stream(s, all - 1).streamed);
}

// What the chunks leave keeps whole chunks resident, the leading ones.
TEST(StreamPlan, LeftoverBudgetKeepsLeadingChunksResident) {
    const flashkmeans::StreamSizes s = cuda_like_sizes();
    const int64_t c = 40;
    const size_t chunk = flashkmeans::stream_budget_for_chunk(s, c);
    const flashkmeans::StreamPlan none = flashkmeans::plan_stream(s, chunk, c);
    EXPECT_EQ(none.resident_rows, 0);
    const flashkmeans::StreamPlan some = flashkmeans::plan_stream(s, chunk + 3 * c * 100 + 50, c);
    EXPECT_EQ(some.resident_rows, 3 * c);
    EXPECT_EQ(some.resident_chunks(), 3);
    EXPECT_EQ(some.chunks(), 25);
    EXPECT_DOUBLE_EQ(some.resident_share(), 0.12);
    EXPECT_EQ(some.describe(), "streamed in 25 chunks of 40 points, 12.0% resident");
}

TEST(StreamPlan, ChunkStaysBelowTheLargestCopy) {
    flashkmeans::StreamSizes s = cuda_like_sizes();
    s.n = int64_t(1) << 30;
    s.chunk_row_bytes = 512;
    const flashkmeans::StreamPlan p = flashkmeans::plan_stream(s, size_t(64) << 30);
    EXPECT_TRUE(p.streamed);
    EXPECT_EQ(size_t(p.chunk_rows) * 512, flashkmeans::kMaxChunkBytes);
    EXPECT_EQ(p.resident_rows % p.chunk_rows, 0);
    EXPECT_LE(p.bytes, size_t(64) << 30);
}

} // namespace
