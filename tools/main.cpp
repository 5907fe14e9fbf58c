/**
 * flashkmeans: the command-line program.
 *
 *   flashkmeans train  [INPUT] -k K [...]    k-means on a file, or on the built-in dataset
 *   flashkmeans assign INPUT --centroids C   nearest centroid of every point
 *   flashkmeans ivf    INPUT --factory F     train (and fill) a FAISS IVF index
 *
 * Every failure ends in one line on stderr, "flashkmeans: error: ...", and
 * exit status 2 (bad command line), 1 (anything else) or 130 (Ctrl-C).
 */
#include "cli_args.h"
#include "dataset.h"
#include "vector_io.h"

#include <flashkmeans/AssignIndex.h>
#include <flashkmeans/Clustering.h>
#include <flashkmeans/Options.h>
#include <flashkmeans/ivf.h>

#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <new>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#ifndef FLASHKMEANS_VERSION
#define FLASHKMEANS_VERSION "unknown"
#endif

namespace fk = flashkmeans;
namespace fio = flashkmeans::io;
namespace fs = std::filesystem;
namespace cli = flashkmeans::cli;

namespace {

using cli::Args;
using cli::UsageError;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

/// Any other failure of a run, exit status 1.
struct RunError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---- Ctrl-C ----------------------------------------------------------------------

std::atomic<bool> g_interrupted{false};

/** The first Ctrl-C asks FAISS and the engine to stop at their next check
 * (the run then ends with "interrupted"); the handler is reset, so a second
 * Ctrl-C kills the program at once even if nothing checks. */
void on_sigint(int) {
    g_interrupted.store(true);
}

struct SigintCallback : faiss::InterruptCallback {
    bool want_interrupt() override {
        return g_interrupted.load();
    }
};

void install_interrupt_handler() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    faiss::InterruptCallback::instance.reset(new SigintCallback());
}

// ---- messages --------------------------------------------------------------------

/// FAISS messages read "Error in <function> at <file>:<line>: Error: '<check>'
/// failed: <message>"; the user needs only the message, on one line.
std::string clean_message(std::string msg) {
    static const std::regex where(R"(^Error in .*? at \S+:\d+: )");
    static const std::regex check(R"(^Error: '.*?' failed: )");
    msg = std::regex_replace(msg, where, "", std::regex_constants::format_first_only);
    msg = std::regex_replace(msg, check, "", std::regex_constants::format_first_only);
    for (auto& c : msg) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    while (!msg.empty() && msg.back() == ' ') {
        msg.pop_back();
    }
    return msg.empty() ? std::string("unknown error") : msg;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void print_version() {
    std::printf("flashkmeans %s (FAISS %d.%d.%d", FLASHKMEANS_VERSION, FAISS_VERSION_MAJOR,
                FAISS_VERSION_MINOR, FAISS_VERSION_PATCH);
    if (fk::cuda_compiled()) {
        std::printf(", CUDA kernels built, %d GPU(s) visible)\n", fk::cuda_device_count());
    } else {
        std::printf(", CPU only: built without CUDA)\n");
    }
}

/// The parsed command line of one subcommand, keyed by long flag name.
// ---- shared steps ------------------------------------------------------------------------

/// Runs a parse_* helper of Options.h, turning its exception into a usage error.
template <typename F>
auto parse_choice(const Args& args, F&& parse, const std::string& value) -> decltype(parse(value)) {
    try {
        return parse(value);
    } catch (const faiss::FaissException& e) {
        throw args.usage(clean_message(e.what()));
    }
}

fk::Options options_from(const Args& args) {
    fk::Options o;
    o.backend = parse_choice(args, fk::parse_backend, args.str("--backend", "auto"));
    o.device = int(args.integer("--device", 0, 0, 1 << 20));
    o.dtype = parse_choice(args, fk::parse_dtype, args.str("--dtype", "float32"));
    o.precision = parse_choice(args, fk::parse_precision, args.str("--precision", "exact"));
    if (args.has("--init")) {
        o.init = parse_choice(args, fk::parse_init, args.str("--init"));
    }
    return o;
}

faiss::MetricType metric_from(const Args& args) {
    std::string m = args.str("--metric", "l2");
    for (auto& c : m) {
        c = char(std::tolower((unsigned char)c));
    }
    if (m == "l2") {
        return faiss::METRIC_L2;
    }
    if (m == "ip" || m == "inner_product") {
        return faiss::METRIC_INNER_PRODUCT;
    }
    throw args.usage("unknown metric '" + args.str("--metric") + "' (expected l2 or ip)");
}

/// The backend a run will use; a CUDA request on a machine without one fails here,
/// before any data is read.
fk::Backend resolve(const fk::Options& o) {
    fk::Backend b;
    try {
        b = fk::resolve_backend(o.backend);
    } catch (const faiss::FaissException& e) {
        throw RunError(clean_message(e.what()));
    }
    if (b != fk::Backend::CUDA && o.dtype != fk::DType::Float32) {
        throw RunError(std::string("--dtype ") + fk::dtype_name(o.dtype) +
                       " needs the CUDA backend; this run uses " + fk::backend_name(b) +
                       " (use --dtype float32)");
    }
    return b;
}

/** Checks before any work that an output can be written: a known extension
 * among `allowed` (a usage error otherwise) and an existing directory. */
void check_output(const Args& args, const std::string& path, const char* flag,
                  std::initializer_list<fio::Format> allowed, const char* allowed_text) {
    if (allowed.size() > 0) {
        fio::Format f;
        try {
            f = fio::format_of(path);
        } catch (const fio::IoError&) {
            throw args.usage(std::string(flag) + " " + path + ": expected a " + allowed_text + " file name");
        }
        if (std::find(allowed.begin(), allowed.end(), f) == allowed.end()) {
            throw args.usage(std::string(flag) + " " + path + ": expected a " + allowed_text + " file name");
        }
    }
    fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
        throw RunError(path + ": cannot create: directory '" + parent.string() + "' does not exist");
    }
}

