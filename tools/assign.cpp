/**
 * flashkmeans assign INPUT --centroids C -o LABELS: the nearest centroid (or
 * largest inner product) of every point, and optionally its distance.
 */
#include "cli_common.h"
#include "commands.h"
#include "vector_io.h"

#include <flashkmeans/Options.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cli {

int run_assign(const Args& args) {
    const auto& pos = args.positional();
    if (pos.size() != 1) {
        throw args.usage(pos.empty() ? "assign needs an INPUT file"
                                     : "assign takes one INPUT file, got " +
                                               std::to_string(pos.size()));
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
    check_output(args, out_path, "-o", {io::Format::Npy, io::Format::Ivecs}, ".npy or .ivecs");
    if (args.has("--distances")) {
        check_output(args, dist_path, "--distances", {io::Format::Npy, io::Format::Fvecs},
                     ".npy or .fvecs");
    }
    const faiss::MetricType metric = metric_from(args);
    const Options options = options_from(args);
    const Backend backend = resolve(options);

    auto t0 = std::chrono::steady_clock::now();
    const std::string cpath = args.str("--centroids");
    io::FloatMatrix c = load_points(cpath, true);
    io::FloatMatrix x = load_points(pos[0], quiet);
    if (c.d != x.d) {
        throw RunError("dimension mismatch: centroids " + cpath +
                       " have d = " + std::to_string(c.d) + ", points " + pos[0] +
                       " have d = " + std::to_string(x.d));
    }
    auto t1 = std::chrono::steady_clock::now();
    std::vector<int64_t> labels;
    std::vector<float> dist;
    assign_all(x.values(), x.n, x.d, c.values(), c.n, metric, options, quiet, labels, dist);
    const double t_assign = seconds_since(t1);
    io::write_ints(out_path, labels.data(), x.n, 1, /*as_1d=*/true);
    if (!dist_path.empty()) {
        io::write_vectors(dist_path, dist.data(), x.n, 1, /*as_1d=*/true);
    }
    std::printf("flashkmeans assign: n=%lld d=%lld k=%lld backend=%s metric=%s\n", (long long)x.n,
                (long long)x.d, (long long)c.n, backend_name(backend),
                metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2");
    std::printf("  time: total %.2f s (assignment %.2f s, %.1f Mpoints/s)\n", seconds_since(t0),
                t_assign, t_assign > 0 ? double(x.n) / t_assign / 1e6 : 0.0);
    std::printf("  wrote %s (%lld labels)\n", out_path.c_str(), (long long)x.n);
    if (!dist_path.empty()) {
        std::printf("  wrote %s (%lld %s)\n", dist_path.c_str(), (long long)x.n,
                    metric == faiss::METRIC_INNER_PRODUCT ? "inner products" : "squared distances");
    }
    return 0;
}

} // namespace cli
} // namespace flashkmeans
