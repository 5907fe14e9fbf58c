/**
 * flashkmeans::ProgressiveDimClustering: faiss::ProgressiveDimClustering with
 * every stage's k-means run by the flashkmeans engine (flashkmeans::Clustering).
 * PCA (optional), then k-means on the leading d^((1 + i) / steps) dimensions
 * for i = 0 .. steps - 1, each stage warm-started from the previous stage's
 * centroids padded with zeros; the centroids are mapped back through the PCA.
 * Every field keeps its FAISS meaning (progressive_dim_steps = 10, apply_pca =
 * true and niter = 10 by default, as FAISS).
 */
#pragma once

#include <flashkmeans/Options.h>

#include <faiss/Clustering.h>

#include <cstdint>

namespace flashkmeans {

struct ProgressiveDimClustering : faiss::ProgressiveDimClustering {
    /// flashkmeans-only settings (backend, device, dtype, precision, ...)
    Options options;

    ProgressiveDimClustering(int d, int k);
    ProgressiveDimClustering(int d, int k, const faiss::ProgressiveDimClusteringParameters& cp,
                             const Options& options = Options());

    /** Run the stages on n x d host points; `centroids` (k x d) and
     * `iteration_stats` (every stage's, in order) hold the result, as with
     * FAISS. The factory makes each stage's index (its metric must be L2);
     * its search is not used. */
    void train(idx_t n, const float* x, faiss::ProgressiveDimIndexFactory& factory);
    /// Same, with FAISS's default factory (IndexFlatL2 per stage).
    void train(idx_t n, const float* x);
};

} // namespace flashkmeans
