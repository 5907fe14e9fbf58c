// Several GPUs of one process (flashkmeans::train_on_devices): a thread and an
// NCCL rank per GPU. On integer-valued points every cluster sum is exact in
// any order, so the run must give the one-GPU run's centroids bit for bit and
// its labels; any device count must give the same bits run to run. One GPU is
// enough for the NCCL path itself (one rank); the cases over several GPUs skip
// where fewer are visible.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/errors.h>
#include <flashkmeans/kernels.h>
#include <flashkmeans/train_on_devices.h>

#include <faiss/IndexFlat.h>

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "../../test_util.h"

namespace {

using flashkmeans::Clustering;
using flashkmeans::DType;

struct Result {
    std::vector<float> centroids;
    std::vector<int64_t> labels;
    std::vector<float> obj;
};

struct Case {
    int64_t n = 4099, d = 24, k = 37;
    int niter = 8;
    bool weighted = false;
    bool inner_product = false;
    DType dtype = DType::Float32;
};

Clustering make(const Case& c) {
    faiss::ClusteringParameters cp;
    cp.niter = c.niter;
    cp.max_points_per_centroid = 1 << 20; // no subsampling: labels are per row
    cp.seed = 7;
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CUDA;
    o.dtype = c.dtype;
    return Clustering(int(c.d), int(c.k), cp, o);
}

Result finish(const Clustering& clus) {
    Result r{clus.centroids, clus.last_labels, {}};
    for (const auto& s : clus.iteration_stats) {
        r.obj.push_back(s.obj);
    }
    return r;
}

/// devices empty: the plain one-GPU run on device 0
Result train(const Case& c, const std::vector<float>& x, const std::vector<float>& w,
             const std::vector<int>& devices) {
    Clustering clus = make(c);
    faiss::IndexFlat index(c.d, c.inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2);
    const float* weights = c.weighted ? w.data() : nullptr;
    if (devices.empty()) {
        clus.train(c.n, x.data(), index, weights);
    } else {
        flashkmeans::train_on_devices(clus, devices, c.n, x.data(), DType::Float32, index, weights);
    }
    EXPECT_EQ(index.ntotal, c.k);
    return finish(clus);
}

std::vector<int> all_devices() {
    std::vector<int> devices(size_t(flashkmeans::cuda_device_count()));
    std::iota(devices.begin(), devices.end(), 0);
    return devices;
}

void expect_same_bits(const Result& a, const Result& b) {
    ASSERT_EQ(a.centroids.size(), b.centroids.size());
    EXPECT_EQ(std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * 4), 0);
    EXPECT_EQ(a.labels, b.labels);
    ASSERT_EQ(a.obj.size(), b.obj.size());
    for (size_t i = 0; i < a.obj.size(); i++) {
        EXPECT_FLOAT_EQ(a.obj[i], b.obj[i]) << "iteration " << i;
    }
}

#define SKIP_WITH_FEWER_GPUS(n)                                                          \
    if (flashkmeans::cuda_device_count() < (n)) {                                        \
        GTEST_SKIP() << "needs " << (n) << " GPUs, " << flashkmeans::cuda_device_count() \
                     << " visible";                                                      \
    }

TEST(TrainOnDevices, OneGpuOverNcclIsThePlainRun) {
    SKIP_WITH_FEWER_GPUS(1);
    for (bool weighted : {false, true}) {
        for (bool ip : {false, true}) {
            Case c;
            c.weighted = weighted;
            c.inner_product = ip;
            const auto x = fk_test::small_ints(c.n, c.d, 11);
            const auto w = fk_test::random_weights(c.n, 12);
            SCOPED_TRACE(std::string(weighted ? "weighted" : "unweighted") + (ip ? " IP" : " L2"));
            expect_same_bits(train(c, x, w, {0}), train(c, x, w, {}));
        }
    }
}

TEST(TrainOnDevices, EveryGpuGivesTheOneGpuBits) {
    SKIP_WITH_FEWER_GPUS(2);
    Case c;
    c.weighted = true;
    const auto x = fk_test::small_ints(c.n, c.d, 21);
    std::vector<float> w(size_t(c.n));
    for (int64_t i = 0; i < c.n; i++) {
        w[size_t(i)] = float(1 + i % 3); // integer weights: exact sums too
    }
    const Result one = train(c, x, w, {});
    const Result all = train(c, x, w, all_devices());
    expect_same_bits(all, one);
    expect_same_bits(train(c, x, w, all_devices()), all);
    // the first two GPUs in the other order: rank 0 on device 1
    expect_same_bits(train(c, x, w, {1, 0}), one);
}

TEST(TrainOnDevices, Fp16PointsAndMoreGpusThanAShardNeeds) {
    SKIP_WITH_FEWER_GPUS(1);
    Case c;
    c.dtype = DType::Float16;
    c.n = 3 * c.k; // the last rank may hold fewer rows than k
    const auto x = fk_test::small_ints(c.n, c.d, 31);
    expect_same_bits(train(c, x, {}, all_devices()), train(c, x, {}, {}));
}

TEST(TrainOnDevices, BadDevicesAndOptionsAreInputErrors) {
    Case c;
    const auto x = fk_test::small_ints(c.n, c.d, 41);
    const int visible = flashkmeans::cuda_device_count();
    auto message = [&](const std::vector<int>& devices, flashkmeans::Backend backend) {
        Clustering clus = make(c);
        clus.options.backend = backend;
        faiss::IndexFlatL2 index(c.d);
        try {
            flashkmeans::train_on_devices(clus, devices, c.n, x.data(), DType::Float32, index);
        } catch (const flashkmeans::InputError& e) {
            return std::string(e.what());
        }
        return std::string("no InputError");
    };
    EXPECT_NE(message({}, flashkmeans::Backend::CUDA).find("no device"), std::string::npos);
    EXPECT_NE(message({visible}, flashkmeans::Backend::CUDA).find("does not exist"),
              std::string::npos);
    EXPECT_NE(message({-1}, flashkmeans::Backend::CUDA).find("does not exist"), std::string::npos);
    if (visible > 0) {
        EXPECT_NE(message({0, 0}, flashkmeans::Backend::CUDA).find("listed twice"),
                  std::string::npos);
        EXPECT_NE(message({0}, flashkmeans::Backend::CPU).find("CPU backend"), std::string::npos);
    }
}

} // namespace
