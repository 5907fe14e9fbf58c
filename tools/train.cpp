/**
 * flashkmeans train [INPUT] -k K: k-means (flashkmeans::Clustering) on a file,
 * or on the built-in Gaussian mixture, which reports how many of its centres
 * were recovered; writes the centroids and, optionally, every point's label.
 */
#include "cli_common.h"
#include "commands.h"
#include "dataset.h"
#include "ranks.h"
#include "vector_io.h"

#include <flashkmeans/Clustering.h>
#include <flashkmeans/Options.h>
#ifdef FLASHKMEANS_CLI_NCCL
#include <flashkmeans/train_on_devices.h>
#endif

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cli {

namespace {

std::string shape_text(int64_t n, int64_t d) {
    return std::to_string(n) + " x " + std::to_string(d);
}

/// Every rank's labels of its rows, in row order (all n of them, on every
/// rank): one all-gather of blocks padded to the largest share.
std::vector<int64_t> gather_rows_labels(const Ranks& world, const std::vector<int64_t>& mine,
                                        int64_t n) {
    const int64_t most = (n + world.size - 1) / world.size;
    std::vector<int64_t> block(size_t(most), -1), all(size_t(most) * size_t(world.size));
    std::copy(mine.begin(), mine.end(), block.begin());
    world.comm->allgather(block.data(), all.data(), block.size() * sizeof(int64_t));
    std::vector<int64_t> out;
    out.reserve(size_t(n));
    for (int r = 0; r < world.size; r++) {
        Ranks other = world;
        other.rank = r;
        const int64_t m = other.end(n) - other.begin(n);
        out.insert(out.end(), all.begin() + r * most, all.begin() + r * most + m);
    }
    return out;
}

} // namespace

/// --devices 0,1,...: distinct CUDA ordinals; empty without the flag.
std::vector<int> devices_from(const Args& args) {
    std::vector<int> devices;
    if (!args.has("--devices")) {
        return devices;
    }
    const std::string list = args.str("--devices");
    size_t at = 0;
    while (at <= list.size()) {
        const size_t comma = std::min(list.find(',', at), list.size());
        const std::string item = list.substr(at, comma - at);
        char* end = nullptr;
        const long v = item.empty() ? -1 : std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v < 0 || v > std::numeric_limits<int>::max()) {
            throw args.usage("--devices takes CUDA device ordinals separated by commas (e.g. "
                             "0,1), got '" +
                             list + "'");
        }
        if (std::find(devices.begin(), devices.end(), int(v)) != devices.end()) {
            throw args.usage("--devices lists device " + item + " twice");
        }
        devices.push_back(int(v));
        at = comma + 1;
    }
    return devices;
}

