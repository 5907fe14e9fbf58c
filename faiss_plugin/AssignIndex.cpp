// AssignIndex / AssignIndexIP: FAISS flat indexes whose k = 1 search is
// FlashAssign, so FAISS's own k-means loop (Clustering, IndexIVF training)
// runs our kernel unchanged. The centroids are mirrored on the backend once
// per add() and the queries streamed through it in chunks.
#include <flashkmeans/AssignIndex.h>

#include "engine/device_memory.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace flashkmeans {

struct AssignBackendState {
    Place place;
    int64_t ntotal = -1; // centroids mirrored for this many rows; -1 = stale
    PlaceArray<float> centroids, norms;
};

namespace {

// Queries per chunk on the GPU: bounds the staging buffers (64 MiB at d=128).
constexpr int64_t kChunkRows = 1 << 17;

void assign_search(const Options& options, std::unique_ptr<AssignBackendState>& state,
                   const float* xb, int64_t ntotal, int64_t d, Metric metric, int64_t n,
                   const float* x, float* distances, int64_t* labels) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "number of queries must be >= 0, got %ld", long(n));
    if (n == 0) {
        return;
    }
    FAISS_THROW_IF_NOT_MSG(x != nullptr && distances != nullptr && labels != nullptr,
                           "search: null pointer for x, distances or labels");
    if (ntotal == 0) {
        // FAISS convention for an empty index: no neighbour
        std::fill(labels, labels + n, int64_t(-1));
        std::fill(distances, distances + n,
                  metric == Metric::L2 ? HUGE_VALF : -HUGE_VALF);
        return;
    }
    if (!state) {
        state.reset(new AssignBackendState());
    }
    Place place;
    place.backend = resolve_backend(options.backend);
    place.device = options.device;
    if (state->ntotal != ntotal || state->place.backend != place.backend ||
        state->place.device != place.device) {
        state->place = place;
        state->centroids = PlaceArray<float>(place, size_t(ntotal) * d);
        state->norms = PlaceArray<float>(place, size_t(ntotal));
        copy_to_place(place, state->centroids.get(), xb, size_t(ntotal) * d * sizeof(float));
        kernels::row_norms(place, state->centroids.get(), DType::Float32, ntotal, d,
                           state->norms.get());
        state->ntotal = ntotal;
    }

    const kernels::AssignKernel kernel = resolve_cpu_kernel(options, place.backend);
    const bool host = place.backend == Backend::CPU;
    const int64_t chunk = host ? n : std::min(n, kChunkRows);
    PlaceArray<float> xs, xn, dist;
    PlaceArray<int32_t> lab;
    if (!host) {
        xs = PlaceArray<float>(place, size_t(chunk) * d);
        dist = PlaceArray<float>(place, chunk);
    }
    xn = PlaceArray<float>(place, chunk);
    lab = PlaceArray<int32_t>(place, chunk);
    std::vector<int32_t> lab_host(chunk);
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t m = std::min(chunk, n - i0);
        const float* xq = x + i0 * d;
        if (!host) {
            copy_to_place(place, xs.get(), xq, size_t(m) * d * sizeof(float));
            xq = xs.get();
        }
        kernels::row_norms(place, xq, DType::Float32, m, d, xn.get());
        kernels::AssignArgs a;
        a.x = xq;
        a.n = m;
        a.d = d;
        a.centroids = state->centroids.get();
        a.centroid_norms = state->norms.get();
        a.k = ntotal;
        a.metric = metric;
        a.precision = options.precision;
        a.kernel = kernel;
        a.x_norms = xn.get();
        a.labels = lab.get();
        a.distances = host ? distances + i0 : dist.get();
        kernels::flash_assign(place, a);
        copy_to_host(place, lab_host.data(), lab.get(), m * sizeof(int32_t));
        if (!host) {
            copy_to_host(place, distances + i0, dist.get(), m * sizeof(float));
        }
        std::copy(lab_host.begin(), lab_host.begin() + m, labels + i0);
    }
}

void check_finite(int64_t n, const float* x, int64_t d) {
    FAISS_THROW_IF_NOT_MSG(n == 0 || x != nullptr, "add: x is null");
    for (int64_t i = 0; i < n * d; i++) {
        FAISS_THROW_IF_NOT_FMT(std::isfinite(x[i]), "add: vector %ld contains NaN or Inf",
                               long(i / d));
    }
}

} // namespace

AssignIndex::AssignIndex(int64_t d, const Options& opts) : faiss::IndexFlatL2(d), options(opts) {}
AssignIndex::~AssignIndex() = default;

void AssignIndex::add(int64_t n, const float* x) {
    check_finite(n, x, d);
    faiss::IndexFlatL2::add(n, x);
    if (state_) state_->ntotal = -1;
}

void AssignIndex::reset() {
    faiss::IndexFlatL2::reset();
    if (state_) state_->ntotal = -1;
}

void AssignIndex::search(int64_t n, const float* x, int64_t k, float* distances, int64_t* labels,
                         const faiss::SearchParameters* params) const {
    if (k != 1 || params != nullptr) {
        faiss::IndexFlatL2::search(n, x, k, distances, labels, params);
        return;
    }
    assign_search(options, state_, get_xb(), ntotal, d, Metric::L2, n, x, distances, labels);
}

AssignIndexIP::AssignIndexIP(int64_t d, const Options& opts)
        : faiss::IndexFlatIP(d), options(opts) {}
AssignIndexIP::~AssignIndexIP() = default;

void AssignIndexIP::add(int64_t n, const float* x) {
    check_finite(n, x, d);
    faiss::IndexFlatIP::add(n, x);
    if (state_) state_->ntotal = -1;
}

void AssignIndexIP::reset() {
    faiss::IndexFlatIP::reset();
    if (state_) state_->ntotal = -1;
}

void AssignIndexIP::search(int64_t n, const float* x, int64_t k, float* distances,
                           int64_t* labels, const faiss::SearchParameters* params) const {
    if (k != 1 || params != nullptr) {
        faiss::IndexFlatIP::search(n, x, k, distances, labels, params);
        return;
    }
    assign_search(options, state_, get_xb(), ntotal, d, Metric::InnerProduct, n, x, distances,
                  labels);
}

} // namespace flashkmeans
