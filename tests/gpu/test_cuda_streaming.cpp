// Streaming on CUDA (engine/chunk_stream.h, engine/lloyd_stream.cpp, the
// update's accumulate mode): host points that do not fit the budget pass
// through pinned staging slots chunk by chunk. Streamed runs are bitwise
// reproducible run to run; they equal the resident run's first assignment
// and its centroids within float rounding (the update adds each chunk's sums
// to the running ones, another order than one reduction over all points);
// peak device memory stays within the budget; the copies hide behind the
// compute.
#include "engine/lloyd.h"

#include <flashkmeans/Clustering.h>
#include <flashkmeans/errors.h>
#include <flashkmeans/kernels.h>
#include <flashkmeans/memory.h>

#include <faiss/IndexFlat.h>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace {

using flashkmeans::Backend;
using flashkmeans::DType;
using flashkmeans::Lloyd;
using flashkmeans::LloydConfig;
using flashkmeans::LloydData;
using flashkmeans::Place;

#define SKIP_WITHOUT_GPU()                       \
    if (flashkmeans::cuda_device_count() == 0) { \
        GTEST_SKIP() << "no GPU";                \
    }

const Place kGpu{Backend::CUDA, 0, nullptr};

struct StreamCase {
    const void* x = nullptr;
    DType dtype = DType::Float32;
    DType compute = DType::Float32;
    const float* weights = nullptr;
    int64_t batch = 1, n = 0, d = 0, k = 0, k_frozen = 0;
    int niter = 5;
    int64_t chunk_rows = 0;
    size_t budget = 0;
    bool prune = false;
};

struct GpuRun {
    std::vector<float> centroids;
    std::vector<int32_t> first_labels, labels;
    std::vector<double> obj, skipped;
    int64_t near_ties = 0;
    flashkmeans::StreamPlan plan;
};

GpuRun run(const StreamCase& s) {
    LloydData data{s.x, s.dtype, false, s.n, s.d, s.batch, s.weights};
    LloydConfig cfg;
    cfg.k = s.k;
    cfg.k_frozen = s.k_frozen;
    cfg.compute_dtype = s.compute;
    cfg.chunk_rows = s.chunk_rows;
    cfg.memory_budget = s.budget;
    cfg.prune = s.prune;
    Lloyd lloyd(kGpu, data, cfg);
    std::vector<int64_t> rows(size_t(s.k));
    for (int64_t j = 0; j < s.k; j++) {
        rows[size_t(j)] = j * s.n / s.k;
    }
    lloyd.set_centroids_from_points(rows);
    GpuRun r;
    for (int it = 0; it < s.niter; it++) {
        flashkmeans::LloydStep step = lloyd.iterate();
        r.obj.insert(r.obj.end(), step.obj.begin(), step.obj.end());
        r.skipped.insert(r.skipped.end(), step.skipped.begin(), step.skipped.end());
        for (int64_t t : step.near_ties) {
            r.near_ties += t;
        }
        if (it == 0) {
            r.first_labels = lloyd.labels();
        }
    }
    r.centroids.resize(size_t(s.batch * s.k * s.d));
    lloyd.get_centroids(r.centroids.data());
    r.labels = lloyd.labels();
    r.plan = lloyd.plan();
    return r;
}

/// fp16 bits of xf, rounded on the device as the engine rounds
std::vector<uint16_t> to_half(const std::vector<float>& xf) {
    float* df = nullptr;
    void* dh = nullptr;
    cudaMalloc(&df, xf.size() * 4);
    cudaMalloc(&dh, xf.size() * 2);
    cudaMemcpy(df, xf.data(), xf.size() * 4, cudaMemcpyHostToDevice);
    flashkmeans::kernels::convert_from_float(kGpu, df, DType::Float16, int64_t(xf.size()), dh);
    std::vector<uint16_t> out(xf.size());
    cudaMemcpy(out.data(), dh, out.size() * 2, cudaMemcpyDeviceToHost);
    cudaFree(df);
    cudaFree(dh);
    return out;
}

using fk_test::max_rel;

