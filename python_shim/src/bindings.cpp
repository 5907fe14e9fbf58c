/**
 * flashkmeans._flashkmeans: the Python extension behind the `flashkmeans`
 * package. It runs the C++ engine on arrays that arrive through nanobind's
 * ndarray (numpy through the buffer protocol / DLPack, torch and cupy through
 * DLPack, host or CUDA memory, used in place), with FAISS objects created
 * here on the C++ side only: no FAISS Python object ever crosses into this
 * module (the faiss-cpu wheel carries its own, separate copy of FAISS).
 *
 * The pure-Python layer (flashkmeans/*.py) normalises inputs (dtype, shape,
 * contiguity) and allocates outputs with the caller's own array library; the
 * checks here repeat the cheap ones so a direct caller cannot crash us.
 *
 * Ctrl-C: a faiss::InterruptCallback asks Python for pending signals between
 * iterations (the engine calls InterruptCallback::check()); the resulting
 * KeyboardInterrupt (or whatever the SIGINT handler raised) is re-raised in
 * Python once the engine has unwound. The GIL is released while it runs.
 */
#include <flashkmeans/Clustering.h>
#include <flashkmeans/Options.h>
#include <flashkmeans/ProgressiveDimClustering.h>
#include <flashkmeans/batch.h>
#include <flashkmeans/errors.h>
#include <flashkmeans/kernels.h>
#include <flashkmeans/memory.h>

#include "mpi4py_communicator.h"

#ifdef FLASHKMEANS_PY_NCCL
#include <flashkmeans/train_on_devices.h>
#endif

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using flashkmeans::Backend;
using flashkmeans::DType;
using flashkmeans::Metric;
using flashkmeans::Options;

// --- Ctrl-C -------------------------------------------------------------------

/// The Python error raised by a signal handler during a run (KeyboardInterrupt
/// for the default SIGINT handler). Only touched with the GIL held.
std::unique_ptr<nb::python_error> g_pending_signal;

struct PythonInterruptCallback : faiss::InterruptCallback {
    bool want_interrupt() override {
        if (!Py_IsInitialized()) {
            return false;
        }
        nb::gil_scoped_acquire gil;
        if (g_pending_signal) {
            return true; // already interrupted; keep unwinding
        }
        // Runs the Python-level handlers; only the main thread sees signals.
        if (PyErr_CheckSignals() != 0) {
            g_pending_signal.reset(new nb::python_error()); // fetches and clears
            return true;
        }
        return false;
    }
};

void reraise_pending_signal() {
    if (g_pending_signal) {
        nb::python_error err(std::move(*g_pending_signal));
        g_pending_signal.reset();
        throw err;
    }
}

/// Runs the engine with the GIL released; C++ exceptions propagate (nanobind
/// turns them into RuntimeError with the C++ message), except an interrupt,
/// which becomes the Python exception the signal handler raised.
template <typename F>
void run_engine(F&& body) {
    g_pending_signal.reset();
    try {
        nb::gil_scoped_release release;
        body();
        fflush(stdout);
    } catch (...) {
        fflush(stdout);
        reraise_pending_signal();
        throw;
    }
    reraise_pending_signal(); // a signal seen by is_interrupted() only
}

// --- Arrays -----------------------------------------------------------------------

/// Any dtype, any device, read-only allowed: dtype and layout are checked here.
using AnyArray = nb::ndarray<nb::ro>;

struct Points {
    const void* data = nullptr;
    DType dtype = DType::Float32;
    bool on_device = false;
    int device = 0;
    std::vector<int64_t> shape;
};

bool is_cuda(int device_type) {
    return device_type == nb::device::cuda::value || device_type == nb::device::cuda_managed::value;
}

/// Row-major and dense (size-1 dimensions may have any stride).
template <typename Array>
bool is_c_contiguous(const Array& a) {
    for (size_t i = 0; i < a.ndim(); i++) {
        if (a.shape(i) == 0) {
            return true; // empty: no element to address
        }
    }
    int64_t expected = 1;
    for (size_t i = a.ndim(); i-- > 0;) {
        if (a.shape(i) != 1 && a.stride(i) != expected) {
            return false;
        }
        expected *= int64_t(a.shape(i));
    }
    return true;
}