/// Points from a file, with a non-finite check that names the file and the vector.
fio::FloatMatrix load_points(const std::string& path, bool quiet) {
    auto t0 = std::chrono::steady_clock::now();
    if (!quiet) {
        std::printf("reading %s\n", path.c_str());
        std::fflush(stdout);
    }
    fio::FloatMatrix m = fio::read_vectors(path);
    for (int64_t i = 0; i < m.n; i++) {
        const float* row = m.data.data() + i * m.d;
        for (int64_t j = 0; j < m.d; j++) {
            if (!std::isfinite(row[j])) {
                throw RunError(path + ": vector " + std::to_string(i) + " has a non-finite value (" +
                               (std::isnan(row[j]) ? "NaN" : "Inf") + ") in component " +
                               std::to_string(j));
            }
        }
    }
    if (!quiet) {
        std::printf("read %s: %lld vectors of dimension %lld in %.2f s\n", path.c_str(),
                    (long long)m.n, (long long)m.d, seconds_since(t0));
        std::fflush(stdout);
    }
    return m;
}

/** Nearest centroid (or largest inner product) of each of the n points, with
 * the flashkmeans assignment index, in blocks so progress can be shown and
 * Ctrl-C honoured on large inputs. */
void assign_all(const float* x, int64_t n, int64_t d, const float* centroids, int64_t k,
                faiss::MetricType metric, const fk::Options& options, bool quiet,
                std::vector<int64_t>& labels, std::vector<float>& distances) {
    std::unique_ptr<faiss::Index> index;
    if (metric == faiss::METRIC_INNER_PRODUCT) {
        index.reset(new fk::AssignIndexIP(d, options));
    } else {
        index.reset(new fk::AssignIndex(d, options));
    }
    index->add(k, centroids);
    labels.resize(size_t(n));
    distances.resize(size_t(n));
    const int64_t block = int64_t(1) << 20;
    const bool show = !quiet && n > block;
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; i += block) {
        const int64_t nb = std::min(block, n - i);
        index->search(nb, x + i * d, 1, distances.data() + i, labels.data() + i);
        faiss::InterruptCallback::check();
        if (show) {
            std::printf("  assigned %lld / %lld points (%.1f s)\r", (long long)(i + nb), (long long)n,
                        seconds_since(t0));
            std::fflush(stdout);
        }
    }
    if (show) {
        std::printf("\n");
    }
}