void expect_streamed_matches_resident(StreamCase s, int64_t chunk) {
    StreamCase streamed = s;
    streamed.chunk_rows = chunk;
    // run to run, over several iterations (splits included): bitwise
    const GpuRun a = run(streamed), b = run(streamed);
    ASSERT_TRUE(a.plan.streamed);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.obj, b.obj);
    EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * 4));
    // against resident, one iteration from the same centroids: the same
    // assignment; the sums differ in their order of addition only (later
    // iterations may then flip near-ties, so they are not compared)
    s.niter = streamed.niter = 1;
    const GpuRun resident = run(s), one = run(streamed);
    ASSERT_FALSE(resident.plan.streamed);
    EXPECT_EQ(one.first_labels, resident.first_labels);
    EXPECT_EQ(one.obj, resident.obj);
    EXPECT_LT(max_rel(one.centroids, resident.centroids), 1e-5);
    const bool bitwise = std::memcmp(one.centroids.data(), resident.centroids.data(),
                                     one.centroids.size() * 4) == 0;
    std::printf("  chunk %lld (%s): one iteration's centroids %s the resident run's (max rel "
                "diff %.3g)\n",
                (long long)chunk, one.plan.describe().c_str(),
                bitwise ? "bitwise equal to" : "within rounding of",
                max_rel(one.centroids, resident.centroids));
}

TEST(CudaStreaming, StreamedIsReproducibleAndMatchesResident) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.n = 20000, s.d = 32, s.k = 50;
    const std::vector<float> x = fk_test::blobs(s.n, s.d, s.k, 3, 1.0f);
    s.x = x.data();
    for (int64_t chunk : {int64_t(1) << 12, int64_t(7001), s.n - 1, s.n}) {
        SCOPED_TRACE(chunk);
        expect_streamed_matches_resident(s, chunk);
    }
}

// fp32 host points converted to fp16 on the device, d = 100 padded to 104
// (the converted chunk is copied into padded rows), weights, frozen
// centroids and a batch whose chunks straddle problems.
TEST(CudaStreaming, SmallStreamedConvertsPadsAndBatches) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.batch = 2, s.n = 2000, s.d = 100, s.k = 8, s.k_frozen = 3, s.niter = 3;
    s.compute = DType::Float16;
    const std::vector<float> x = fk_test::blobs(s.batch * s.n, s.d, s.k, 5, 1.0f);
    const std::vector<float> w = fk_test::random_weights(s.batch * s.n, 6);
    s.x = x.data();
    s.weights = w.data();
    expect_streamed_matches_resident(s, 1501);
}

// Integer points and weights keep every sum exact whatever the order of
// addition, so a streamed run over several iterations (frozen centroids and
// splits included) gives the resident run's labels and centroids bit for
// bit, for one-point chunks, odd chunks and all points but one.
TEST(CudaStreaming, IntegerPointsStreamedEqualResidentBitwise) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.n = 2000, s.d = 24, s.k = 20, s.k_frozen = 2, s.niter = 4;
    const std::vector<float> x = fk_test::small_ints(s.n, s.d, 31);
    std::vector<float> w(size_t(s.n));
    for (int64_t i = 0; i < s.n; i++) {
        w[size_t(i)] = float(1 + i % 3);
    }
    s.x = x.data();
    s.weights = w.data();
    const GpuRun resident = run(s);
    ASSERT_FALSE(resident.plan.streamed);
    for (int64_t chunk : {int64_t(1), int64_t(7), s.n - 1}) {
        SCOPED_TRACE(chunk);
        StreamCase streamed = s;
        streamed.chunk_rows = chunk;
        const GpuRun r = run(streamed);
        ASSERT_TRUE(r.plan.streamed);
        EXPECT_EQ(r.plan.chunks(), (s.n + chunk - 1) / chunk);
        EXPECT_EQ(r.first_labels, resident.first_labels);
        EXPECT_EQ(r.labels, resident.labels);
        EXPECT_EQ(0, std::memcmp(r.centroids.data(), resident.centroids.data(),
                                 resident.centroids.size() * sizeof(float)));
        ASSERT_EQ(r.obj.size(), resident.obj.size());
        for (size_t i = 0; i < r.obj.size(); i++) {
            EXPECT_NEAR(r.obj[i], resident.obj[i], 1e-9 * std::fabs(resident.obj[i]));
        }
    }
}

