// batch_kmeans / assign_points: the engine driven for raw arrays. The same
// Lloyd loop as Clustering, without FAISS's subsampling and bookkeeping.
#include <flashkmeans/batch.h>

#include "engine/init.h"
#include "engine/lloyd.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <vector>

namespace flashkmeans {

namespace {

Place make_place(const Options& options, bool data_on_device) {
    Place place;
    FAISS_THROW_IF_NOT_MSG(!options.comm || options.comm->size() == 1,
                           "batch_kmeans and assign_points run in one process: Options::comm "
                           "with several ranks is for Clustering::train");
    place.backend = resolve_backend(options.backend);
    place.device = options.device;
    place.stream = place.backend == Backend::CUDA ? options.stream : nullptr;
    FAISS_THROW_IF_NOT_MSG(!data_on_device || place.backend == Backend::CUDA,
                           "points in device memory need the CUDA backend");
    return place;
}

void check_points(const PointsView& p, int64_t k) {
    FAISS_THROW_IF_NOT_MSG(p.x != nullptr, "points: x is null");
    FAISS_THROW_IF_NOT_FMT(p.batch >= 1 && p.n >= 1 && p.d >= 1,
                           "points: need batch, n, d >= 1 (got %" PRId64 ", %" PRId64 ", %" PRId64
                           ")",
                           p.batch, p.n, p.d);
    FAISS_THROW_IF_NOT_FMT(k >= 1, "number of clusters k must be positive, got %" PRId64, k);
    // NaN and Inf: the engine checks the points on the place (Lloyd)
}

} // namespace

void batch_kmeans(const PointsView& p, const BatchKMeansParams& params,
                  const BatchKMeansOutput& out, const Options& options) {
    check_points(p, params.k);
    FAISS_THROW_IF_NOT_FMT(p.n >= params.k,
                           "Number of training points (%" PRId64
                           ") should be at least as large as number of clusters (%" PRId64 ")",
                           p.n, params.k);
    FAISS_THROW_IF_NOT_FMT(params.niter >= 0, "niter must be >= 0, got %d", params.niter);
    FAISS_THROW_IF_NOT_MSG(out.centroids != nullptr, "batch_kmeans: output centroids is null");
    const Place place = make_place(options, p.on_device);
    const int64_t B = p.batch, n = p.n, d = p.d, k = params.k;

    LloydData data{p.x, p.dtype, p.on_device, n, d, B, nullptr};
    LloydConfig cfg;
    cfg.k = k;
    cfg.metric = params.metric;
    cfg.compute_dtype = p.dtype == DType::Float32 ? options.dtype : p.dtype;
    cfg.precision = options.precision;
    cfg.spherical = params.spherical;
    cfg.memory_budget = options.memory_budget;
    cfg.prune = options.prune;
    cfg.kernel = resolve_cpu_kernel(options, place.backend);
    cfg.pipelined = true; // no iteration's timing is reported
    Lloyd lloyd(place, data, cfg);

    if (params.init_centroids) {
        FAISS_THROW_IF_NOT_MSG(!params.init_on_device || place.backend == Backend::CUDA,
                               "init_centroids in device memory need the CUDA backend");
        lloyd.set_centroids(params.init_centroids);  // from the host or the device
        lloyd.check_centroids("init_centroids");
    } else if (options.init == Init::Random) {
        // every problem seeds from the same rows of FAISS's permutation
        lloyd.set_centroids_from_points(rand_perm_prefix(n, k, params.seed + 1));
    } else {
        std::vector<float> c(size_t(B) * k * d);
        for (int64_t b = 0; b < B; b++) {
            initialize_centroids(lloyd, options.init, params.seed + 1, 0, k, d,
                                 c.data() + size_t(b) * k * d, b);
        }
        lloyd.set_centroids(c.data());
    }
    lloyd.iterate_many(params.niter, [&](int it, const LloydStep& step) {
        faiss::InterruptCallback::check();
        if (out.objective) {
            for (int64_t b = 0; b < B; b++) {
                out.objective[b * params.niter + it] = step.obj[b];
            }
        }
        if (params.verbose) {
            printf("  Iteration %d: objective=%g (batch 0)\n", it, step.obj[0]);
        }
    });
    FAISS_THROW_IF_NOT_MSG(!out.on_device || place.backend == Backend::CUDA,
                           "device outputs need the CUDA backend");
    if (out.labels && params.niter == 0) {
        lloyd.assign(); // no iteration ran: label with the initial centroids
    }
    // the results queued, then one wait for all of them; labels widen to
    // int64 where the caller's memory is (CUDA labels for the host come back
    // as int32, half the bytes)
    const Place& at = lloyd.place();
    lloyd.queue_get_centroids(out.centroids);
    std::vector<int32_t> labels_host;
    if (out.labels && (out.on_device || at.backend == Backend::CPU)) {
        kernels::widen_labels(at, lloyd.labels_data(), B * n, out.labels);
    } else if (out.labels) {
        labels_host.resize(size_t(B * n));
        copy_within_async(at, labels_host.data(), lloyd.labels_data(),
                          labels_host.size() * sizeof(int32_t));
    }
    place_sync(at);
    std::copy(labels_host.begin(), labels_host.end(), out.labels);
}

void assign_points(const PointsView& p, const float* centroids_host, int64_t k, Metric metric,
                   float* distances, int64_t* labels, bool out_on_device, const Options& options) {
    check_points(p, k);
    FAISS_THROW_IF_NOT_MSG(p.batch == 1, "assign_points: one problem at a time (batch = 1)");
    FAISS_THROW_IF_NOT_MSG(centroids_host != nullptr, "assign_points: centroids is null");
    const Place place = make_place(options, p.on_device);
    LloydData data{p.x, p.dtype, p.on_device, p.n, p.d, 1, nullptr};
    LloydConfig cfg;
    cfg.k = k;
    cfg.metric = metric;
    cfg.compute_dtype = p.dtype == DType::Float32 ? options.dtype : p.dtype;
    cfg.precision = options.precision;
    cfg.memory_budget = options.memory_budget;
    Lloyd lloyd(place, data, cfg);
    lloyd.set_centroids(centroids_host);
    lloyd.assign();
    if (out_on_device) {
        FAISS_THROW_IF_NOT_MSG(place.backend == Backend::CUDA, "device outputs need the CUDA backend");
        const Place& at = lloyd.place();
        if (labels) kernels::widen_labels(at, lloyd.labels_data(), p.n, labels);
        if (distances)
            copy_within_async(at, distances, lloyd.distances_data(), p.n * sizeof(float));
        place_sync(at);
    } else {
        std::vector<int32_t> lab = lloyd.labels();
        if (labels) std::copy(lab.begin(), lab.end(), labels);
        if (distances) copy_to_host(place, distances, lloyd.distances_data(), p.n * sizeof(float));
    }
}

} // namespace flashkmeans
