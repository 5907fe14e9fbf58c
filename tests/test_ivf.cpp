// train_ivf and AssignIndex inside FAISS: indexes trained by flashkmeans
// search as well as FAISS-trained ones, and FAISS's own loop reproduces its
// centroids when AssignIndex does its assignment.
#include <flashkmeans/AssignIndex.h>
#include <flashkmeans/ivf.h>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/index_factory.h>

#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "test_util.h"

namespace {

flashkmeans::Options cpu_options() {
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    return o;
}

double recall_at_10(faiss::Index& index, const std::vector<float>& xq, int64_t nq,
                    const std::vector<int64_t>& gt) {
    std::vector<float> D(nq * 10);
    std::vector<int64_t> I(nq * 10);
    index.search(nq, xq.data(), 10, D.data(), I.data());
    int64_t hits = 0;
    for (int64_t q = 0; q < nq; q++) {
        std::set<int64_t> truth(gt.begin() + q * 10, gt.begin() + q * 10 + 10);
        for (int j = 0; j < 10; j++) hits += truth.count(I[q * 10 + j]);
    }
    return double(hits) / (nq * 10);
}

void set_nprobe(faiss::Index* index, int nprobe) {
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) index = pt->index;
    dynamic_cast<faiss::IndexIVF*>(index)->nprobe = nprobe;
}

class IvfRecall : public ::testing::TestWithParam<const char*> {};

TEST_P(IvfRecall, TrainIvfMatchesFaissTrainingRecall) {
    const int64_t d = 96, nt = 15000, nb = 20000, nq = 200;
    auto xt = fk_test::blobs(nt, d, 300, 1, 1.0f);
    auto xb = fk_test::blobs(nb, d, 300, 1, 1.0f);  // same centres, other draws
    auto xq = fk_test::blobs(nq, d, 300, 2, 1.0f);
    faiss::IndexFlatL2 flat(d);
    flat.add(nb, xb.data());
    std::vector<float> gd(nq * 10);
    std::vector<int64_t> gt(nq * 10);
    flat.search(nq, xq.data(), 10, gd.data(), gt.data());

    std::unique_ptr<faiss::Index> ref(faiss::index_factory(d, GetParam()));
    std::unique_ptr<faiss::Index> ours(faiss::index_factory(d, GetParam()));
    ref->train(nt, xt.data());
    flashkmeans::train_ivf(*ours, nt, xt.data(), cpu_options());
    ASSERT_TRUE(ours->is_trained);
    ref->add(nb, xb.data());
    ours->add(nb, xb.data());
    set_nprobe(ref.get(), 8);
    set_nprobe(ours.get(), 8);
    double r_ref = recall_at_10(*ref, xq, nq, gt), r_ours = recall_at_10(*ours, xq, nq, gt);
    EXPECT_NEAR(r_ours, r_ref, 0.01) << GetParam();
    EXPECT_GT(r_ours, 0.15) << GetParam(); // far above chance (10 / nb)
}

INSTANTIATE_TEST_SUITE_P(Factories, IvfRecall,
                         // "np": no polysemous training, which FAISS would otherwise run (minutes on
// 2 cores) identically for both indexes; the PQ itself is the same
::testing::Values("IVF256,Flat", "IVF256,PQ16np", "PCA64,IVF256,PQ16np"));

TEST(AssignIndex, AsClusteringIndexGivesFaissCentroids) {
    const int64_t d = 32, n = 12000;
    auto x = fk_test::random_matrix(n, d, 5);
    faiss::IndexFlatL2 q1(d), q2(d);
    faiss::IndexIVFFlat ref(&q1, d, 64), ours(&q2, d, 64);
    ours.clustering_index = new flashkmeans::AssignIndex(d, cpu_options());
    ref.train(n, x.data());
    ours.train(n, x.data());
    delete ours.clustering_index;
    ours.clustering_index = nullptr;
    ASSERT_EQ(q1.ntotal, q2.ntotal);
    for (int64_t i = 0; i < q1.ntotal * d; i++) {
        EXPECT_NEAR(q2.get_xb()[i], q1.get_xb()[i], 1e-5f * (1 + std::fabs(q1.get_xb()[i])));
    }
}

TEST(AssignIndex, PlainFaissClusteringWithAssignIndexEqualsIndexFlatL2) {
    const int64_t d = 20, n = 4000, k = 37;
    auto x = fk_test::random_matrix(n, d, 6);
    faiss::ClusteringParameters cp;
    cp.niter = 10;
    faiss::Clustering a(d, k, cp), b(d, k, cp);
    faiss::IndexFlatL2 flat(d);
    flashkmeans::AssignIndex ours(d, cpu_options());
    a.train(n, x.data(), flat);
    b.train(n, x.data(), ours);
    for (size_t i = 0; i < a.centroids.size(); i++) {
        EXPECT_NEAR(b.centroids[i], a.centroids[i], 1e-5f * (1 + std::fabs(a.centroids[i])));
    }
}

TEST(AssignIndex, SearchK1MatchesFlatAndKGreaterThanOneFallsBack) {
    const int64_t d = 17, nb = 300, nq = 500;
    auto xb = fk_test::random_matrix(nb, d, 8), xq = fk_test::random_matrix(nq, d, 9);
    for (int ip = 0; ip < 2; ip++) {
        std::unique_ptr<faiss::IndexFlat> flat(ip ? static_cast<faiss::IndexFlat*>(new faiss::IndexFlatIP(d))
                                                  : new faiss::IndexFlatL2(d));
        std::unique_ptr<faiss::IndexFlat> ours(
                ip ? static_cast<faiss::IndexFlat*>(new flashkmeans::AssignIndexIP(d, cpu_options()))
                   : new flashkmeans::AssignIndex(d, cpu_options()));
        flat->add(nb, xb.data());
        ours->add(nb, xb.data());
        for (int64_t kk : {1, 4}) {
            std::vector<float> D1(nq * kk), D2(nq * kk);
            std::vector<int64_t> I1(nq * kk), I2(nq * kk);
            flat->search(nq, xq.data(), kk, D1.data(), I1.data());
            ours->search(nq, xq.data(), kk, D2.data(), I2.data());
            EXPECT_EQ(I1, I2) << "ip=" << ip << " k=" << kk;
            for (size_t i = 0; i < D1.size(); i++) {
                EXPECT_NEAR(D2[i], D1[i], 1e-4f * (1 + std::fabs(D1[i])));
            }
        }
    }
}

} // namespace
