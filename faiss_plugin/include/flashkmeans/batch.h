/**
 * Batched k-means and plain assignment, for callers that hold their points
 * as raw arrays (the Python package, torch/cupy tensors through DLPack):
 * B independent problems run in one set of launches on the GPU.
 */
#pragma once

#include <flashkmeans/Options.h>

#include <cstdint>
#include <vector>

namespace flashkmeans {

/// Points of B problems of n x d each, back to back, on the host or the device.
struct PointsView {
    const void* x = nullptr;
    DType dtype = DType::Float32;
    bool on_device = false; ///< x is CUDA device memory (used in place)
    int64_t batch = 1;
    int64_t n = 0;
    int64_t d = 0;
};

struct BatchKMeansParams {
    int64_t k = 0;
    int niter = 25;            ///< fixed number of Lloyd iterations
    Metric metric = Metric::L2;
    bool spherical = false;
    int64_t seed = 1234;       ///< init: rows of FAISS's rand_perm(n, seed + 1) per problem
    const float* init_centroids = nullptr; ///< batch x k x d; overrides seeding
    bool init_on_device = false; ///< init_centroids is CUDA memory (the points' device)
    bool verbose = false;
};

/// Outputs; each pointer may be host or device memory (`on_device`).
struct BatchKMeansOutput {
    bool on_device = false;
    float* centroids = nullptr; ///< batch x k x d (required)
    int64_t* labels = nullptr;  ///< batch x n, optional: labels of the last assignment
    double* objective = nullptr; ///< batch x niter, host, optional: objective per iteration
};

/// Runs `niter` Lloyd iterations on each problem (no subsampling).
void batch_kmeans(const PointsView& points, const BatchKMeansParams& params,
                  const BatchKMeansOutput& out, const Options& options = Options());

/** Nearest centroid of each point (one problem): labels (int64) and distances
 * (squared L2 or inner product), written where `out_on_device` says. */
void assign_points(const PointsView& points, const float* centroids_host, int64_t k,
                   Metric metric, float* distances, int64_t* labels, bool out_on_device,
                   const Options& options = Options());

} // namespace flashkmeans
