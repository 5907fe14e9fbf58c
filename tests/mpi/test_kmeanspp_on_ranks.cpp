// k-means++ seeding across ranks (faiss_plugin/engine/kmeanspp_on_ranks.cpp):
// on integer data the centroids must be one process's bits, and no collective
// may carry the points: each rank sees only messages of O(R + d) bytes, where
// gathering the training rows moves n_total x d floats. Run under mpirun
// with 1, 2 and 3 ranks (tests/CMakeLists.txt).
#include <flashkmeans/mpi_communicator.h>

#include "engine/init.h"
#include "engine/lloyd.h"
#include "engine/shard.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "../test_util.h"
#include "shards.h"

namespace {

namespace fk = flashkmeans;

/// Forwards to another communicator and records the most bytes one
/// collective delivered to this rank.
class RecordingCommunicator : public fk::Communicator {
   public:
    explicit RecordingCommunicator(std::shared_ptr<fk::Communicator> inner)
            : inner_(std::move(inner)) {}
    int rank() const override {
        return inner_->rank();
    }
    int size() const override {
        return inner_->size();
    }
    const char* name() const override {
        return inner_->name();
    }
    void allgather(const void* send, void* recv, size_t bytes) override {
        record(bytes * size_t(size()));
        inner_->allgather(send, recv, bytes);
    }
    void broadcast(void* buf, size_t bytes, int root) override {
        record(bytes);
        inner_->broadcast(buf, bytes, root);
    }
    void alltoall(const void* send, void* recv, size_t bytes) override {
        record(bytes * size_t(size()));
        inner_->alltoall(send, recv, bytes);
    }
    void allgather_on(const fk::Place& place, const void* send, void* recv, size_t bytes) override {
        record(bytes * size_t(size()));
        inner_->allgather_on(place, send, recv, bytes);
    }
    void alltoall_on(const fk::Place& place, const void* send, void* recv, size_t bytes) override {
        record(bytes * size_t(size()));
        inner_->alltoall_on(place, send, recv, bytes);
    }

    size_t largest = 0; ///< bytes of the largest collective since the last reset
    int64_t calls = 0;  ///< collectives since the last reset

   private:
    void record(size_t bytes) {
        largest = std::max(largest, bytes);
        calls++;
    }
    std::shared_ptr<fk::Communicator> inner_;
};

struct SeedCase {
    int64_t n = 3000, d = 8, k = 10;
    int64_t n_given = 0; ///< rows [0, n_given) of the centroids given: points n - 1, n - 2, ...
    fk_test::Split split = fk_test::Split::Uneven;
    int64_t distinct = 0; ///< > 0: the points repeat this many distinct rows
};

std::vector<float> points(const SeedCase& c) {
    std::vector<float> x = fk_test::small_ints(c.n, c.d, 5);
    if (c.distinct > 0) {
        for (int64_t i = c.distinct; i < c.n; i++) {
            std::copy_n(x.begin() + (i % c.distinct) * c.d, c.d, x.begin() + i * c.d);
        }
    }
    return x;
}

std::vector<float> given_rows(const SeedCase& c, const std::vector<float>& x) {
    std::vector<float> given(size_t(c.k * c.d), 0.f);
    for (int64_t j = 0; j < c.n_given; j++) {
        std::copy_n(x.begin() + (c.n - 1 - j) * c.d, c.d, given.begin() + j * c.d);
    }
    return given;
}

fk::Lloyd make_lloyd(const float* x, int64_t n, const SeedCase& c,
                     std::shared_ptr<fk::Communicator> comm) {
    fk::LloydData data{x, fk::DType::Float32, false, n, c.d, 1, nullptr};
    fk::LloydConfig cfg;
    cfg.k = c.k;
    cfg.comm = std::move(comm);
    return fk::Lloyd(fk::Place{}, data, cfg);
}

/// Seeds on the world's ranks and in one process; expects the same bits on
/// every rank, and no collective of the seeding above O(R + d) bytes.
void expect_seeding_on_ranks_equals_one_process(const SeedCase& c) {
    const int R = fk_test::ranks_of_world(), me = fk_test::rank_of_world();
    const int64_t seed = 77;
    const std::vector<float> x = points(c);
    std::vector<float> one = given_rows(c, x);
    {
        fk::Lloyd whole = make_lloyd(x.data(), c.n, c, nullptr);
        fk::initialize_centroids(whole, fk::Init::KMeansPP, seed, size_t(c.n_given), size_t(c.k),
                                 size_t(c.d), one.data());
    }

    const std::vector<int64_t> sizes = fk_test::shard_sizes(c.n, R, c.split);
    const int64_t offset = fk_test::first_row(sizes, me);
    const int64_t n_local = sizes[size_t(me)];
    auto comm = std::make_shared<RecordingCommunicator>(fk::mpi_communicator(MPI_COMM_WORLD));
    const fk::Shard shard = fk::make_shard(comm, n_local);
    ASSERT_EQ(shard.n_total, c.n);
    fk::Lloyd lloyd = make_lloyd(x.data() + offset * c.d, n_local, c, comm);
    comm->largest = 0;
    comm->calls = 0;
    std::vector<float> many = given_rows(c, x);
    fk::initialize_centroids_on_ranks(shard, lloyd, fk::Init::KMeansPP, seed, size_t(c.n_given),
                                      size_t(c.k), size_t(c.d), many.data());

    EXPECT_EQ(0, std::memcmp(many.data(), one.data(), one.size() * sizeof(float)))
            << "centroids differ from one process's bits on rank " << me << " of " << R;
    // a rank receives a flag or a prefix per rank, or one row: never points
    // beyond the row (gathering them would take n_total * d * 4 bytes)
    const size_t bound = std::max(size_t(R) * sizeof(double), size_t(c.d) * sizeof(float));
    EXPECT_LE(comm->largest, bound) << "rank " << me << " of " << R;
    if (R > 1) {
        // about log2(n) probes per new row, plus the total and the row
        int log2n = 0;
        while ((int64_t(1) << log2n) < c.n) {
            log2n++;
        }
        EXPECT_LE(comm->calls, (c.k - c.n_given) * (log2n + 4)) << "rank " << me;
    }
}

TEST(KMeansPPOnRanks, SendsNoPointsAndEqualsOneProcess) {
    expect_seeding_on_ranks_equals_one_process(SeedCase{});
}

TEST(KMeansPPOnRanks, RankWithNoPointsAndGivenRowsEqualsOneProcess) {
    SeedCase c;
    c.split = fk_test::Split::EmptyFirst;
    c.n_given = 3;
    expect_seeding_on_ranks_equals_one_process(c);
}

TEST(KMeansPPOnRanks, EveryPointOnAChosenRowFallsBackToUniformPicksLikeOneProcess) {
    // 4 distinct rows, 9 centroids: after the 4th pick every D is 0
    SeedCase c;
    c.n = 500;
    c.d = 3;
    c.k = 9;
    c.distinct = 4;
    expect_seeding_on_ranks_equals_one_process(c);
}

TEST(KMeansPPOnRanks, MoreThanOneBlockPerRankEqualsOneProcess) {
    // shards of several kernel blocks: the prefix crosses block boundaries
    SeedCase c;
    c.n = 3 * 4096 * 2 + 123;
    c.d = 4;
    c.k = 16;
    expect_seeding_on_ranks_equals_one_process(c);
}

} // namespace