int run_train(const Args& args) {
    const auto& pos = args.positional();
    if (pos.size() > 1) {
        throw args.usage("train takes at most one INPUT file, got '" + pos[0] + "' and '" + pos[1] +
                         "'");
    }
    const bool builtin = pos.empty();
    // under mpirun every rank trains on its own rows; rank 0 talks and writes
    const Ranks& world = ranks();
    const bool quiet = args.flag("--quiet") || !world.root();
    if (!builtin) {
        for (const char* f : {"--n", "--d", "--centers", "--data-seed"}) {
            if (args.has(f)) {
                throw args.usage(std::string(f) +
                                 " applies to the built-in dataset only (no INPUT)");
            }
        }
        if (!args.has("--k")) {
            throw args.usage("-k K (the number of centroids) is required");
        }
    }
    dataset::MixtureParams mp;
    mp.n = args.integer("--n", mp.n, 1);
    mp.d = args.integer("--d", mp.d, 1, 1 << 20);
    mp.centers = args.integer("--centers", mp.centers, 1);
    mp.seed = uint64_t(args.integer("--data-seed", int64_t(mp.seed), 0));

    faiss::ClusteringParameters cp;
    const int64_t k =
            args.integer("--k", builtin ? mp.centers : 0, 1, std::numeric_limits<int>::max());
    cp.niter = int(args.integer("--niter", cp.niter, 0, std::numeric_limits<int>::max()));
    cp.nredo = int(args.integer("--nredo", cp.nredo, 1, std::numeric_limits<int>::max()));
    cp.seed = int(args.integer("--seed", cp.seed, std::numeric_limits<int>::min(),
                               std::numeric_limits<int>::max()));
    cp.max_points_per_centroid =
            int(args.integer("--max-points-per-centroid", cp.max_points_per_centroid, 1,
                             std::numeric_limits<int>::max()));
    cp.min_points_per_centroid =
            int(args.integer("--min-points-per-centroid", cp.min_points_per_centroid, 0,
                             std::numeric_limits<int>::max()));
    cp.spherical = args.flag("--spherical");
    cp.int_centroids = args.flag("--int-centroids");
    cp.verbose = !quiet;
    const faiss::MetricType metric = metric_from(args);
    Options options = options_from(args);
    options.prune = args.flag("--prune");
    const std::vector<int> devices = devices_from(args);
    if (!devices.empty()) {
        if (world.size > 1) {
            throw args.usage("--devices makes the ranks of one process; under mpirun give each "
                             "rank its GPU with --device instead");
        }
        if (args.has("--device")) {
            throw args.usage("--device and --devices exclude each other");
        }
        if (options.backend == Backend::CPU) {
            throw args.usage("--devices runs on the CUDA backend; drop --backend cpu");
        }
#ifndef FLASHKMEANS_CLI_NCCL
        throw RunError("--devices: this build has no NCCL (CMake found no nccl.h / libnccl); "
                       "run one process per GPU under mpirun instead");
#endif
        options.backend = Backend::CUDA;
        options.device = devices[0]; // the labels' assignment runs there
    }
    const Options one_process = options; // for the labels' assignment, rank by rank
    options.comm = world.comm;
    const std::string out_path = args.str("--output");
    const std::string labels_path = args.str("--labels");
    const std::string weights_path = args.str("--weights");
    if (args.has("--output")) {
        check_output(args, out_path, "-o", {io::Format::Npy, io::Format::Fvecs}, ".npy or .fvecs");
    }
    if (args.has("--labels")) {
        check_output(args, labels_path, "--labels", {io::Format::Npy, io::Format::Ivecs},
                     ".npy or .ivecs");
    }
    const Backend backend = resolve(options);

    // data
    auto t_start = std::chrono::steady_clock::now();
    io::FloatMatrix data;
    dataset::Mixture mixture;
    std::string source;
    if (builtin) {
        if (!quiet) {
            std::printf("generating the built-in dataset: %lld points, d=%lld, %lld Gaussian "
                        "centres (centre coordinates N(0, 1), noise N(0, %.2f^2))\n",
                        (long long)mp.n, (long long)mp.d, (long long)mp.centers,
                        double(mp.noise_std));
            std::fflush(stdout);
        }
        try {
            mixture = dataset::make_mixture(mp);
        } catch (const std::invalid_argument& e) {
            throw args.usage(e.what());
        }
        data.n = mp.n;
        data.d = mp.d;
        data.data.swap(mixture.x);
        source = "built-in dataset";
    } else {
        data = load_points(pos[0], quiet);
        source = pos[0];
    }
    const int64_t n = data.n, d = data.d;
    if (k > n) {
        throw RunError("k = " + std::to_string(k) + " is larger than the number of points (" +
                       std::to_string(n) + ") in " + source);
    }
    std::vector<float> weights;
    if (!weights_path.empty()) {
        io::FloatMatrix w = io::read_vectors(weights_path, /*allow_1d=*/true);
        if (w.d != 1 || w.n != n) {
            throw RunError(weights_path + ": expected " + std::to_string(n) +
                           " weights (one per point of " + source + "), got " +
                           shape_text(w.n, w.d));
        }
        for (int64_t i = 0; i < n; i++) {
            if (!(std::isfinite(w.data[size_t(i)]) && w.data[size_t(i)] >= 0)) {
                throw RunError(weights_path + ": weight " + std::to_string(i) +
                               " is negative or not finite");
            }
        }
        weights.swap(w.data);
    }
    const double t_read = seconds_since(t_start);

    // this rank's rows (all of them in one process)
    const int64_t row0 = world.begin(n), rows = world.end(n) - row0;
    const float* x = data.values() + row0 * d;

    // k-means
    Clustering clus(int(d), int(k), cp, options);
    std::unique_ptr<faiss::Index> index;
    if (metric == faiss::METRIC_INNER_PRODUCT) {
        index.reset(new faiss::IndexFlatIP(d));
    } else {
        index.reset(new faiss::IndexFlatL2(d));
    }
    auto t_train0 = std::chrono::steady_clock::now();
    const float* w = weights.empty() ? nullptr : weights.data() + row0;
    if (devices.empty()) {
        clus.train(rows, x, *index, w);
    } else {
#ifdef FLASHKMEANS_CLI_NCCL
        train_on_devices(clus, devices, rows, x, DType::Float32, *index, w);
#endif
    }
    const double t_train = seconds_since(t_train0);
    if (clus.centroids.size() != size_t(k * d)) {
        throw RunError("training produced " + std::to_string(clus.centroids.size()) +
                       " centroid values, expected " + std::to_string(k * d));
    }

    std::vector<std::string> wrote;
    if (!out_path.empty() && world.root()) {
        io::write_vectors(out_path, clus.centroids.data(), k, d);
        wrote.push_back(out_path + " (" + shape_text(k, d) + " float32 centroids)");
    }
    double t_labels = 0;
    if (!labels_path.empty()) {
        auto t0 = std::chrono::steady_clock::now();
        std::vector<int64_t> labels;
        std::vector<float> dist;
        assign_all(x, rows, d, clus.centroids.data(), k, metric, one_process, quiet, labels, dist);
        if (world.size > 1) {
            labels = gather_rows_labels(world, labels, n);
        }
        if (world.root()) {
            io::write_ints(labels_path, labels.data(), n, 1, /*as_1d=*/true);
        }
        t_labels = seconds_since(t0);
        wrote.push_back(labels_path + " (" + std::to_string(n) + " labels)");
    }

    if (!world.root()) {
        return 0;
    }
    // summary
    const auto& st = clus.iteration_stats;
    const int64_t iters = int64_t(st.size());
    double obj = st.empty() ? 0.0 : double(st.back().obj);
    if (cp.nredo > 1 && iters == int64_t(cp.niter) * cp.nredo && cp.niter > 0) {
        // the objective of the run that was kept: the best last iteration of the redos
        const bool lower_better = metric != faiss::METRIC_INNER_PRODUCT;
        for (int r = 0; r < cp.nredo; r++) {
            double o = st[size_t((r + 1) * cp.niter - 1)].obj;
            obj = r == 0 ? o : (lower_better ? std::min(obj, o) : std::max(obj, o));
        }
    }
    const double total = seconds_since(t_start);
    std::printf("flashkmeans train: n=%lld d=%lld k=%lld backend=%s metric=%s (%s)\n", (long long)n,
                (long long)d, (long long)k, backend_name(backend),
                metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2", source.c_str());
    if (world.size > 1) {
        std::printf("  ranks: %d (MPI), %lld to %lld points each\n", world.size,
                    (long long)(n / world.size), (long long)((n + world.size - 1) / world.size));
    }
    std::printf("  iterations: %lld%s, final objective: %.6g, imbalance: %.3f\n", (long long)iters,
                cp.nredo > 1 ? (" (" + std::to_string(cp.nredo) + " redos)").c_str() : "", obj,
                st.empty() ? 1.0 : st.back().imbalance_factor);
    std::printf("  points: %s\n", clus.memory_plan.c_str());
    if (!clus.skipped_work.empty()) {
        // the share of the assignment's work the bounds saved, over the run
        double skipped = 0;
        int64_t ties = 0;
        for (size_t i = 0; i < clus.skipped_work.size(); i++) {
            skipped += clus.skipped_work[i];
            ties += clus.near_ties[i];
        }
        std::printf("  pruning: %.1f%% of the assignment skipped on average, last iteration "
                    "%.1f%%; %lld near-ties\n",
                    100 * skipped / double(clus.skipped_work.size()),
                    100 * clus.skipped_work.back(), (long long)ties);
    }
    char labels_time[64] = "";
    if (!labels_path.empty()) {
        std::snprintf(labels_time, sizeof(labels_time), ", labels %.2f s", t_labels);
    }
    std::printf("  time: total %.2f s (data %.2f s, k-means %.2f s%s), %.2f ms/iteration\n", total,
                t_read, t_train, labels_time, iters > 0 ? 1000.0 * t_train / double(iters) : 0.0);
    if (builtin) {
        dataset::Recovery r = dataset::evaluate_recovery(mixture, clus.centroids.data(), k);
        std::printf("  built-in dataset: recovered %lld / %lld true centres (%.1f%%: nearest "
                    "centroid within %.3g, a quarter of the smallest gap between centres)\n",
                    (long long)r.matched, (long long)r.centers,
                    100.0 * double(r.matched) / double(r.centers), r.match_radius);
        std::printf("  built-in dataset: distance from a true centre to its nearest centroid: "
                    "mean %.4g, max %.4g (points lie about %.3g from their centre)\n",
                    r.mean_distance, r.max_distance, r.noise_radius);
        if (r.matched < r.centers && k >= r.centers) {
            std::printf("  (Lloyd's algorithm stops at a local optimum: clusters that received no "
                        "initial centroid end up shared; --init kmeans++ or --nredo help)\n");
        }
    }
    for (const auto& w : wrote) {
        std::printf("  wrote %s\n", w.c_str());
    }
    if (out_path.empty() && !quiet) {
        std::printf("  (centroids not written: pass -o FILE.npy)\n");
    }
    return 0;
}

} // namespace cli
} // namespace flashkmeans