template <typename Array>
void check_place(const Array& a, const char* what) {
    const int dt = a.device_type();
    if (dt != nb::device::cpu::value && !is_cuda(dt)) {
        throw nb::value_error((std::string(what) + ": arrays must live in host or CUDA memory (DLPack device type " +
                               std::to_string(dt) + ")")
                                      .c_str());
    }
}

Points as_points(const AnyArray& x, const std::string& dtype_name, size_t ndim) {
    Points p;
    try {
        p.dtype = flashkmeans::parse_dtype(dtype_name);
    } catch (const std::exception& e) {
        throw nb::value_error(e.what());
    }
    if (x.ndim() != ndim) {
        throw nb::value_error(("points: expected a " + std::to_string(ndim) + "-D array, got " +
                               std::to_string(x.ndim()) + "-D")
                                      .c_str());
    }
    const auto code = x.dtype().code;
    const bool float_like = code == uint8_t(nb::dlpack::dtype_code::Float) ||
                            code == uint8_t(nb::dlpack::dtype_code::Bfloat) ||
                            code == uint8_t(nb::dlpack::dtype_code::UInt) ||
                            code == uint8_t(nb::dlpack::dtype_code::Int);
    if (!float_like || x.dtype().lanes != 1 || x.itemsize() != flashkmeans::dtype_size(p.dtype)) {
        throw nb::type_error(("points: array elements do not hold " + dtype_name + " values").c_str());
    }
    if (!is_c_contiguous(x)) {
        throw nb::value_error("points: array must be C-contiguous (row-major, dense)");
    }
    check_place(x, "points");
    p.data = x.data();
    p.on_device = is_cuda(x.device_type());
    p.device = x.device_id();
    for (size_t i = 0; i < ndim; i++) {
        p.shape.push_back(int64_t(x.shape(i)));
    }
    return p;
}

template <typename Array>
void check_host_array(const Array& a, const char* what, std::initializer_list<int64_t> shape) {
    check_place(a, what);
    if (is_cuda(a.device_type())) {
        throw nb::value_error((std::string(what) + ": must be a host array").c_str());
    }
    if (a.ndim() != shape.size()) {
        throw nb::value_error((std::string(what) + ": wrong number of dimensions").c_str());
    }
    size_t i = 0;
    for (int64_t s : shape) {
        if (s >= 0 && int64_t(a.shape(i)) != s) {
            throw nb::value_error((std::string(what) + ": wrong shape (dimension " +
                                   std::to_string(i) + " is " + std::to_string(a.shape(i)) +
                                   ", expected " + std::to_string(s) + ")")
                                          .c_str());
        }
        i++;
    }
    if (!is_c_contiguous(a)) {
        throw nb::value_error((std::string(what) + ": must be C-contiguous").c_str());
    }
}

/// Output arrays: all on the host, or all on the CUDA device of the points.
template <typename Array>
bool check_output(const Array& a, const char* what, std::initializer_list<int64_t> shape,
                  const Points& p) {
    check_place(a, what);
    const bool dev = is_cuda(a.device_type());
    if (dev && p.on_device && a.device_id() != p.device) {
        throw nb::value_error((std::string(what) + ": output on another CUDA device than the points")
                                      .c_str());
    }
    if (a.ndim() != shape.size()) {
        throw nb::value_error((std::string(what) + ": wrong number of dimensions").c_str());
    }
    size_t i = 0;
    for (int64_t s : shape) {
        if (int64_t(a.shape(i)) != s) {
            throw nb::value_error((std::string(what) + ": wrong shape").c_str());
        }
        i++;
    }
    if (!is_c_contiguous(a)) {
        throw nb::value_error((std::string(what) + ": must be C-contiguous").c_str());
    }
    return dev;
}