/// A pruned run against the same run unpruned: labels differ only at counted
/// near-ties; with none counted, labels, objectives and centroids are bitwise.
void expect_pruned_is_plain(const GpuRun& pruned, const GpuRun& plain) {
    if (pruned.near_ties == 0) {
        EXPECT_EQ(pruned.labels, plain.labels);
        EXPECT_EQ(pruned.obj, plain.obj);
        EXPECT_EQ(0, std::memcmp(pruned.centroids.data(), plain.centroids.data(),
                                 plain.centroids.size() * sizeof(float)));
        return;
    }
    int64_t differ = 0;
    for (size_t i = 0; i < plain.labels.size(); i++) {
        differ += plain.labels[i] != pruned.labels[i];
    }
    EXPECT_LE(differ, pruned.near_ties);
}

// Exact pruning streamed: the moved-centroid filter sees the points a chunk
// at a time and gives the unpruned streamed run's labels, objectives and
// centroids bit for bit, except where it counted near-ties.
TEST(CudaStreaming, PrunedStreamedRunIsTheUnprunedOne) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.n = 20000, s.d = 32, s.k = 200, s.niter = 15;
    const std::vector<float> x = fk_test::blobs(s.n, s.d, s.k, 11, 0.3f);
    s.x = x.data();
    for (DType compute : {DType::Float32, DType::Float16}) {
        for (int64_t chunk : {int64_t(4096), int64_t(7001), s.n - 1}) {
            SCOPED_TRACE(std::to_string(chunk) + (compute == DType::Float16 ? " fp16" : " fp32"));
            StreamCase plain = s;
            plain.compute = compute;
            plain.chunk_rows = chunk;
            StreamCase pruned = plain;
            pruned.prune = true;
            const GpuRun a = run(plain), b = run(pruned);
            ASSERT_TRUE(b.plan.streamed);
            ASSERT_EQ(b.skipped.size(), size_t(s.niter));
            EXPECT_EQ(b.skipped[0], 0.0) << "the first iteration runs in full";
            EXPECT_GT(*std::max_element(b.skipped.begin(), b.skipped.end()), 0.5)
                    << "settled clusters should be skipped";
            expect_pruned_is_plain(b, a);
        }
    }
}

// A batch pruned: one filter per problem, resident and in chunks that
// straddle problems, each the unpruned problem's bits except counted near-ties.
TEST(CudaStreaming, PrunedBatchFiltersEachProblem) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.batch = 3, s.n = 6000, s.d = 16, s.k = 300, s.niter = 12;
    std::vector<float> x;
    for (int64_t b = 0; b < s.batch; b++) {
        const std::vector<float> xb = fk_test::blobs(s.n, s.d, s.k, 21 + b, 0.2f);
        x.insert(x.end(), xb.begin(), xb.end());
    }
    s.x = x.data();
    for (int64_t chunk : {int64_t(0), int64_t(7001)}) {
        SCOPED_TRACE(chunk);
        StreamCase plain = s;
        plain.chunk_rows = chunk;
        StreamCase pruned = plain;
        pruned.prune = true;
        const GpuRun a = run(plain), b = run(pruned);
        ASSERT_EQ(b.plan.streamed, chunk != 0);
        ASSERT_EQ(b.skipped.size(), size_t(s.batch * s.niter));
        for (int64_t p = 0; p < s.batch; p++) {
            EXPECT_EQ(b.skipped[size_t(p)], 0.0) << "the first iteration runs in full";
        }
        EXPECT_GT(*std::max_element(b.skipped.begin(), b.skipped.end()), 0.5);
        expect_pruned_is_plain(b, a);
    }
}

// 16-bit host points stream as they are (no conversion), into padded rows.
TEST(CudaStreaming, StreamedFloat16HostPoints) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.n = 9000, s.d = 36, s.k = 16;
    const std::vector<float> xf = fk_test::blobs(s.n, s.d, s.k, 9, 1.0f);
    const std::vector<uint16_t> xh = to_half(xf);
    s.x = xh.data();
    s.dtype = s.compute = DType::Float16;
    expect_streamed_matches_resident(s, 2500);
}

