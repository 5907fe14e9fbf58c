// The communicator layer in one process: the local communicator's
// collectives, and Clustering with it equal to Clustering without one.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/Communicator.h>

#include <flashkmeans/ivf.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "test_util.h"

namespace {

TEST(LocalCommunicator, IsOneRankWhoseCollectivesCopy) {
    auto comm = flashkmeans::local_communicator();
    EXPECT_EQ(comm->rank(), 0);
    EXPECT_EQ(comm->size(), 1);
    const int64_t v[2] = {3, 4};
    int64_t out[2] = {0, 0};
    comm->allgather(v, out, sizeof(v));
    EXPECT_EQ(out[0], 3);
    EXPECT_EQ(out[1], 4);
    flashkmeans::Place cpu;
    cpu.backend = flashkmeans::Backend::CPU;
    int64_t out2[2] = {0, 0};
    comm->allgather_on(cpu, v, out2, sizeof(v));
    EXPECT_EQ(out2[1], 4);
}

TEST(LocalCommunicator, ClusteringEqualsNoCommunicator) {
    const int64_t n = 2000, d = 8, k = 16;
    const std::vector<float> x = fk_test::blobs(n, d, k, 5, 1.0f);
    std::vector<float> c[2];
    for (int with = 0; with < 2; with++) {
        faiss::ClusteringParameters cp;
        cp.niter = 10;
        flashkmeans::Options o;
        o.backend = flashkmeans::Backend::CPU;
        if (with) {
            o.comm = flashkmeans::local_communicator();
        }
        flashkmeans::Clustering clus(int(d), int(k), cp, o);
        faiss::IndexFlatL2 index(d);
        clus.train(n, x.data(), index);
        c[with] = clus.centroids;
    }
    ASSERT_EQ(c[0].size(), c[1].size());
    EXPECT_EQ(0, std::memcmp(c[0].data(), c[1].data(), c[0].size() * sizeof(float)));
}

TEST(Communicator, TrainIvfRefusesSeveralRanks) {
    // a stand-in with two ranks: train_ivf runs in one process
    struct TwoRanks : flashkmeans::Communicator {
        int rank() const override {
            return 0;
        }
        int size() const override {
            return 2;
        }
        const char* name() const override {
            return "two";
        }
        void allgather(const void*, void*, size_t) override {}
        void broadcast(void*, size_t, int) override {}
        void alltoall(const void*, void*, size_t) override {}
    };
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    o.comm = std::make_shared<TwoRanks>();
    const std::vector<float> x = fk_test::blobs(100, 4, 2, 5);
    faiss::IndexFlatL2 q(4);
    faiss::IndexIVFFlat ivf(&q, 4, 2);
    EXPECT_THROW(flashkmeans::train_ivf(ivf, 100, x.data(), o), faiss::FaissException);
}

} // namespace