template <typename T>
nb::ndarray<nb::numpy, T> to_numpy(std::vector<T>&& values, std::initializer_list<size_t> shape) {
    auto* heap = new std::vector<T>(std::move(values));
    nb::capsule owner(heap, [](void* ptr) noexcept { delete static_cast<std::vector<T>*>(ptr); });
    return nb::ndarray<nb::numpy, T>(heap->data(), shape, owner);
}

// --- Options --------------------------------------------------------------------------

/// The `devices` option (several GPUs of one process, train_clustering only):
/// distinct CUDA ordinals >= 0; empty when absent.
std::vector<int> devices_option(const nb::dict& d) {
    std::vector<int> devices;
    if (!d.contains("devices") || d["devices"].is_none()) {
        return devices;
    }
    try {
        for (nb::handle h : d["devices"]) {
            devices.push_back(nb::cast<int>(h));
        }
    } catch (const std::exception&) { // nanobind's cast_error, a non-sequence
        throw nb::type_error("devices must be a sequence of CUDA device ordinals (ints)");
    }
    if (devices.empty()) {
        throw nb::value_error("devices: give at least one CUDA device ordinal");
    }
    for (size_t i = 0; i < devices.size(); i++) {
        if (devices[i] < 0) {
            throw nb::value_error(
                    ("devices: ordinals must be >= 0, got " + std::to_string(devices[i])).c_str());
        }
        for (size_t j = 0; j < i; j++) {
            if (devices[j] == devices[i]) {
                throw nb::value_error(("devices: device " + std::to_string(devices[i]) +
                                       " is listed twice; give each GPU once")
                                              .c_str());
            }
        }
    }
#ifndef FLASHKMEANS_PY_NCCL
    throw nb::value_error(
            "devices / gpu > 1: this build of flashkmeans has no NCCL, so it drives one GPU per "
            "process (build from source with NCCL, or run one process per GPU with comm=)");
#endif
    return devices;
}

/// flashkmeans::Options from a dict {backend, device, dtype, precision, init,
/// memory_budget, prune, cpu_kernel, stream, comm, devices}; bad names raise
/// ValueError. With devices and no device, the first listed GPU is the
/// device (what assign and the one-GPU entry points run on).
Options make_options(const nb::dict& d) {
    Options o;
    try {
        for (auto [key_h, value] : d) {
            const std::string key = nb::cast<std::string>(key_h);
            if (value.is_none()) {
                continue;
            }
            if (key == "backend") {
                o.backend = flashkmeans::parse_backend(nb::cast<std::string>(value));
            } else if (key == "device") {
                o.device = nb::cast<int>(value);
            } else if (key == "dtype") {
                o.dtype = flashkmeans::parse_dtype(nb::cast<std::string>(value));
            } else if (key == "precision") {
                o.precision = flashkmeans::parse_precision(nb::cast<std::string>(value));
            } else if (key == "init") {
                o.init = flashkmeans::parse_init(nb::cast<std::string>(value));
            } else if (key == "memory_budget") {
                const int64_t bytes = nb::cast<int64_t>(value);
                if (bytes < 0) {
                    throw nb::value_error(
                            ("memory_budget must be >= 0 bytes, got " + std::to_string(bytes))
                                    .c_str());
                }
                o.memory_budget = size_t(bytes);
            } else if (key == "prune") {
                if (!nb::isinstance<bool>(value)) {
                    throw nb::type_error("prune must be True or False");
                }
                o.prune = nb::cast<bool>(value);
            } else if (key == "cpu_kernel") {
                o.cpu_kernel = flashkmeans::parse_cpu_kernel(nb::cast<std::string>(value));
            } else if (key == "comm") {
                // an mpi4py communicator: this rank trains on its own shard
                o.comm = std::make_shared<Mpi4pyCommunicator>(nb::borrow(value));
            } else if (key == "devices") {
                const std::vector<int> devices = devices_option(d);
                if (!d.contains("device") || d["device"].is_none()) {
                    o.device = devices[0];
                }
            } else if (key == "stream") {
                // the caller's current CUDA stream, as an integer handle
                o.stream = reinterpret_cast<void*>(nb::cast<uintptr_t>(value));
            } else {
                throw nb::value_error(("unknown flashkmeans option '" + key + "'").c_str());
            }
        }
    } catch (const faiss::FaissException& e) {
        throw nb::value_error(e.msg.c_str());
    } catch (const std::bad_cast&) {
        throw nb::type_error("flashkmeans options: a value has the wrong type");
    }
    if (o.device < 0) {
        throw nb::value_error(("device must be >= 0, got " + std::to_string(o.device)).c_str());
    }
    return o;
}

