// Several GPUs of one process: a thread and an NCCL rank per GPU, the engine's
// data-parallel run (Communicator.h) on each. NCCL's ncclCommInitAll makes the
// communicators; this file only splits the rows, starts the ranks and gathers
// rank 0's result.
#include <flashkmeans/errors.h>
#include <flashkmeans/nccl_communicator.h>
#include <flashkmeans/train_on_devices.h>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>

#include <nccl.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <string>
#include <thread>

namespace flashkmeans {

namespace {

void check_devices(const std::vector<int>& devices) {
    if (devices.empty()) {
        throw InputError("train_on_devices: no device given");
    }
    const int visible = cuda_device_count();
    for (size_t i = 0; i < devices.size(); i++) {
        const int dev = devices[i];
        if (dev < 0 || dev >= visible) {
            throw InputError("train_on_devices: CUDA device " + std::to_string(dev) +
                             " does not exist (" + std::to_string(visible) + " visible)");
        }
        if (std::count(devices.begin(), devices.begin() + i, dev) > 0) {
            // NCCL puts one rank on each GPU (ncclCommInitAll refuses twice)
            throw InputError("train_on_devices: device " + std::to_string(dev) +
                             " is listed twice; give each GPU once");
        }
    }
}

/// The communicators of one ncclCommInitAll, destroyed together.
struct NcclComms {
    std::vector<ncclComm_t> comms;
    explicit NcclComms(const std::vector<int>& devices) : comms(devices.size(), nullptr) {
        const ncclResult_t rc = ncclCommInitAll(comms.data(), int(devices.size()), devices.data());
        FAISS_THROW_IF_NOT_FMT(rc == ncclSuccess, "flashkmeans: ncclCommInitAll failed: %s",
                               ncclGetErrorString(rc));
    }
    ~NcclComms() {
        for (ncclComm_t c : comms) {
            if (c) {
                ncclCommDestroy(c);
            }
        }
    }
};

} // namespace

void train_on_devices(Clustering& clus, const std::vector<int>& devices, int64_t n, const void* x,
                      DType dtype, faiss::Index& index, const float* weights) {
    check_devices(devices);
    if (clus.options.comm) {
        throw InputError("train_on_devices: options.comm is set; the devices make the ranks");
    }
    if (clus.options.backend == Backend::CPU) {
        throw InputError("train_on_devices: the CPU backend runs on no device; use the CUDA one");
    }
    if (n < 0) {
        throw InputError("train_on_devices: negative number of points");
    }
    const int ranks = int(devices.size());
    NcclComms comms(devices);

    std::vector<std::unique_ptr<Clustering>> rank(devices.size());
    std::vector<std::unique_ptr<faiss::IndexFlat>> own_index(devices.size());
    for (int r = 0; r < ranks; r++) {
        Options o = clus.options;
        o.backend = Backend::CUDA;
        o.device = devices[size_t(r)];
        o.comm = nccl_communicator(comms.comms[size_t(r)], o.device);
        rank[size_t(r)].reset(new Clustering(int(clus.d), int(clus.k),
                                             static_cast<const faiss::ClusteringParameters&>(clus),
                                             o));
        rank[size_t(r)]->tol = clus.tol;
        rank[size_t(r)]->centroids = clus.centroids;
        if (r > 0) {
            own_index[size_t(r)].reset(new faiss::IndexFlat(index.d, index.metric_type));
        }
    }

    const size_t row_bytes = clus.d * dtype_size(dtype);
    std::vector<std::exception_ptr> errors(devices.size());
    auto run = [&](int r) {
        const int64_t begin = n * r / ranks, end = n * (r + 1) / ranks;
        try {
            faiss::Index& idx = r == 0 ? index : *own_index[size_t(r)];
            rank[size_t(r)]->train_typed(end - begin,
                                         static_cast<const char*>(x) + size_t(begin) * row_bytes,
                                         dtype, false, idx, weights ? weights + begin : nullptr);
        } catch (...) {
            errors[size_t(r)] = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    for (int r = 1; r < ranks; r++) {
        threads.emplace_back(run, r);
    }
    run(0);
    for (auto& t : threads) {
        t.join();
    }
    for (const auto& e : errors) {
        if (e) {
            std::rethrow_exception(e); // rank 0's first: it carries the interrupt
        }
    }

    Clustering& first = *rank[0];
    clus.centroids = first.centroids;
    clus.iteration_stats = first.iteration_stats;
    clus.memory_plan = first.memory_plan;
    clus.centroid_shifts = first.centroid_shifts;
    clus.skipped_work = first.skipped_work;
    clus.near_ties = first.near_ties;
    clus.stop_reason = first.stop_reason;
    clus.last_labels.clear();
    for (const auto& c : rank) {
        clus.last_labels.insert(clus.last_labels.end(), c->last_labels.begin(),
                                c->last_labels.end());
    }
}

} // namespace flashkmeans