// The budget, not a pinned chunk: the leading chunks that fit stay resident.
TEST(CudaStreaming, BudgetKeepsLeadingChunksResident) {
    SKIP_WITHOUT_GPU();
    StreamCase s;
    s.n = 30000, s.d = 64, s.k = 32, s.niter = 1;
    const std::vector<float> x = fk_test::blobs(s.n, s.d, s.k, 11, 1.0f);
    s.x = x.data();
    s.chunk_rows = 4000;
    const GpuRun none = run(s);
    s.budget = none.plan.bytes + 2 * 4000 * 64 * 4; // two chunks' rows more
    const GpuRun some = run(s);
    EXPECT_EQ(some.plan.resident_rows, 8000);
    s.chunk_rows = 0;
    s.budget = 0;
    const GpuRun resident = run(s);
    EXPECT_EQ(some.first_labels, resident.first_labels);
    EXPECT_LT(max_rel(some.centroids, resident.centroids), 1e-5);
}

/// The lowest free device memory seen while `work` runs (polled).
template <typename Work>
size_t min_free_during(Work work) {
    std::atomic<bool> done{false};
    std::atomic<size_t> lowest{~size_t(0)};
    std::thread poll([&] {
        cudaSetDevice(0);
        while (!done) {
            size_t f = 0, t = 0;
            if (cudaMemGetInfo(&f, &t) == cudaSuccess && f < lowest) {
                lowest = f;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    });
    try {
        work();
    } catch (...) {
        done = true;
        poll.join();
        throw;
    }
    done = true;
    poll.join();
    return lowest;
}

// 1 GiB of host points under a 256 MiB budget: peak device memory (free
// memory before minus the lowest seen, from cudaMemGetInfo) stays within it
// plus the allocator's granularity.
// k-means++ needs every point for each new centroid: a streamed run seeds on
// the host rows a chunk at a time (kmeanspp_on_ranks), and on small integers
// (every distance and sum exact) picks the resident seeding kernel's rows.
TEST(CudaStreaming, KMeansPlusPlusSeedsAStreamedRunAsResident) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 200000, d = 32, k = 64;
    const std::vector<float> x = fk_test::small_ints(n, d, 29);
    auto train = [&](size_t budget) {
        faiss::ClusteringParameters cp;
        cp.niter = 2;
        cp.max_points_per_centroid = 1 << 30; // every point
        flashkmeans::Options o;
        o.backend = Backend::CUDA;
        o.init = flashkmeans::Init::KMeansPP;
        o.memory_budget = budget;
        flashkmeans::Clustering clus(int(d), int(k), cp, o);
        faiss::IndexFlatL2 index(d);
        clus.train(n, x.data(), index);
        return std::make_pair(clus.centroids, clus.memory_plan);
    };
    const auto resident = train(0);
    const auto streamed = train(size_t(16) << 20);
    EXPECT_EQ(resident.second.rfind("resident", 0), 0u) << resident.second;
    EXPECT_EQ(streamed.second.rfind("streamed", 0), 0u) << streamed.second;
    EXPECT_EQ(streamed.first, resident.first);
}

TEST(CudaStreaming, PeakDeviceMemoryWithinTheBudget) {
    SKIP_WITHOUT_GPU();
    const int64_t n = int64_t(1) << 21, d = 128, k = 1024;
    std::vector<float> x(size_t(n * d));
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = float((i * 2654435761u) % 1000) / 1000.0f;
    }
    const size_t budget = size_t(256) << 20;
    faiss::ClusteringParameters cp;
    cp.niter = 2;
    cp.max_points_per_centroid = 1 << 30; // no subsampling: all 1 GiB
    flashkmeans::Options o;
    o.backend = Backend::CUDA;
    o.memory_budget = budget;
    flashkmeans::Clustering clus(int(d), int(k), cp, o);
    faiss::IndexFlatL2 index(d);
    flashkmeans::empty_cache();
    cudaSetDevice(0);
    cudaDeviceSynchronize();
    size_t free0 = 0, total = 0;
    ASSERT_EQ(cudaMemGetInfo(&free0, &total), cudaSuccess);
    const size_t lowest = min_free_during([&] { clus.train(n, x.data(), index); });
    const size_t peak = free0 - lowest;
    std::printf("  %s; peak device memory %.1f MiB for a budget of %.1f MiB\n",
                clus.memory_plan.c_str(), peak / 1048576.0, budget / 1048576.0);
    EXPECT_EQ(clus.memory_plan.rfind("streamed", 0), 0u) << clus.memory_plan;
    EXPECT_LE(peak, budget + (size_t(32) << 20)); // the pool's 2 MiB pages and CUB's alignment
    flashkmeans::empty_cache();
}