/// Points on a CUDA device pin the device (and need the CUDA backend).
void place_options(Options& o, const Points& p, bool device_given) {
    if (!p.on_device) {
        return;
    }
    if (device_given && o.device != p.device) {
        throw nb::value_error(("points are on CUDA device " + std::to_string(p.device) +
                               " but device=" + std::to_string(o.device) + " was requested")
                                      .c_str());
    }
    o.device = p.device;
    if (o.backend == Backend::CPU) {
        throw nb::value_error(
                "points in CUDA memory need backend 'cuda' or 'auto' (got 'cpu'); move them to "
                "the host first");
    }
    o.backend = Backend::CUDA;
}

Metric parse_metric(const std::string& m) {
    if (m == "l2") return Metric::L2;
    if (m == "ip") return Metric::InnerProduct;
    throw nb::value_error(("unknown metric '" + m + "' (expected 'l2' or 'ip')").c_str());
}

void apply_cp(faiss::ClusteringParameters& cp, const nb::dict& d) {
    for (auto [key_h, value] : d) {
        const std::string key = nb::cast<std::string>(key_h);
        if (key == "niter") cp.niter = nb::cast<int>(value);
        else if (key == "nredo") cp.nredo = nb::cast<int>(value);
        else if (key == "verbose") cp.verbose = nb::cast<bool>(value);
        else if (key == "spherical") cp.spherical = nb::cast<bool>(value);
        else if (key == "int_centroids") cp.int_centroids = nb::cast<bool>(value);
        else if (key == "update_index") cp.update_index = nb::cast<bool>(value);
        else if (key == "frozen_centroids") cp.frozen_centroids = nb::cast<bool>(value);
        else if (key == "min_points_per_centroid") cp.min_points_per_centroid = nb::cast<int>(value);
        else if (key == "max_points_per_centroid") cp.max_points_per_centroid = nb::cast<int>(value);
        else if (key == "seed") cp.seed = nb::cast<int>(value);
        else if (key == "decode_block_size") cp.decode_block_size = nb::cast<size_t>(value);
        else throw nb::value_error(("unknown ClusteringParameters field '" + key + "'").c_str());
    }
}

// --- Entry points -------------------------------------------------------------------------

/// faiss's iteration stats as (obj, time, time_search, imbalance_factor, nsplit)
/// tuples; a pruned run's add (skipped, near_ties) (Clustering::skipped_work).
nb::list stats_list(const std::vector<faiss::ClusteringIterationStats>& all,
                    const std::vector<double>& skipped = {},
                    const std::vector<int64_t>& near_ties = {}) {
    nb::list stats;
    for (size_t i = 0; i < all.size(); i++) {
        const auto& s = all[i];
        if (i < skipped.size()) {
            stats.append(nb::make_tuple(double(s.obj), s.time, s.time_search, s.imbalance_factor,
                                        s.nsplit, skipped[i], near_ties[i]));
        } else {
            stats.append(nb::make_tuple(double(s.obj), s.time, s.time_search, s.imbalance_factor,
                                        s.nsplit));
        }
    }
    return stats;
}

