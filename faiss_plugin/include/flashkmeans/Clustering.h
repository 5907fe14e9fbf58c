/**
 * flashkmeans::Clustering: a faiss::Clustering whose train() runs the
 * flashkmeans Lloyd engine (FlashAssign + sort-inverse update) instead of
 * index.search + compute_centroids. Every ClusteringParameters field keeps
 * its FAISS meaning; results land in the inherited `centroids` and
 * `iteration_stats`, and the index passed to train() ends holding the final
 * centroids, exactly as with faiss::Clustering.
 */
#pragma once

#include <flashkmeans/Options.h>

#include <faiss/Clustering.h>
#include <faiss/Index.h>

#include <cstdint>
#include <string>
#include <vector>

namespace flashkmeans {

struct Clustering : faiss::Clustering {
    /// flashkmeans-only settings (backend, device, dtype, precision, ...)
    Options options;

    Clustering(int d, int k);
    Clustering(int d, int k, const faiss::ClusteringParameters& cp);
    Clustering(
            int d,
            int k,
            const faiss::ClusteringParameters& cp,
            const Options& options);

    /** Run k-means on n x d points. The index supplies the metric (L2 or
     * inner product) and receives the final centroids; its own search is not
     * used: assignment is exact brute force. weights: null or n values. */
    void train(
            int64_t n,
            const float* x,
            faiss::Index& index,
            const float* weights = nullptr) override;

    /// Same, with points of another dtype (fp16/bf16 bits) on the host, or on
    /// the device when `on_device` (CUDA backend only; used in place).
    void train_typed(
            int64_t n,
            const void* x,
            DType dtype,
            bool on_device,
            faiss::Index& index,
            const float* weights = nullptr);

    /// Labels of the last iteration's assignment, for the points trained on
    /// (after subsampling); empty before train().
    std::vector<int64_t> last_labels;

    /// How the last train() held the points (Options::memory_budget):
    /// "resident", or "streamed in 12 chunks of 4096 points, 25.0% resident";
    /// empty before train().
    std::string memory_plan;
};

} // namespace flashkmeans