// The kernel: accumulating chunk B onto chunk A's sums gives, bit for bit,
// A's sums plus B's (a float addition per element), counts added, frozen
// rows untouched.
TEST(CudaUpdate, SmallAccumulateAddsTheChunkSums) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 3000, d = 20, k = 17, k_begin = 4, half = 1300;
    const std::vector<float> x = fk_test::random_matrix(n, d, 13);
    const std::vector<float> w = fk_test::random_weights(n, 14);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) {
        labels[size_t(i)] = int32_t((i * 7919) % k);
    }
    float *dx, *dw, *sums, *ws_sums;
    int32_t *dl, *counts;
    cudaMalloc(&dx, x.size() * 4);
    cudaMalloc(&dw, w.size() * 4);
    cudaMalloc(&dl, labels.size() * 4);
    cudaMalloc(&sums, size_t(k * d) * 4);
    cudaMalloc(&ws_sums, size_t(k) * 4);
    cudaMalloc(&counts, size_t(k) * 4);
    cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dl, labels.data(), labels.size() * 4, cudaMemcpyHostToDevice);
    // the frozen rows are never written by the update: zero them once, so
    // reading the whole arrays back reads initialised memory
    cudaMemset(sums, 0, size_t(k * d) * 4);
    cudaMemset(ws_sums, 0, size_t(k) * 4);
    cudaMemset(counts, 0, size_t(k) * 4);
    auto update = [&](int64_t i0, int64_t m, bool acc) {
        flashkmeans::kernels::UpdateArgs u;
        u.x = dx + i0 * d;
        u.n = m;
        u.d = d;
        u.labels = dl + i0;
        u.weights = dw + i0;
        u.k = k;
        u.k_begin = k_begin;
        u.sums = sums;
        u.weight_sums = ws_sums;
        u.counts = counts;
        u.accumulate = acc;
        flashkmeans::kernels::sort_inverse_update(kGpu, u);
    };
    auto get = [&](std::vector<float>& s, std::vector<float>& wsum, std::vector<int32_t>& c) {
        cudaDeviceSynchronize();
        s.resize(size_t(k * d)), wsum.resize(size_t(k)), c.resize(size_t(k));
        cudaMemcpy(s.data(), sums, s.size() * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(wsum.data(), ws_sums, wsum.size() * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(c.data(), counts, c.size() * 4, cudaMemcpyDeviceToHost);
    };
    std::vector<float> sa, wa, sb, wb, s2, w2;
    std::vector<int32_t> ca, cb, c2;
    update(0, half, false);
    get(sa, wa, ca);
    update(half, n - half, false);
    get(sb, wb, cb);
    // frozen rows: a value the update must leave
    std::vector<float> poison(size_t(k * d), 42.0f);
    cudaMemcpy(sums, poison.data(), size_t(k_begin * d) * 4, cudaMemcpyHostToDevice);
    update(0, half, false);
    update(half, n - half, true);
    get(s2, w2, c2);
    for (int64_t j = 0; j < k; j++) {
        EXPECT_EQ(c2[size_t(j)], ca[size_t(j)] + cb[size_t(j)]) << j;
        for (int64_t t = 0; t < d; t++) {
            const size_t i = size_t(j * d + t);
            if (j < k_begin) {
                EXPECT_EQ(s2[i], 42.0f);
            } else {
                EXPECT_EQ(s2[i], sa[i] + sb[i]) << j << " " << t;
            }
        }
        if (j >= k_begin) {
            EXPECT_EQ(w2[size_t(j)], wa[size_t(j)] + wb[size_t(j)]) << j;
        }
    }
    cudaFree(dx), cudaFree(dw), cudaFree(dl), cudaFree(sums), cudaFree(ws_sums), cudaFree(counts);
}

} // namespace
