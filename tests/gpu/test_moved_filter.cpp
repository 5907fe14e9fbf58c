// Exact pruning on the GPU (Options::prune, CUDA backend: the moved-centroid
// filter, engine/moved_filter.h): a pruned run against the same run unpruned,
// on random float data. Labels may differ only at counted near-ties; with
// none counted, centroids, labels and objectives are the unpruned run's bit
// for bit. Every dtype, both metrics; weights, frozen centroids, empty-cluster
// splits and exact ties.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/batch.h>
#include <flashkmeans/errors.h>

#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "test_util.h"

namespace {

namespace fk = flashkmeans;

#define SKIP_WITHOUT_GPU()              \
    if (fk::cuda_device_count() == 0) { \
        GTEST_SKIP() << "no GPU";       \
    }

struct Trained {
    std::vector<float> centroids;
    std::vector<int64_t> labels;
    std::vector<double> obj, skipped;
    int64_t near_ties = 0;
    int64_t splits = 0;
};

/// What a run takes besides the points: weights, given (frozen) centroids.
struct Extras {
    std::vector<float> weights;
    std::vector<float> given; ///< the first rows of the initial centroids
    bool frozen = false;
};

Trained train(const std::vector<float>& x, int64_t d, int64_t k, fk::DType dtype, bool ip,
              bool prune, const Extras& extras = Extras()) {
    faiss::ClusteringParameters cp;
    cp.niter = 20;
    cp.max_points_per_centroid = 1 << 20; // every point
    cp.spherical = ip;
    cp.frozen_centroids = extras.frozen;
    fk::Options o;
    o.backend = fk::Backend::CUDA;
    o.dtype = dtype;
    o.prune = prune;
    fk::Clustering clus(int(d), int(k), cp, o);
    clus.centroids = extras.given;
    faiss::IndexFlatL2 l2{int(d)};
    faiss::IndexFlatIP inner{int(d)};
    faiss::Index& index = ip ? static_cast<faiss::Index&>(inner) : l2;
    clus.train(int64_t(x.size()) / d, x.data(), index,
               extras.weights.empty() ? nullptr : extras.weights.data());
    Trained t;
    t.centroids = clus.centroids;
    t.labels = clus.last_labels;
    for (const auto& s : clus.iteration_stats) {
        t.obj.push_back(s.obj);
        t.splits += s.nsplit;
    }
    t.skipped = clus.skipped_work;
    t.near_ties = std::accumulate(clus.near_ties.begin(), clus.near_ties.end(), int64_t(0));
    return t;
}

/// Labels may differ only at counted near-ties; with none counted, the
/// centroids, labels and objectives are the unpruned run's bit for bit.
void expect_pruned_is_plain(const Trained& pruned, const Trained& plain) {
    ASSERT_EQ(pruned.skipped.size(), pruned.obj.size());
    EXPECT_EQ(pruned.skipped.at(0), 0.0) << "the first iteration runs in full";
    if (pruned.near_ties == 0) {
        EXPECT_EQ(pruned.obj, plain.obj);
        EXPECT_EQ(pruned.labels, plain.labels);
        EXPECT_EQ(0, std::memcmp(pruned.centroids.data(), plain.centroids.data(),
                                 plain.centroids.size() * sizeof(float)));
    } else {
        int64_t differ = 0;
        for (size_t i = 0; i < plain.labels.size(); i++) {
            differ += pruned.labels[i] != plain.labels[i];
        }
        EXPECT_LE(differ, int64_t(plain.labels.size()) / 1000)
                << pruned.near_ties << " near-ties counted";
        EXPECT_NEAR(pruned.obj.back(), plain.obj.back(), 1e-5 * std::abs(plain.obj.back()));
    }
}

TEST(CudaMovedFilter, PrunedRunIsTheUnprunedRunExceptCountedNearTies) {
    SKIP_WITHOUT_GPU();
    // about 16 points per cluster: after a few iterations most clusters stop moving
    const int64_t n = 65536, d = 64, k = 4096;
    const std::vector<float> x = fk_test::blobs(n, d, k, 7, 0.3f);
    for (fk::DType dtype : {fk::DType::Float32, fk::DType::Float16, fk::DType::BFloat16}) {
        for (bool ip : {false, true}) {
            SCOPED_TRACE(::testing::Message() << fk::dtype_name(dtype) << (ip ? " IP" : " L2"));
            const Trained plain = train(x, d, k, dtype, ip, false);
            const Trained pruned = train(x, d, k, dtype, ip, true);
            EXPECT_GT(*std::max_element(pruned.skipped.begin(), pruned.skipped.end()), 0.5)
                    << "settled clusters should be skipped";
            expect_pruned_is_plain(pruned, plain);
        }
    }
}

TEST(CudaMovedFilter, WeightsFrozenCentroidsSplitsAndTiesGiveTheUnprunedRun) {
    SKIP_WITHOUT_GPU();
    // integer points around 128 integer centres, every point twice (exact
    // ties), 256 clusters seeded from them (duplicate seeds: empty clusters
    // to split)
    const int64_t half = 16384, d = 16, k = 256;
    std::vector<float> x = fk_test::small_ints(half, d, 9);
    for (int64_t i = 0; i < half; i++) {
        for (int64_t t = 0; t < d; t++) {
            x[size_t(i * d + t)] += float(40 * ((i * 7) % 128));
        }
    }
    x.insert(x.end(), x.begin(), x.end());
    Extras weighted;
    for (int64_t i = 0; i < 2 * half; i++) {
        weighted.weights.push_back(float(1 + i % 3));
    }
    Extras frozen;
    frozen.frozen = true;
    frozen.given.assign(x.begin(), x.begin() + 32 * d); // 32 of the 256 stay put
    Extras split;
    for (int copy = 0; copy < 8; copy++) { // 7 seeds that take no point
        split.given.insert(split.given.end(), x.begin(), x.begin() + d);
    }
    for (const Extras* e : {&weighted, &frozen, &split}) {
        for (fk::DType dtype : {fk::DType::Float32, fk::DType::Float16}) {
            SCOPED_TRACE(::testing::Message() << fk::dtype_name(dtype)
                                              << (e == &weighted ? " weighted"
                                                  : e->frozen    ? " frozen"
                                                                 : " splits"));
            const Trained plain = train(x, d, k, dtype, false, false, *e);
            const Trained pruned = train(x, d, k, dtype, false, true, *e);
            EXPECT_GT(*std::max_element(pruned.skipped.begin(), pruned.skipped.end()), 0.5);
            expect_pruned_is_plain(pruned, plain);
            if (e == &split) {
                EXPECT_GE(plain.splits, 7) << "the duplicate seeds' clusters were split";
            }
        }
    }
}

// batch_kmeans with prune: each problem filtered on its own (the engine's
// bitwise check per problem: tests/gpu/test_cuda_streaming.cpp), through
// the API: the unpruned objectives and labels but for near-ties.
TEST(CudaMovedFilter, BatchKMeansFiltersEachProblem) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 3, n = 6000, d = 16, k = 300;
    std::vector<float> x;
    for (int64_t b = 0; b < B; b++) {
        const std::vector<float> xb = fk_test::blobs(n, d, k, 40 + b, 0.2f);
        x.insert(x.end(), xb.begin(), xb.end());
    }
    fk::PointsView p;
    p.x = x.data();
    p.batch = B;
    p.n = n;
    p.d = d;
    fk::BatchKMeansParams params;
    params.k = k;
    params.niter = 12;
    std::vector<float> c[2];
    std::vector<int64_t> labels[2];
    std::vector<double> obj[2];
    for (int prune = 0; prune < 2; prune++) {
        c[prune].resize(size_t(B * k * d));
        labels[prune].resize(size_t(B * n));
        obj[prune].resize(size_t(B * params.niter));
        fk::BatchKMeansOutput out;
        out.centroids = c[prune].data();
        out.labels = labels[prune].data();
        out.objective = obj[prune].data();
        fk::Options o;
        o.backend = fk::Backend::CUDA;
        o.prune = prune == 1;
        fk::batch_kmeans(p, params, out, o);
    }
    int64_t differ = 0;
    for (size_t i = 0; i < labels[0].size(); i++) {
        differ += labels[0][i] != labels[1][i];
    }
    EXPECT_LE(differ, B * n / 1000) << "more than near-ties differ";
    for (size_t i = 0; i < obj[0].size(); i++) {
        EXPECT_NEAR(obj[1][i], obj[0][i], 1e-5 * std::abs(obj[0][i])) << "objective " << i;
    }
}

} // namespace
