/**
 * flashkmeans ivf INPUT --factory F -o INDEX: a FAISS index from
 * faiss::index_factory whose IVF coarse quantizer flashkmeans trains
 * (flashkmeans::train_ivf), optionally filled with INPUT, written to a file.
 */
#include "cli_common.h"
#include "commands.h"
#include "vector_io.h"

#include <flashkmeans/Options.h>
#include <flashkmeans/ivf.h>

#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <system_error>

#include <unistd.h>

namespace fs = std::filesystem;

namespace flashkmeans {
namespace cli {

namespace {

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
        throw RunError(path +
                       ": cannot rename the finished file into place: " + std::strerror(errno));
    }
}

} // namespace

int run_ivf(const Args& args) {
    const auto& pos = args.positional();
    if (pos.size() != 1) {
        throw args.usage(pos.empty()
                                 ? "ivf needs an INPUT file"
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
    const Options options = options_from(args);
    const int64_t niter = args.integer("--niter", -1, 0, std::numeric_limits<int>::max());
    const int64_t seed =
            args.integer("--seed", std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
    const int64_t maxpts =
            args.integer("--max-points-per-centroid", -1, 1, std::numeric_limits<int>::max());
    const Backend backend = resolve(options);

    auto t0 = std::chrono::steady_clock::now();
    io::FloatMatrix x = load_points(pos[0], quiet);
    std::unique_ptr<faiss::Index> index;
    try {
        index.reset(faiss::index_factory(int(x.d), factory.c_str(), metric));
    } catch (const faiss::FaissException& e) {
        throw RunError("index_factory(d=" + std::to_string(x.d) + ", \"" + factory +
                       "\") failed: " + clean_message(e.what()));
    }
    faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index.get());
    if (!ivf) {
        throw RunError("--factory \"" + factory +
                       "\" has no IVF level (e.g. \"IVF1024,PQ16\"): "
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
    train_ivf(*index, x.n, x.values(), options);
    const double t_train = seconds_since(t1);
    double t_add = 0;
    if (args.flag("--add")) {
        auto t2 = std::chrono::steady_clock::now();
        if (!quiet) {
            std::printf("adding %lld vectors\n", (long long)x.n);
            std::fflush(stdout);
        }
        index->add(x.n, x.values());
        t_add = seconds_since(t2);
    }
    write_index_file(*index, out_path);
    std::error_code ec;
    auto size = fs::file_size(out_path, ec);
    std::printf("flashkmeans ivf: \"%s\" n=%lld d=%lld nlist=%lld backend=%s metric=%s\n",
                factory.c_str(), (long long)x.n, (long long)x.d, (long long)ivf->nlist,
                backend_name(backend), metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2");
    std::printf("  time: total %.2f s (train %.2f s, add %.2f s); ntotal=%lld\n", seconds_since(t0),
                t_train, t_add, (long long)index->ntotal);
    std::printf("  wrote %s (%lld bytes)\n", out_path.c_str(), ec ? -1LL : (long long)size);
    return 0;
}

} // namespace cli
} // namespace flashkmeans