/// flashkmeans::Clustering on n x d points; returns (centroids k x d,
/// iteration stats as (obj, time, time_search, imbalance_factor, nsplit)
/// tuples, labels of the points trained on after subsampling, each
/// iteration's centroid shift, and how the kept run stopped: 'niter',
/// 'unchanged' or 'tol'). tol: Clustering::tol (None: off, FAISS's loop).
nb::tuple train_clustering(const AnyArray& x, const std::string& x_dtype, int64_t k,
                           const std::string& metric, const nb::dict& cp_fields,
                           const nb::dict& options,
                           std::optional<nb::ndarray<const float, nb::c_contig>> weights,
                           std::optional<nb::ndarray<const float, nb::c_contig>> init_centroids,
                           std::optional<double> tol) {
    Points p = as_points(x, x_dtype, 2);
    const int64_t n = p.shape[0], d = p.shape[1];
    if (d <= 0) throw nb::value_error("points: d must be > 0");
    if (k <= 0) throw nb::value_error(("k must be > 0, got " + std::to_string(k)).c_str());
    faiss::ClusteringParameters cp;
    apply_cp(cp, cp_fields);
    Options opts = make_options(options);
    place_options(opts, p, options.contains("device") && !options["device"].is_none());
    const Metric m = parse_metric(metric);

    flashkmeans::Clustering clus(int(d), int(k), cp, opts);
    if (tol) {
        if (!(*tol >= 0)) {
            throw nb::value_error(("tol must be >= 0, got " + std::to_string(*tol)).c_str());
        }
        clus.tol = *tol;
    }
    if (weights) {
        check_host_array(*weights, "weights", {n});
    }
    if (init_centroids) {
        check_host_array(*init_centroids, "init_centroids", {-1, d});
        const size_t count = init_centroids->shape(0) * size_t(d);
        clus.centroids.assign(init_centroids->data(), init_centroids->data() + count);
    }
    std::unique_ptr<faiss::IndexFlat> index;
    if (m == Metric::InnerProduct) {
        index.reset(new faiss::IndexFlatIP(d));
    } else {
        index.reset(new faiss::IndexFlatL2(d));
    }
    const float* w = weights ? weights->data() : nullptr;
    const std::vector<int> devices = devices_option(options);
    if (devices.empty()) {
        run_engine([&] { clus.train_typed(n, p.data, p.dtype, p.on_device, *index, w); });
    } else {
        if (p.on_device) {
            throw nb::value_error(
                    "devices: training on several GPUs shards host arrays; pass the points in "
                    "host memory (or train on their own GPU without devices / gpu > 1)");
        }
        if (opts.comm) {
            throw nb::value_error("devices and comm exclude each other: give one or the other");
        }
#ifdef FLASHKMEANS_PY_NCCL
        run_engine([&] {
            flashkmeans::train_on_devices(clus, devices, n, p.data, p.dtype, *index, w);
        });
#endif
    }

    nb::list stats = stats_list(clus.iteration_stats, clus.skipped_work, clus.near_ties);
    std::vector<float> centroids(clus.centroids);
    const size_t n_labels = clus.last_labels.size();
    static const char* const stops[] = {"niter", "unchanged", "tol"};
    const size_t n_shifts = clus.centroid_shifts.size();
    return nb::make_tuple(to_numpy(std::move(centroids), {size_t(k), size_t(d)}), stats,
                          to_numpy(std::move(clus.last_labels), {n_labels}),
                          to_numpy(std::move(clus.centroid_shifts), {n_shifts}),
                          stops[clus.stop_reason], clus.memory_plan);
}

/// flashkmeans::ProgressiveDimClustering on n x d host float32 points;
/// returns (centroids k x d, iteration stats of every stage).
nb::tuple train_progressive_dim(const nb::ndarray<const float, nb::c_contig>& x, int64_t k,
                                const nb::dict& cp_fields, int steps, bool apply_pca,
                                const nb::dict& options) {
    check_host_array(x, "points", {-1, -1});
    const int64_t n = int64_t(x.shape(0)), d = int64_t(x.shape(1));
    if (d <= 0) throw nb::value_error("points: d must be > 0");
    if (k <= 0) throw nb::value_error(("k must be > 0, got " + std::to_string(k)).c_str());
    faiss::ProgressiveDimClusteringParameters cp;
    apply_cp(cp, cp_fields);
    cp.progressive_dim_steps = steps;
    cp.apply_pca = apply_pca;
    flashkmeans::ProgressiveDimClustering clus(int(d), int(k), cp, make_options(options));
    run_engine([&] { clus.train(n, x.data()); });
    std::vector<float> centroids(clus.centroids);
    return nb::make_tuple(to_numpy(std::move(centroids), {size_t(k), size_t(d)}),
                          stats_list(clus.iteration_stats));
}

