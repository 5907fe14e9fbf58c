/**
 * The steps the flashkmeans subcommands (train.cpp, assign.cpp, ivf.cpp) share:
 * reading the library options, the metric and the backend from the command
 * line, checking outputs before any work, reading points, and assigning them
 * to centroids; and the error every other failure of a run throws.
 */
#pragma once

#include "cli_args.h"
#include "vector_io.h"

#include <flashkmeans/Options.h>

#include <faiss/MetricType.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cli {

/// Any other failure of a run, exit status 1.
struct RunError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// FAISS messages read "Error in <function> at <file>:<line>: Error: '<check>'
/// failed: <message>"; the user needs only the message, on one line.
std::string clean_message(std::string msg);

double seconds_since(std::chrono::steady_clock::time_point t0);

/// --backend, --device, --dtype, --precision and --init; a bad name is a usage error.
Options options_from(const Args& args);
/// A byte count: digits with an optional K, M, G or T suffix (powers of 1024).
size_t parse_bytes(const Args& args, const char* flag);

/// --metric: l2 (default) or ip.
faiss::MetricType metric_from(const Args& args);

/// The backend a run will use; a CUDA request on a machine without one fails here,
/// before any data is read.
Backend resolve(const Options& o);

/** Checks before any work that an output can be written: a known extension
 * among `allowed` (a usage error otherwise) and an existing directory. */
void check_output(const Args& args, const std::string& path, const char* flag,
                  std::initializer_list<io::Format> allowed, const char* allowed_text);

/** Points from a file, with a non-finite check that names the file and the
 * vector. A C-order float32 .npy is mapped, not read (io::map_vectors): the
 * library uses its rows in place on the CPU and uploads them from the
 * mapping on CUDA. Under mpirun the check covers this rank's rows only
 * (ranks.h), so each rank touches only its share of a mapped file. */
io::FloatMatrix load_points(const std::string& path, bool quiet);

/** Nearest centroid (or largest inner product) of each of the n points, with
 * the flashkmeans assignment index, in blocks so progress can be shown and
 * Ctrl-C honoured on large inputs. */
void assign_all(const float* x, int64_t n, int64_t d, const float* centroids, int64_t k,
                faiss::MetricType metric, const Options& options, bool quiet,
                std::vector<int64_t>& labels, std::vector<float>& distances);

} // namespace cli
} // namespace flashkmeans
