// Data-parallel Clustering::train over MPI: each rank trains on its shard,
// and the run must equal one process trained on the concatenation (rank 0's
// rows, then rank 1's, ...). On integer-valued points every cluster sum is
// exact in any order, so the centroids must be the same bits and the labels
// the same; the objective (a sum of rounded distances) to float rounding.
// Under a memory budget each rank streams its shard (on the CPU, read in
// place a chunk at a time), and the run must be the same ranks' resident run
// bit for bit. Run under mpirun with 1, 2 and 3 ranks (tests/CMakeLists.txt);
// FLASHKMEANS_TEST_BACKEND=cuda runs the same cases on a GPU.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/errors.h>
#include <flashkmeans/mpi_communicator.h>

#include <flashkmeans/variants.h>

#include "engine/init.h"
#include "engine/lloyd.h"
#include "engine/rank_reduce.h"

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../test_util.h"
#include "shards.h"

namespace {

using fk_test::first_row;
using fk_test::rank_of_world;
using fk_test::ranks_of_world;
using fk_test::shard_sizes;
using fk_test::Split;
using flashkmeans::Init;

struct Case {
    int64_t n = 1200, d = 8, k = 12;
    int niter = 12;
    bool integer_data = true;
    bool weighted = false;
    int max_points_per_centroid = 256;
    int nredo = 1;
    bool spherical = false;
    bool inner_product = false;
    int64_t frozen = 0; ///< input centroids (frozen), taken from the data
    Init init = Init::Random;
    Split split = Split::Uneven;
    bool expect_splits = false; ///< the case must split empty clusters
    /// > 0: each rank trains under the memory budget that streams its
    /// training points in chunks of this many (Options::memory_budget)
    int64_t stream_chunk = 0;
    /// the ranks prune (Options::prune), the one process does not; both
    /// assign with the fused CPU kernel, whose labels pruning cannot change
    bool prune = false;
    bool fused = false;
    /// >= 0: scikit-learn's stopping rule (Clustering::tol); the run must
    /// stop early, every rank at the one process's iteration
    double tol = -1;
    /// integer points around k well-apart integer centres, so that the
    /// clusters settle and pruning has work to skip
    bool clustered = false;
};

/// The backend the ranks train on: the CPU, or with FLASHKMEANS_TEST_BACKEND=cuda
/// the GPU (every rank on device 0, the exchange through host memory: two MPI
/// ranks on one GPU, which NCCL cannot have).
flashkmeans::Backend test_backend() {
    const char* b = std::getenv("FLASHKMEANS_TEST_BACKEND");
    return b && std::string(b) == "cuda" ? flashkmeans::Backend::CUDA : flashkmeans::Backend::CPU;
}

/// A rank of MPI_COMM_WORLD on the test's backend.
flashkmeans::Options world_options() {
    flashkmeans::Options o;
    o.backend = test_backend();
    o.comm = flashkmeans::mpi_communicator(MPI_COMM_WORLD);
    return o;
}

struct Result {
    std::vector<float> centroids;
    std::vector<float> obj;
    std::vector<int> nsplit;
    std::vector<int64_t> labels; ///< of this rank's training points
    std::string memory_plan;
    std::vector<double> skipped; ///< with prune: each iteration's share skipped
};

Result train(const Case& c, int64_t n, const float* x, const float* w,
             std::shared_ptr<flashkmeans::Communicator> comm, const std::vector<float>& given,
             size_t memory_budget = 0) {
    faiss::ClusteringParameters cp;
    cp.niter = c.niter;
    cp.nredo = c.nredo;
    cp.spherical = c.spherical;
    cp.max_points_per_centroid = c.max_points_per_centroid;
    cp.frozen_centroids = c.frozen > 0;
    cp.seed = 1234;
    flashkmeans::Options o;
    o.backend = test_backend();
    o.init = c.init;
    o.comm = std::move(comm);
    o.memory_budget = memory_budget;
    o.prune = c.prune;
    if (c.fused) {
        o.cpu_kernel = flashkmeans::CpuKernel::Fused;
    }
    flashkmeans::Clustering clus(int(c.d), int(c.k), cp, o);
    clus.centroids = given;
    clus.tol = c.tol;
    std::unique_ptr<faiss::IndexFlat> index;
    if (c.inner_product) {
        index.reset(new faiss::IndexFlatIP(c.d));
    } else {
        index.reset(new faiss::IndexFlatL2(c.d));
    }
    clus.train(n, x, *index, w);
    Result r;
    r.centroids = clus.centroids;
    for (const auto& s : clus.iteration_stats) {
        r.obj.push_back(s.obj);
        r.nsplit.push_back(s.nsplit);
    }
    r.labels = clus.last_labels;
    r.memory_plan = clus.memory_plan;
    r.skipped = clus.skipped_work;
    EXPECT_EQ(index->ntotal, c.k);
    return r;
}

/// The plan of a rank's engine on the test's backend over `rows` training
/// points (their values do not matter, only the sizes), its chunk pinned to
/// `chunk` points: plan.bytes is the budget that makes Clustering stream in
/// chunks of `chunk` (on the CPU read in place, on a GPU none resident).
flashkmeans::StreamPlan plan_for_chunk(const Case& c, int64_t rows, const float* x, bool weighted,
                                       int64_t chunk) {
    const std::vector<float> w(size_t(rows), 1.0f);
    flashkmeans::LloydData data;
    data.x = x;
    data.n = rows;
    data.d = c.d;
    data.weights = weighted ? w.data() : nullptr;
    flashkmeans::LloydConfig cfg;
    cfg.k = c.k;
    cfg.chunk_rows = chunk;
    return flashkmeans::Lloyd(flashkmeans::Place{test_backend(), 0, nullptr}, data, cfg).plan();
}

/// The global ids of this rank's training points: its rows, or after
/// subsampling the sample positions whose point it holds.
std::vector<int64_t> training_ids(const Case& c, int64_t offset, int64_t n_local) {
    std::vector<int64_t> ids;
    const int64_t nsub = c.k * c.max_points_per_centroid;
    if (c.n > nsub) {
        const std::vector<int64_t> perm = flashkmeans::rand_perm_prefix(c.n, nsub, 1234);
        for (int64_t s = 0; s < nsub; s++) {
            if (perm[size_t(s)] >= offset && perm[size_t(s)] < offset + n_local) {
                ids.push_back(s);
            }
        }
    } else {
        for (int64_t i = 0; i < n_local; i++) {
            ids.push_back(offset + i);
        }
    }
    return ids;
}

/// The same vector on every rank?
template <typename T>
bool same_on_every_rank(const std::vector<T>& v) {
    const int R = ranks_of_world();
    std::vector<T> all(v.size() * size_t(R));
    MPI_Allgather(v.data(), int(v.size() * sizeof(T)), MPI_BYTE, all.data(),
                  int(v.size() * sizeof(T)), MPI_BYTE, MPI_COMM_WORLD);
    for (int r = 1; r < R; r++) {
        if (std::memcmp(all.data(), all.data() + size_t(r) * v.size(), v.size() * sizeof(T))) {
            return false;
        }
    }
    return true;
}

void expect_distributed_equals_one_process(const Case& c) {
    const int R = ranks_of_world(), me = rank_of_world();
    std::vector<float> x = c.integer_data ? fk_test::small_ints(c.n, c.d, 7)
                                          : fk_test::blobs(c.n, c.d, c.k, 7, 1.0f);
    if (c.clustered) {
        // centre j = 40 j in every coordinate: squared distances stay exact in fp32
        for (int64_t i = 0; i < c.n; i++) {
            for (int64_t t = 0; t < c.d; t++) {
                x[size_t(i * c.d + t)] += float(40 * ((i * 7) % c.k));
            }
        }
    }
    std::vector<float> w;
    if (c.weighted) {
        // integer weights keep every weighted sum exact
        for (int64_t i = 0; i < c.n; i++) {
            w.push_back(float(1 + i % 3));
        }
    }
    std::vector<float> given(x.begin(), x.begin() + c.frozen * c.d);
    Case unpruned = c;
    unpruned.prune = false;
    const Result one =
            train(unpruned, c.n, x.data(), c.weighted ? w.data() : nullptr, nullptr, given);

    const std::vector<int64_t> sizes = shard_sizes(c.n, R, c.split);
    const int64_t offset = first_row(sizes, me);
    const int64_t n_local = sizes[size_t(me)];
    const float* x_local = n_local ? x.data() + offset * c.d : nullptr;
    const float* w_local = c.weighted && n_local ? w.data() + offset : nullptr;
    const std::vector<int64_t> ids = training_ids(c, offset, n_local);
    flashkmeans::StreamPlan plan;
    if (c.stream_chunk > 0) {
        plan = plan_for_chunk(c, int64_t(ids.size()), x.data(), c.weighted, c.stream_chunk);
    }
    const Result many = train(c, n_local, x_local, w_local,
                              flashkmeans::mpi_communicator(MPI_COMM_WORLD), given, plan.bytes);
    if (c.stream_chunk > 0) {
        // this rank streamed its shard in several chunks, and its run is the
        // same ranks' resident run bit for bit
        const int64_t chunks = (int64_t(ids.size()) + c.stream_chunk - 1) / c.stream_chunk;
        EXPECT_GE(chunks, 2) << "rank " << me << " holds too few points to stream";
        const std::string where =
                test_backend() == flashkmeans::Backend::CPU ? "read in place" : "0.0% resident";
        EXPECT_EQ(many.memory_plan, "streamed in " + std::to_string(chunks) + " chunks of " +
                                            std::to_string(c.stream_chunk) + " points, " + where)
                << "rank " << me << " of " << R;
        const Result resident = train(c, n_local, x_local, w_local,
                                      flashkmeans::mpi_communicator(MPI_COMM_WORLD), given);
        EXPECT_EQ(resident.memory_plan, "resident");
        ASSERT_EQ(many.centroids.size(), resident.centroids.size());
        EXPECT_EQ(0, std::memcmp(many.centroids.data(), resident.centroids.data(),
                                 many.centroids.size() * sizeof(float)))
                << "streamed centroids differ from resident on rank " << me << " of " << R;
        EXPECT_EQ(many.obj, resident.obj) << "rank " << me << " of " << R;
        EXPECT_EQ(many.nsplit, resident.nsplit);
        EXPECT_EQ(many.labels, resident.labels);
    }

    if (c.prune) {
        // some rank skipped most of an assignment (the checks below then
        // show that it changed nothing)
        double most = 0, most_anywhere = 0;
        for (double v : many.skipped) {
            most = std::max(most, v);
        }
        MPI_Allreduce(&most, &most_anywhere, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        EXPECT_GT(most_anywhere, 0.5) << "rank " << me << " of " << R;
    }
    ASSERT_EQ(many.centroids.size(), one.centroids.size());
    if (c.integer_data) {
        EXPECT_EQ(0, std::memcmp(many.centroids.data(), one.centroids.data(),
                                 one.centroids.size() * sizeof(float)))
                << "centroids differ from one process's bits on rank " << me << " of " << R;
    } else {
        for (size_t i = 0; i < one.centroids.size(); i++) {
            ASSERT_NEAR(many.centroids[i], one.centroids[i],
                        1e-5 * std::max(1.f, std::fabs(one.centroids[i])))
                    << "centroid value " << i << " on rank " << me << " of " << R;
        }
    }
    EXPECT_EQ(many.nsplit, one.nsplit);
    int splits = 0;
    for (int s : one.nsplit) {
        splits += s;
    }
    EXPECT_EQ(splits > 0, c.expect_splits) << "empty-cluster splits in the one-process run";
    ASSERT_EQ(many.obj.size(), one.obj.size()) << "iterations run";
    if (c.tol >= 0) {
        EXPECT_LT(one.obj.size(), size_t(c.niter)) << "the stopping rule never stopped the run";
    }
    for (size_t i = 0; i < one.obj.size(); i++) {
        EXPECT_NEAR(many.obj[i], one.obj[i], 1e-6 * std::fabs(one.obj[i])) << "iteration " << i;
    }
    ASSERT_EQ(many.labels.size(), ids.size());
    for (size_t i = 0; i < ids.size(); i++) {
        ASSERT_EQ(many.labels[i], one.labels[size_t(ids[i])]) << "training point " << ids[i];
    }
    // every rank finished every iteration with the same numbers
    EXPECT_TRUE(same_on_every_rank(many.centroids));
    EXPECT_TRUE(same_on_every_rank(many.obj));
    EXPECT_TRUE(same_on_every_rank(many.nsplit));
}

TEST(Distributed, EqualsOneProcessBitwiseOnIntegerData) {
    expect_distributed_equals_one_process(Case{});
}

TEST(Distributed, PrunedShardsEqualOneUnprunedProcess) {
    // each rank prunes its own points against the same centroids: the labels
    // and centroids of one unpruned process, bit for bit on integer points
    for (bool weighted : {false, true}) {
        Case c;
        c.n = 2400;
        c.niter = 15;
        c.prune = true;
        c.fused = test_backend() == flashkmeans::Backend::CPU; // the CPU's pruning kernel
        c.clustered = true;
        c.weighted = weighted;
        c.split = weighted ? Split::EmptyFirst : Split::Uneven;
        SCOPED_TRACE(weighted ? "weighted, a rank with no points" : "uneven shards");
        expect_distributed_equals_one_process(c);
    }
}

TEST(Distributed, StoppingRuleStopsEveryRankAtTheOneProcessIteration) {
    // labels unchanged on one rank but not on another must not stop it alone
    for (Split split : {Split::Uneven, Split::EmptyFirst}) {
        Case c;
        c.clustered = true;
        c.tol = 0;
        c.niter = 60;
        c.split = split;
        expect_distributed_equals_one_process(c);
    }
}

TEST(Distributed, EvenShardsEqualOneProcess) {
    Case c;
    c.split = Split::Even;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, RankWithNoPointsEqualsOneProcess) {
    Case c;
    c.split = Split::EmptyFirst;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, MoreClustersThanARanksPointsEqualsOneProcess) {
    Case c;
    c.split = Split::TinyFirst;
    c.k = 20;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, WeightsEqualOneProcess) {
    Case c;
    c.weighted = true;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, SubsamplingTakesFaissSampleOverAllRanks) {
    Case c;
    c.max_points_per_centroid = 40; // 480 of 1200 points
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, NredoKeepsTheSameRunAsOneProcess) {
    Case c;
    c.nredo = 3;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, SphericalInnerProductEqualsOneProcess) {
    Case c;
    c.spherical = true;
    c.inner_product = true;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, FrozenCentroidsEqualOneProcess) {
    Case c;
    c.frozen = 3;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, KMeansPlusPlusEqualsOneProcess) {
    Case c;
    c.init = Init::KMeansPP;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, KMeansPlusPlusWithARankWithNoPointsEqualsOneProcess) {
    Case c;
    c.init = Init::KMeansPP;
    c.split = Split::EmptyFirst;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, KMeansPlusPlusFromGivenCentroidsEqualsOneProcess) {
    Case c;
    c.init = Init::KMeansPP;
    c.frozen = 3;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, KMeansPlusPlusOnTheSubsampleEqualsOneProcess) {
    // the seeding walks the sample, interleaved across ranks, in its order
    Case c;
    c.init = Init::KMeansPP;
    c.max_points_per_centroid = 40;
    c.weighted = true;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, AsManyPointsAsClustersCopiesThemInGlobalOrder) {
    // FAISS's shortcut: the centroids are the points, rank 0's first
    const int R = ranks_of_world(), me = rank_of_world();
    const int64_t d = 3, k = 7;
    const std::vector<float> x = fk_test::small_ints(k, d, 11);
    const std::vector<int64_t> sizes = shard_sizes(k, R, Split::Uneven);
    const int64_t offset = first_row(sizes, me);
    const flashkmeans::Options o = world_options();
    flashkmeans::Clustering clus(int(d), int(k), faiss::ClusteringParameters(), o);
    faiss::IndexFlatL2 index(d);
    clus.train(sizes[size_t(me)], x.data() + offset * d, index);
    EXPECT_EQ(clus.centroids, x);
    EXPECT_EQ(index.ntotal, k);
}

/// Many clusters on few distinct values: clusters go empty and are split.
Case with_splits(int64_t k) {
    Case c;
    c.k = k;
    c.n = 600;
    c.d = 2;
    c.expect_splits = true;
    return c;
}

TEST(Distributed, EmptyClusterSplitsEqualOneProcess) {
    expect_distributed_equals_one_process(with_splits(60));
}

TEST(Distributed, StreamedShardsEqualResidentShardsAndOneProcess) {
    Case c;
    c.stream_chunk = 37; // 200, 400 and 600 points on 3 ranks: 6 to 17 chunks
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, StreamedShardsWithWeightsAndSubsamplingEqualResidentShards) {
    Case c;
    c.weighted = true;
    c.max_points_per_centroid = 40; // 480 of 1200 points, about 80 on rank 0 of 3
    c.stream_chunk = 23;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, StreamedShardsWithEmptyClusterSplitsEqualResidentShards) {
    Case c = with_splits(60);
    c.stream_chunk = 17;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, StreamedShardsWithKMeansPlusPlusAndNredoEqualResidentShards) {
    // the seeding reads the rows from the streamed engines, and each redo
    // streams the shards again
    Case c;
    c.init = Init::KMeansPP;
    c.nredo = 2;
    c.stream_chunk = 37;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, RealValuedDataGivesSameLabelsAndCentroidsToRounding) {
    Case c;
    c.integer_data = false;
    c.d = 16;
    expect_distributed_equals_one_process(c);
}

TEST(Distributed, ReduceScatterExchangeEqualsOneProcess) {
    // the exchange the rule takes for large packets on 3 or more ranks,
    // pinned on the cases that stress its slicing (counts not a multiple
    // of the rank count, empty clusters, weights, frozen rows)
    flashkmeans::kernels::Variants v;
    v.rank_exchange = "reduce_scatter";
    flashkmeans::kernels::set_default_variants(v);
    Case c;
    c.k = 13; // 13 x 8 sums: slices of 5, 5 and 3 values on 3 ranks
    expect_distributed_equals_one_process(c);
    c.split = Split::EmptyFirst;
    c.weighted = true;
    c.frozen = 2;
    expect_distributed_equals_one_process(c);
    expect_distributed_equals_one_process(with_splits(61));
    flashkmeans::kernels::set_default_variants(flashkmeans::kernels::Variants());
}

TEST(Distributed, ExchangeRuleGathersSmallPacketsAndReduceScattersLargeOnes) {
    using flashkmeans::RankExchange;
    // 2 ranks receive one packet either way; 8 ranks of 1Mx1024x128's 0.5 MB
    // packets gather 2.8 MB more than a reduce-scatter, under 4 MiB; 16 such
    // ranks, or 8 ranks of 4 MB packets, are over
    EXPECT_EQ(flashkmeans::rank_exchange_rule(2, 64 << 20), RankExchange::AllGather);
    EXPECT_EQ(flashkmeans::rank_exchange_rule(8, 4 * (1024 * 128 + 2048) + 24),
              RankExchange::AllGather);
    EXPECT_EQ(flashkmeans::rank_exchange_rule(16, 4 * (1024 * 128 + 2048) + 24),
              RankExchange::ReduceScatter);
    EXPECT_EQ(flashkmeans::rank_exchange_rule(8, 4 << 20), RankExchange::ReduceScatter);
}

TEST(Distributed, NaNOnOneRankFailsEveryRank) {
    const int R = ranks_of_world(), me = rank_of_world();
    const int64_t n = 100, d = 4, k = 4;
    std::vector<float> x = fk_test::small_ints(n, d, 3);
    if (me == R - 1) {
        x[5] = std::numeric_limits<float>::quiet_NaN();
    }
    faiss::ClusteringParameters cp;
    cp.niter = 3;
    const flashkmeans::Options o = world_options();
    flashkmeans::Clustering clus(int(d), int(k), cp, o);
    faiss::IndexFlatL2 index(d);
    EXPECT_THROW(clus.train(n, x.data(), index), flashkmeans::InputError) << "rank " << me;
}

TEST(Distributed, TooFewPointsOverAllRanksFailsEveryRank) {
    const int R = ranks_of_world();
    const int64_t d = 4, k = 3 * int64_t(R) + 1;
    std::vector<float> x = fk_test::small_ints(3, d, 3);
    const flashkmeans::Options o = world_options();
    flashkmeans::Clustering clus(int(d), int(k), faiss::ClusteringParameters(), o);
    faiss::IndexFlatL2 index(d);
    EXPECT_THROW(clus.train(3, x.data(), index), faiss::FaissException);
}

TEST(Distributed, BudgetTooSmallForOneRanksShardFailsEveryRank) {
    // One budget on every rank, one byte below what the last rank's shard
    // (the largest) needs: the smaller shards would stream under it, the
    // last rank's plan fails, and every rank must throw rather than wait in
    // the set-up's next exchange.
    const int R = ranks_of_world(), me = rank_of_world();
    Case c;
    const std::vector<float> x = fk_test::small_ints(c.n, c.d, 7);
    const std::vector<int64_t> sizes = shard_sizes(c.n, R, c.split);
    const int64_t offset = first_row(sizes, me);
    const size_t budget = plan_for_chunk(c, sizes[size_t(R - 1)], x.data(), false, 1).min_bytes - 1;
    faiss::ClusteringParameters cp;
    cp.niter = 3;
    flashkmeans::Options o = world_options();
    o.memory_budget = budget;
    flashkmeans::Clustering clus(int(c.d), int(c.k), cp, o);
    faiss::IndexFlatL2 index(c.d);
    std::string msg;
    try {
        clus.train(sizes[size_t(me)], x.data() + offset * c.d, index);
        ADD_FAILURE() << "no error on rank " << me << " of " << R;
    } catch (const flashkmeans::InputError& e) {
        msg = e.what();
    }
    // every rank says why; the others name the rank that failed
    EXPECT_NE(msg.find("memory_budget of " + std::to_string(budget) + " bytes is too small"),
              std::string::npos)
            << "rank " << me << ": " << msg;
    if (me != R - 1) {
        EXPECT_NE(msg.find("rank " + std::to_string(R - 1)), std::string::npos) << msg;
    }
    // every rank left train() at the same point: the next exchange matches
    EXPECT_TRUE(same_on_every_rank(std::vector<int64_t>{c.n, c.k}));
}

TEST(Distributed, BadArgumentOnOneRankFailsEveryRank) {
    // the last rank's index has the wrong dimension: every rank throws, and
    // none is left waiting in train()'s next exchange
    const int R = ranks_of_world(), me = rank_of_world();
    Case c;
    const std::vector<float> x = fk_test::small_ints(c.n, c.d, 5);
    const std::vector<int64_t> sizes = shard_sizes(c.n, R, c.split);
    const int64_t offset = first_row(sizes, me);
    faiss::ClusteringParameters cp;
    cp.niter = 3;
    const flashkmeans::Options o = world_options();
    flashkmeans::Clustering clus(int(c.d), int(c.k), cp, o);
    faiss::IndexFlatL2 index(me == R - 1 ? c.d + 1 : c.d);
    std::string msg;
    try {
        clus.train(sizes[size_t(me)], x.data() + offset * c.d, index);
        ADD_FAILURE() << "no error on rank " << me << " of " << R;
    } catch (const faiss::FaissException& e) {
        msg = e.what();
    }
    EXPECT_NE(msg.find("Index dimension"), std::string::npos) << "rank " << me << ": " << msg;
    EXPECT_TRUE(same_on_every_rank(std::vector<int64_t>{c.n, c.k}));
}

/// Interrupted from its 4th question on: what a signal seen by one process does.
struct InterruptFromFourthCheck : faiss::InterruptCallback {
    int checks = 0;
    bool want_interrupt() override {
        return ++checks >= 4;
    }
};

TEST(Distributed, InterruptOnOneRankStopsEveryRankAtTheSameIteration) {
    const int R = ranks_of_world(), me = rank_of_world();
    const int64_t n = 300, d = 4, k = 5;
    const std::vector<float> x = fk_test::small_ints(n, d, 5);
    if (me == R - 1) {
        faiss::InterruptCallback::instance.reset(new InterruptFromFourthCheck());
    }
    faiss::ClusteringParameters cp;
    cp.niter = 20;
    const flashkmeans::Options o = world_options();
    flashkmeans::Clustering clus(int(d), int(k), cp, o);
    faiss::IndexFlatL2 index(d);
    std::string msg = "no exception";
    try {
        clus.train(n, x.data(), index);
    } catch (const faiss::FaissException& e) {
        msg = e.what();
    }
    faiss::InterruptCallback::instance.reset();
    // without the agreement, the other ranks would wait in the next exchange
    EXPECT_NE(msg.find("interrupted"), std::string::npos) << "rank " << me << ": " << msg;
    EXPECT_TRUE(same_on_every_rank(std::vector<int64_t>{int64_t(clus.iteration_stats.size())}));
}

} // namespace
