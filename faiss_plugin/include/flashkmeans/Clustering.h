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
    /// (after subsampling); empty before train(). With tol >= 0, the
    /// assignment to the final centroids instead (scikit-learn's labels_).
    std::vector<int64_t> last_labels;

    /// How the last train() held the points (Options::memory_budget):
    /// "resident", or "streamed in 12 chunks of 4096 points, 25.0% resident";
    /// empty before train().
    std::string memory_plan;
    /// scikit-learn's stopping rule, < 0 (default): off, every redo runs all
    /// niter iterations as in FAISS. >= 0: a redo stops after an iteration
    /// that leaves every label unchanged or moves the centroids by at most
    /// tol (squared Frobenius norm of the change, in squared units of x).
    double tol = -1;
    /// With tol >= 0, each iteration's squared Frobenius norm of the
    /// centroid change, kept as iteration_stats is (across redos).
    std::vector<double> centroid_shifts;
    /// With Options::prune, each iteration's share of the assignment's work
    /// skipped (0 for the first of each redo), and the survivors whose label
    /// an unpruned assignment might have rounded the other way; kept as
    /// iteration_stats is (across redos); with `comm`, this rank's points.
    /// Empty without prune.
    std::vector<double> skipped_work;
    std::vector<int64_t> near_ties;
    /// With tol >= 0, how the kept redo stopped: 0 after niter iterations,
    /// 1 labels unchanged, 2 centroid change within tol.
    int stop_reason = 0;
};

} // namespace flashkmeans