/// B independent problems of n x d points, `niter` Lloyd iterations each.
void batch_kmeans(const AnyArray& x, const std::string& x_dtype, int64_t k, int niter,
                  const std::string& metric, bool spherical, int64_t seed, bool verbose,
                  std::optional<nb::ndarray<const float, nb::c_contig>> init_centroids,
                  nb::ndarray<float> centroids_out, std::optional<nb::ndarray<int64_t>> labels_out,
                  std::optional<nb::ndarray<double>> objective_out, const nb::dict& options) {
    Points p = as_points(x, x_dtype, 3);
    const int64_t B = p.shape[0], n = p.shape[1], d = p.shape[2];
    if (k <= 0) throw nb::value_error(("k must be > 0, got " + std::to_string(k)).c_str());
    if (niter < 0) throw nb::value_error("niter must be >= 0");
    if (options.contains("devices") && !options["devices"].is_none()) {
        throw nb::value_error("batch_kmeans runs on one GPU: drop devices (pick it with device=)");
    }
    Options opts = make_options(options);
    place_options(opts, p, options.contains("device") && !options["device"].is_none());

    flashkmeans::BatchKMeansParams params;
    params.k = k;
    params.niter = niter;
    params.metric = parse_metric(metric);
    params.spherical = spherical;
    params.seed = seed;
    params.verbose = verbose;
    if (init_centroids) {
        // on the host, or on the points' device (used there, no round trip)
        params.init_on_device = check_output(*init_centroids, "init_centroids", {B, k, d}, p);
        if (params.init_on_device && !p.on_device) {
            throw nb::value_error("init_centroids: on a CUDA device, but the points are not");
        }
        params.init_centroids = init_centroids->data();
    }
    flashkmeans::BatchKMeansOutput out;
    out.on_device = check_output(centroids_out, "centroids", {B, k, d}, p);
    out.centroids = centroids_out.data();
    if (labels_out) {
        if (check_output(*labels_out, "labels", {B, n}, p) != out.on_device) {
            throw nb::value_error("labels and centroids outputs must be in the same memory");
        }
        out.labels = labels_out->data();
    }
    if (objective_out) {
        check_host_array(*objective_out, "objective", {B, niter});
        out.objective = objective_out->data();
    }
    flashkmeans::PointsView view;
    view.x = p.data;
    view.dtype = p.dtype;
    view.on_device = p.on_device;
    view.batch = B;
    view.n = n;
    view.d = d;
    run_engine([&] { flashkmeans::batch_kmeans(view, params, out, opts); });
}

/// Nearest centroid of each of n points: distances (n) and labels (n, int64).
void assign(const AnyArray& x, const std::string& x_dtype,
            const nb::ndarray<const float, nb::c_contig>& centroids, const std::string& metric,
            nb::ndarray<float> distances_out, nb::ndarray<int64_t> labels_out,
            const nb::dict& options) {
    Points p = as_points(x, x_dtype, 2);
    const int64_t n = p.shape[0], d = p.shape[1];
    check_host_array(centroids, "centroids", {-1, d});
    const int64_t k = int64_t(centroids.shape(0));
    if (k <= 0) throw nb::value_error("centroids: need at least one centroid");
    Options opts = make_options(options);
    place_options(opts, p, options.contains("device") && !options["device"].is_none());
    const bool dev = check_output(distances_out, "distances", {n}, p);
    if (check_output(labels_out, "labels", {n}, p) != dev) {
        throw nb::value_error("labels and distances outputs must be in the same memory");
    }
    flashkmeans::PointsView view;
    view.x = p.data;
    view.dtype = p.dtype;
    view.on_device = p.on_device;
    view.n = n;
    view.d = d;
    const Metric m = parse_metric(metric);
    run_engine([&] {
        flashkmeans::assign_points(view, centroids.data(), k, m, distances_out.data(),
                                   labels_out.data(), dev, opts);
    });
}

