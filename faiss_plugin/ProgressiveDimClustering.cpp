// flashkmeans::ProgressiveDimClustering::train: faiss::ProgressiveDimClustering's
// stages (same PCA, same dimensions, same warm starts, same statistics) with
// each stage's k-means run by flashkmeans::Clustering.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/ProgressiveDimClustering.h>

#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace flashkmeans {

namespace {

/// The first min(d1, d2) columns of n rows of d1 values into rows of d2.
void copy_columns(int64_t n, int64_t d1, const float* src, int64_t d2, float* dest) {
    const int64_t d = std::min(d1, d2);
    for (int64_t i = 0; i < n; i++) {
        std::memcpy(dest + i * d2, src + i * d1, sizeof(float) * d);
    }
}

} // namespace

ProgressiveDimClustering::ProgressiveDimClustering(int d, int k)
        : faiss::ProgressiveDimClustering(d, k) {}

ProgressiveDimClustering::ProgressiveDimClustering(
        int d, int k, const faiss::ProgressiveDimClusteringParameters& cp, const Options& opts)
        : faiss::ProgressiveDimClustering(d, k, cp), options(opts) {}

void ProgressiveDimClustering::train(idx_t n, const float* x) {
    faiss::ProgressiveDimIndexFactory factory;
    train(n, x, factory);
}

void ProgressiveDimClustering::train(idx_t n, const float* x,
                                     faiss::ProgressiveDimIndexFactory& factory) {
    FAISS_THROW_IF_NOT_FMT(progressive_dim_steps >= 1, "progressive_dim_steps must be >= 1, got %d",
                           progressive_dim_steps);
    FAISS_THROW_IF_NOT_FMT(d > 0 && k > 0, "need d > 0 and k > 0 (got %zd, %zd)", d, k);
    FAISS_THROW_IF_NOT_MSG(x != nullptr, "training points pointer x is null");
    const int64_t dim = int64_t(d);

    faiss::PCAMatrix pca(static_cast<int>(d), static_cast<int>(d));
    std::vector<float> xbuf;
    if (apply_pca) {
        if (verbose) {
            printf("Training PCA transform\n");
        }
        pca.train(n, x);
        if (verbose) {
            printf("Apply PCA\n");
        }
        xbuf.resize(size_t(n) * d);
        pca.apply_noalloc(n, x, xbuf.data());
        x = xbuf.data();
    }

    centroids.clear();
    iteration_stats.clear();
    int64_t d_prev = 0;
    for (int step = 0; step < progressive_dim_steps; step++) {
        const int64_t di = int64_t(std::pow(double(d), (1. + step) / progressive_dim_steps));
        if (verbose) {
            printf("Progressive dim step %d: cluster in dimension %" PRId64 "\n", step, di);
        }
        std::unique_ptr<faiss::Index> index(factory(int(di)));
        FAISS_THROW_IF_NOT_MSG(index->metric_type == faiss::METRIC_L2,
                               "progressive-dim clustering needs an L2 index");
        Clustering clus(int(di), int(k), *this, options);
        if (d_prev > 0) {
            // warm start: the previous stage's centroids, padded with zeros
            clus.centroids.resize(k * di);
            copy_columns(int64_t(k), d_prev, centroids.data(), di, clus.centroids.data());
        }
        std::vector<float> xsub(size_t(n) * di);
        copy_columns(n, dim, x, di, xsub.data());
        clus.train(n, xsub.data(), *index);

        centroids = clus.centroids;
        iteration_stats.insert(iteration_stats.end(), clus.iteration_stats.begin(),
                               clus.iteration_stats.end());
        d_prev = di;
    }

    if (apply_pca) {
        if (verbose) {
            printf("Revert PCA transform on centroids\n");
        }
        std::vector<float> back(k * d);
        pca.reverse_transform(int64_t(k), centroids.data(), back.data());
        centroids.swap(back);
    }
}

} // namespace flashkmeans