std::string shape_text(int64_t n, int64_t d) {
    return std::to_string(n) + " x " + std::to_string(d);
}

// ---- train ------------------------------------------------------------------------------

int run_train(const Args& args) {
    const auto& pos = args.positional();
    if (pos.size() > 1) {
        throw args.usage("train takes at most one INPUT file, got '" + pos[0] + "' and '" + pos[1] + "'");
    }
    const bool builtin = pos.empty();
    const bool quiet = args.flag("--quiet");
    if (!builtin) {
        for (const char* f : {"--n", "--d", "--centers", "--data-seed"}) {
            if (args.has(f)) {
                throw args.usage(std::string(f) + " applies to the built-in dataset only (no INPUT)");
            }
        }
        if (!args.has("--k")) {
            throw args.usage("-k K (the number of centroids) is required");
        }
    }
    fk::dataset::MixtureParams mp;
    mp.n = args.integer("--n", mp.n, 1);
    mp.d = args.integer("--d", mp.d, 1, 1 << 20);
    mp.centers = args.integer("--centers", mp.centers, 1);
    mp.seed = uint64_t(args.integer("--data-seed", int64_t(mp.seed), 0));

    faiss::ClusteringParameters cp;
    const int64_t k = args.integer("--k", builtin ? mp.centers : 0, 1, std::numeric_limits<int>::max());
    cp.niter = int(args.integer("--niter", cp.niter, 0, std::numeric_limits<int>::max()));
    cp.nredo = int(args.integer("--nredo", cp.nredo, 1, std::numeric_limits<int>::max()));
    cp.seed = int(args.integer("--seed", cp.seed, std::numeric_limits<int>::min(),
                               std::numeric_limits<int>::max()));
    cp.max_points_per_centroid = int(args.integer("--max-points-per-centroid",
                                                  cp.max_points_per_centroid, 1,
                                                  std::numeric_limits<int>::max()));
    cp.min_points_per_centroid = int(args.integer("--min-points-per-centroid",
                                                  cp.min_points_per_centroid, 0,
                                                  std::numeric_limits<int>::max()));
    cp.spherical = args.flag("--spherical");
    cp.int_centroids = args.flag("--int-centroids");
    cp.verbose = !quiet;
    const faiss::MetricType metric = metric_from(args);
    const fk::Options options = options_from(args);
    const std::string out_path = args.str("--output");
    const std::string labels_path = args.str("--labels");
    const std::string weights_path = args.str("--weights");
    if (args.has("--output")) {
        check_output(args, out_path, "-o", {fio::Format::Npy, fio::Format::Fvecs}, ".npy or .fvecs");
    }
    if (args.has("--labels")) {
        check_output(args, labels_path, "--labels", {fio::Format::Npy, fio::Format::Ivecs},
                     ".npy or .ivecs");
    }
    const fk::Backend backend = resolve(options);

    // data
    auto t_start = std::chrono::steady_clock::now();
    fio::FloatMatrix data;
    fk::dataset::Mixture mixture;
    std::string source;
    if (builtin) {
        if (!quiet) {
            std::printf("generating the built-in dataset: %lld points, d=%lld, %lld Gaussian centres "
                        "(centre coordinates N(0, 1), noise N(0, %.2f^2))\n",
                        (long long)mp.n, (long long)mp.d, (long long)mp.centers, double(mp.noise_std));
            std::fflush(stdout);
        }
        try {
            mixture = fk::dataset::make_mixture(mp);
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
        fio::FloatMatrix w = fio::read_vectors(weights_path, /*allow_1d=*/true);
        if (w.d != 1 || w.n != n) {
            throw RunError(weights_path + ": expected " + std::to_string(n) +
                           " weights (one per point of " + source + "), got " + shape_text(w.n, w.d));
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

    // k-means
    fk::Clustering clus(int(d), int(k), cp, options);
    std::unique_ptr<faiss::Index> index;
    if (metric == faiss::METRIC_INNER_PRODUCT) {
        index.reset(new faiss::IndexFlatIP(d));
    } else {
        index.reset(new faiss::IndexFlatL2(d));
    }
    auto t_train0 = std::chrono::steady_clock::now();
    clus.train(n, data.data.data(), *index, weights.empty() ? nullptr : weights.data());
    const double t_train = seconds_since(t_train0);
    if (clus.centroids.size() != size_t(k * d)) {
        throw RunError("training produced " + std::to_string(clus.centroids.size()) +
                       " centroid values, expected " + std::to_string(k * d));
    }

    std::vector<std::string> wrote;
    if (!out_path.empty()) {
        fio::write_vectors(out_path, clus.centroids.data(), k, d);
        wrote.push_back(out_path + " (" + shape_text(k, d) + " float32 centroids)");
    }
    double t_labels = 0;
    if (!labels_path.empty()) {
        auto t0 = std::chrono::steady_clock::now();
        std::vector<int64_t> labels;
        std::vector<float> dist;
        assign_all(data.data.data(), n, d, clus.centroids.data(), k, metric, options, quiet, labels, dist);
        fio::write_ints(labels_path, labels.data(), n, 1, /*as_1d=*/true);
        t_labels = seconds_since(t0);
        wrote.push_back(labels_path + " (" + std::to_string(n) + " labels)");
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
                (long long)d, (long long)k, fk::backend_name(backend),
                metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2", source.c_str());
    std::printf("  iterations: %lld%s, final objective: %.6g, imbalance: %.3f\n", (long long)iters,
                cp.nredo > 1 ? (" (" + std::to_string(cp.nredo) + " redos)").c_str() : "", obj,
                st.empty() ? 1.0 : st.back().imbalance_factor);
    char labels_time[64] = "";
    if (!labels_path.empty()) {
        std::snprintf(labels_time, sizeof(labels_time), ", labels %.2f s", t_labels);
    }
    std::printf("  time: total %.2f s (data %.2f s, k-means %.2f s%s), %.2f ms/iteration\n", total,
                t_read, t_train, labels_time, iters > 0 ? 1000.0 * t_train / double(iters) : 0.0);
    if (builtin) {
        fk::dataset::Recovery r = fk::dataset::evaluate_recovery(mixture, clus.centroids.data(), k);
        std::printf("  built-in dataset: recovered %lld / %lld true centres (%.1f%%: nearest centroid "
                    "within %.3g, a quarter of the smallest gap between centres)\n",
                    (long long)r.matched, (long long)r.centers, 100.0 * double(r.matched) / double(r.centers),
                    r.match_radius);
        std::printf("  built-in dataset: distance from a true centre to its nearest centroid: mean %.4g, "
                    "max %.4g (points lie about %.3g from their centre)\n",
                    r.mean_distance, r.max_distance, r.noise_radius);
        if (r.matched < r.centers && k >= r.centers) {
            std::printf("  (Lloyd's algorithm stops at a local optimum: clusters that received no initial "
                        "centroid end up shared; --init kmeans++ or --nredo help)\n");
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

// ---- assign -----------------------------------------------------------------------------

int run_assign(const Args& args) {
    const auto& pos = args.positional();
    if (pos.size() != 1) {
        throw args.usage(pos.empty() ? "assign needs an INPUT file"
                                     : "assign takes one INPUT file, got " + std::to_string(pos.size()));
    }
    if (!args.has("--centroids")) {
        throw args.usage("--centroids FILE is required");
    }
    if (!args.has("--output")) {
        throw args.usage("-o LABELS (.npy or .ivecs) is required");
    }
    const bool quiet = args.flag("--quiet");
    const std::string out_path = args.str("--output");
    const std::string dist_path = args.str("--distances");
    check_output(args, out_path, "-o", {fio::Format::Npy, fio::Format::Ivecs}, ".npy or .ivecs");
    if (args.has("--distances")) {
        check_output(args, dist_path, "--distances", {fio::Format::Npy, fio::Format::Fvecs},
                     ".npy or .fvecs");
    }
    const faiss::MetricType metric = metric_from(args);
    const fk::Options options = options_from(args);
    const fk::Backend backend = resolve(options);

    auto t0 = std::chrono::steady_clock::now();
    const std::string cpath = args.str("--centroids");
    fio::FloatMatrix c = load_points(cpath, true);
    fio::FloatMatrix x = load_points(pos[0], quiet);
    if (c.d != x.d) {
        throw RunError("dimension mismatch: centroids " + cpath + " have d = " + std::to_string(c.d) +
                       ", points " + pos[0] + " have d = " + std::to_string(x.d));
    }
    auto t1 = std::chrono::steady_clock::now();
    std::vector<int64_t> labels;
    std::vector<float> dist;
    assign_all(x.data.data(), x.n, x.d, c.data.data(), c.n, metric, options, quiet, labels, dist);
    const double t_assign = seconds_since(t1);
    fio::write_ints(out_path, labels.data(), x.n, 1, /*as_1d=*/true);
    if (!dist_path.empty()) {
        fio::write_vectors(dist_path, dist.data(), x.n, 1, /*as_1d=*/true);
    }
    std::printf("flashkmeans assign: n=%lld d=%lld k=%lld backend=%s metric=%s\n", (long long)x.n,
                (long long)x.d, (long long)c.n, fk::backend_name(backend),
                metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2");
    std::printf("  time: total %.2f s (assignment %.2f s, %.1f Mpoints/s)\n", seconds_since(t0), t_assign,
                t_assign > 0 ? double(x.n) / t_assign / 1e6 : 0.0);
    std::printf("  wrote %s (%lld labels)\n", out_path.c_str(), (long long)x.n);
    if (!dist_path.empty()) {
        std::printf("  wrote %s (%lld %s)\n", dist_path.c_str(), (long long)x.n,
                    metric == faiss::METRIC_INNER_PRODUCT ? "inner products" : "squared distances");
    }
    return 0;
}

// ---- ivf --------------------------------------------------------------------------------

/// faiss::write_index to a temporary file renamed into place once closed.
void write_index_file(const faiss::Index& index, const std::string& path) {
    const std::string tmp = path + ".tmp." + std::to_string(long(::getpid()));
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
        throw RunError(path + ": cannot create: " + std::strerror(errno));
    }
    try {
        faiss::write_index(&index, f);
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    bool bad = std::fflush(f) != 0 || std::ferror(f);
    bad = std::fclose(f) != 0 || bad;
    if (bad) {
        std::remove(tmp.c_str());
        throw RunError(path + ": write error: " + std::strerror(errno));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw RunError(path + ": cannot rename the finished file into place: " + std::strerror(errno));
    }
}

int run_ivf(const Args& args) {
    const auto& pos = args.positional();
    if (pos.size() != 1) {
        throw args.usage(pos.empty() ? "ivf needs an INPUT file"
                                     : "ivf takes one INPUT file, got " + std::to_string(pos.size()));
    }
    if (!args.has("--factory")) {
        throw args.usage("--factory STRING is required, e.g. --factory \"IVF1024,PQ16\"");
    }
    if (!args.has("--output")) {
        throw args.usage("-o INDEX (the output file) is required");
    }
    const bool quiet = args.flag("--quiet");
    const std::string factory = args.str("--factory");
    const std::string out_path = args.str("--output");
    check_output(args, out_path, "-o", {}, "");
    const faiss::MetricType metric = metric_from(args);
    const fk::Options options = options_from(args);
    const int64_t niter = args.integer("--niter", -1, 0, std::numeric_limits<int>::max());
    const int64_t seed = args.integer("--seed", std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
    const int64_t maxpts = args.integer("--max-points-per-centroid", -1, 1, std::numeric_limits<int>::max());
    const fk::Backend backend = resolve(options);

    auto t0 = std::chrono::steady_clock::now();
    fio::FloatMatrix x = load_points(pos[0], quiet);
    std::unique_ptr<faiss::Index> index;
    try {
        index.reset(faiss::index_factory(int(x.d), factory.c_str(), metric));
    } catch (const faiss::FaissException& e) {
        throw RunError("index_factory(d=" + std::to_string(x.d) + ", \"" + factory +
                       "\") failed: " + clean_message(e.what()));
    }
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
    if (!ivf) {
        throw RunError("--factory \"" + factory + "\" has no IVF level (e.g. \"IVF1024,PQ16\"): "
                       "flashkmeans trains IVF coarse quantizers");
    }
    if (x.n < int64_t(ivf->nlist)) {
        throw RunError(pos[0] + ": " + std::to_string(x.n) + " vectors are too few to train " +
                       std::to_string(ivf->nlist) + " IVF lists");
    }
    index->verbose = !quiet;
    ivf->verbose = !quiet;
    ivf->cp.verbose = !quiet;
    if (niter >= 0) {
        ivf->cp.niter = int(niter);
    }
    if (seed != std::numeric_limits<int64_t>::min()) {
        ivf->cp.seed = int(seed);
    }
    if (maxpts > 0) {
        ivf->cp.max_points_per_centroid = int(maxpts);
    }
    auto t1 = std::chrono::steady_clock::now();
    fk::train_ivf(*index, x.n, x.data.data(), options);
    const double t_train = seconds_since(t1);
    double t_add = 0;
    if (args.flag("--add")) {
        auto t2 = std::chrono::steady_clock::now();
        if (!quiet) {
            std::printf("adding %lld vectors\n", (long long)x.n);
            std::fflush(stdout);
        }
        index->add(x.n, x.data.data());
        t_add = seconds_since(t2);
    }
    write_index_file(*index, out_path);
    std::error_code ec;
    auto size = fs::file_size(out_path, ec);
    std::printf("flashkmeans ivf: \"%s\" n=%lld d=%lld nlist=%lld backend=%s metric=%s\n", factory.c_str(),
                (long long)x.n, (long long)x.d, (long long)ivf->nlist, fk::backend_name(backend),
                metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2");
    std::printf("  time: total %.2f s (train %.2f s, add %.2f s); ntotal=%lld\n", seconds_since(t0), t_train,
                t_add, (long long)index->ntotal);
    std::printf("  wrote %s (%lld bytes)\n", out_path.c_str(), ec ? -1LL : (long long)size);
    return 0;
}

// ---- main -------------------------------------------------------------------------------

int dispatch(int argc, char** argv) {
    const cli::CommandLine cl = cli::parse_command_line(argc, argv);
    switch (cl.action) {
        case cli::CommandLine::Action::NoArguments:
            cli::print_main_help(stderr);
            return kExitUsage;
        case cli::CommandLine::Action::MainHelp:
            cli::print_main_help(stdout);
            return 0;
        case cli::CommandLine::Action::CommandHelp:
            cli::print_command_help(*cl.command, stdout);
            return 0;
        case cli::CommandLine::Action::Version:
            print_version();
            return 0;
        case cli::CommandLine::Action::Run:
            break;
    }
    if (cl.command == &cli::kTrain) {
        return run_train(*cl.args);
    }
    if (cl.command == &cli::kAssign) {
        return run_assign(*cl.args);
    }
    return run_ivf(*cl.args);
}

void error_line(const std::string& msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "flashkmeans: error: %s\n", msg.c_str());
}

} // namespace

int main(int argc, char** argv) {
    install_interrupt_handler();
    try {
        return dispatch(argc, argv);
    } catch (const UsageError& e) {
        std::string see = e.command.empty() ? "flashkmeans --help" : "flashkmeans " + e.command + " --help";
        error_line(clean_message(e.what()) + " (see '" + see + "')");
        return kExitUsage;
    } catch (const faiss::FaissException& e) {
        if (g_interrupted.load()) {
            error_line("interrupted");
            return kExitInterrupted;
        }
        error_line(clean_message(e.what()));
    } catch (const std::bad_alloc&) {
        error_line("out of memory (try a smaller input, or a smaller --max-points-per-centroid)");
    } catch (const std::exception& e) {
        error_line(clean_message(e.what()));
    } catch (...) {
        error_line("unknown error");
    }
    return kExitRuntime;
}
