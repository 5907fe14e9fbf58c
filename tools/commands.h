/**
 * The flashkmeans subcommands, one file each (train.cpp, assign.cpp, ivf.cpp).
 * Each runs its parsed command line, prints its summary on stdout and returns
 * the exit status; a failure is thrown: UsageError for a bad command line
 * (exit status 2), RunError or any other exception for the rest (1).
 */
#pragma once

#include "cli_args.h"

namespace flashkmeans {
namespace cli {

/// k-means on a file, or on the built-in dataset (train.cpp).
int run_train(const Args& args);
/// Nearest centroid of every point of a file (assign.cpp).
int run_assign(const Args& args);
/// Trains (and fills) a FAISS IVF index, its coarse quantizer by flashkmeans (ivf.cpp).
int run_ivf(const Args& args);

} // namespace cli
} // namespace flashkmeans
