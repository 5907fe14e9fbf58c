// The steps the flashkmeans subcommands share (see cli_common.h).
#include "cli_common.h"

#include "ranks.h"

#include <flashkmeans/AssignIndex.h>

#include <faiss/Index.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <regex>
#include <system_error>

namespace fs = std::filesystem;

namespace flashkmeans {
namespace cli {

namespace {

/// Runs a parse_* helper of Options.h, turning its exception into a usage error.
template <typename F>
auto parse_choice(const Args& args, F&& parse, const std::string& value) -> decltype(parse(value)) {
    try {
        return parse(value);
    } catch (const faiss::FaissException& e) {
        throw args.usage(clean_message(e.what()));
    }
}

} // namespace

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

Options options_from(const Args& args) {
    Options o;
    o.backend = parse_choice(args, parse_backend, args.str("--backend", "auto"));
    o.device = int(args.integer("--device", 0, 0, 1 << 20));
    o.dtype = parse_choice(args, parse_dtype, args.str("--dtype", "float32"));
    o.precision = parse_choice(args, parse_precision, args.str("--precision", "exact"));
    if (args.has("--init")) {
        o.init = parse_choice(args, parse_init, args.str("--init"));
    }
    if (args.has("--memory-budget")) {
        o.memory_budget = parse_bytes(args, "--memory-budget");
    }
    o.cpu_kernel = parse_choice(args, parse_cpu_kernel, args.str("--cpu-kernel", "auto"));
    return o;
}

size_t parse_bytes(const Args& args, const char* flag) {
    const std::string v = args.str(flag);
    size_t pos = 0;
    while (pos < v.size() && std::isdigit((unsigned char)v[pos])) {
        pos++;
    }
    int shift = -1;
    const std::string suffix = v.substr(pos);
    if (suffix.empty() || suffix == "B") {
        shift = 0;
    } else if (suffix.size() <= 3 &&
               (suffix.size() == 1 || suffix.substr(1) == "iB" || suffix.substr(1) == "B")) {
        const char* units = "KMGT";
        const char* u = std::strchr(units, std::toupper((unsigned char)suffix[0]));
        shift = u != nullptr && *u != 0 ? 10 * int(u - units + 1) : -1;
    }
    if (pos == 0 || pos > 15 || shift < 0) {
        throw args.usage(std::string(flag) +
                         " expects a number of bytes with an optional K, M, G "
                         "or T suffix (powers of 1024), got '" +
                         v + "'");
    }
    const unsigned long long n = std::stoull(v.substr(0, pos));
    if (shift > 0 && n > (~0ULL >> shift)) {
        throw args.usage(std::string(flag) + " is too large: '" + v + "'");
    }
    return size_t(n << shift);
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

Backend resolve(const Options& o) {
    Backend b;
    try {
        b = resolve_backend(o.backend);
    } catch (const faiss::FaissException& e) {
        throw RunError(clean_message(e.what()));
    }
    if (b != Backend::CUDA && o.dtype != DType::Float32) {
        throw RunError(std::string("--dtype ") + dtype_name(o.dtype) +
                       " needs the CUDA backend; this run uses " + backend_name(b) +
                       " (use --dtype float32)");
    }
    return b;
}

void check_output(const Args& args, const std::string& path, const char* flag,
                  std::initializer_list<io::Format> allowed, const char* allowed_text) {
    if (allowed.size() > 0) {
        io::Format f;
        try {
            f = io::format_of(path);
        } catch (const io::IoError&) {
            throw args.usage(std::string(flag) + " " + path + ": expected a " + allowed_text +
                             " file name");
        }
        if (std::find(allowed.begin(), allowed.end(), f) == allowed.end()) {
            throw args.usage(std::string(flag) + " " + path + ": expected a " + allowed_text +
                             " file name");
        }
    }
    fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
        throw RunError(path + ": cannot create: directory '" + parent.string() +
                       "' does not exist");
    }
}

io::FloatMatrix load_points(const std::string& path, bool quiet) {
    auto t0 = std::chrono::steady_clock::now();
    if (!quiet) {
        std::printf("reading %s\n", path.c_str());
        std::fflush(stdout);
    }
    io::FloatMatrix m = io::map_vectors(path);
    // under mpirun, the rows this rank trains on: a mapped file's other
    // rows are never touched here
    for (int64_t i = ranks().begin(m.n); i < ranks().end(m.n); i++) {
        const float* row = m.values() + i * m.d;
        for (int64_t j = 0; j < m.d; j++) {
            if (!std::isfinite(row[j])) {
                throw RunError(path + ": vector " + std::to_string(i) +
                               " has a non-finite value (" + (std::isnan(row[j]) ? "NaN" : "Inf") +
                               ") in component " + std::to_string(j));
            }
        }
    }
    if (!quiet) {
        std::printf("read %s: %lld vectors of dimension %lld in %.2f s%s\n", path.c_str(),
                    (long long)m.n, (long long)m.d, seconds_since(t0),
                    m.mapped ? " (memory-mapped)" : "");
        std::fflush(stdout);
    }
    return m;
}

void assign_all(const float* x, int64_t n, int64_t d, const float* centroids, int64_t k,
                faiss::MetricType metric, const Options& options, bool quiet,
                std::vector<int64_t>& labels, std::vector<float>& distances) {
    std::unique_ptr<faiss::Index> index;
    if (metric == faiss::METRIC_INNER_PRODUCT) {
        index.reset(new AssignIndexIP(d, options));
    } else {
        index.reset(new AssignIndex(d, options));
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
            std::printf("  assigned %lld / %lld points (%.1f s)\r", (long long)(i + nb),
                        (long long)n, seconds_since(t0));
            std::fflush(stdout);
        }
    }
    if (show) {
        std::printf("\n");
    }
}

} // namespace cli
} // namespace flashkmeans