/// The backend "auto"/"cpu"/"cuda" resolves to here ("cpu" or "cuda").
std::string resolve_backend(const std::string& name) {
    Backend b;
    try {
        b = flashkmeans::parse_backend(name);
    } catch (const faiss::FaissException& e) {
        throw nb::value_error(e.msg.c_str());
    }
    return flashkmeans::backend_name(flashkmeans::resolve_backend(b));
}

} // namespace

NB_MODULE(_flashkmeans, m) {
    m.doc() = "flashkmeans C++ engine (internal; use the flashkmeans package)";

    faiss::InterruptCallback::instance.reset(new PythonInterruptCallback());
    // bad input is the caller's mistake: ValueError, as numpy and scikit-learn
    // raise; device memory running out: MemoryError
    nb::register_exception_translator([](const std::exception_ptr& p, void*) {
        try {
            std::rethrow_exception(p);
        } catch (const flashkmeans::InputError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const flashkmeans::OutOfMemoryError& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());  // as numpy and CuPy
        }
    });

    m.def("cuda_compiled", &flashkmeans::cuda_compiled,
          "True when this build has the CUDA kernels compiled in.");
    m.def(
            "nccl_compiled",
            [] {
#ifdef FLASHKMEANS_PY_NCCL
                return true;
#else
                return false;
#endif
            },
            "True when this build trains on several GPUs of one process (devices, gpu > 1) over NCCL.");
    m.def("cuda_device_count", &flashkmeans::cuda_device_count,
          "Number of visible CUDA devices (0 without CUDA support or GPU).");
    m.def("empty_cache", &flashkmeans::empty_cache,
          "Returns the device memory and pinned buffers kept between calls to the driver.");
    m.def("cached_memory_bytes", &flashkmeans::cached_memory_bytes,
          "Bytes of device memory and pinned buffers kept between calls.");
    m.def(
            "graph_stats",
            [] {
                const flashkmeans::GraphStats s = flashkmeans::graph_stats();
                nb::dict d;
                d["instantiated"] = s.instantiated;
                d["updated"] = s.updated;
                d["refused"] = s.refused;
                d["last_refusal"] = s.last_refusal;
                return d;
            },
            "What the iterations' CUDA graphs did since the process started: instantiated, "
            "updated (a kept graph reused), refused (CUDA refused an update) and the last "
            "refusal's reason.");
    m.def("cpu_fused_assign_available", &flashkmeans::kernels::cpu_fused_assign_available,
          "Whether cpu_kernel='fused' runs on this CPU (x86-64 with AVX2 and FMA).");
    m.def("resolve_backend", &resolve_backend, "name"_a,
          "The backend a name resolves to on this machine ('cpu' or 'cuda').");
    m.def("check_options", [](const nb::dict& d) { (void)make_options(d); }, "options"_a,
          "Raises ValueError/TypeError for a bad flashkmeans option.");
    m.def("train_clustering", &train_clustering, "x"_a, "x_dtype"_a, "k"_a, "metric"_a, "cp"_a,
          "options"_a, "weights"_a.none() = nb::none(), "init_centroids"_a.none() = nb::none(),
          "tol"_a.none() = nb::none());
    m.def("train_progressive_dim", &train_progressive_dim, "x"_a, "k"_a, "cp"_a, "steps"_a,
          "apply_pca"_a, "options"_a);
    m.def("batch_kmeans", &batch_kmeans, "x"_a, "x_dtype"_a, "k"_a, "niter"_a, "metric"_a,
          "spherical"_a, "seed"_a, "verbose"_a, "init_centroids"_a.none(), "centroids_out"_a,
          "labels_out"_a.none(), "objective_out"_a.none(), "options"_a);
    m.def("assign", &assign, "x"_a, "x_dtype"_a, "centroids"_a, "metric"_a, "distances_out"_a,
          "labels_out"_a, "options"_a);
}
