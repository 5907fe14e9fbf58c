// Centroid initialisation for the rows the caller did not provide.
#pragma once

#include "lloyd.h"

#include <flashkmeans/Options.h>

namespace flashkmeans {

/** Fills rows [n_given, k) of `centroids` (host, k x d) for problem `b`.
 * Random: rows perm[i] of FAISS's rand_perm(n, seed) (bit-identical to
 * faiss::Clustering). KMeansPP: D^2 sampling continuing from the given
 * rows, run on the backend (kernels::kmeanspp_init) with one uniform draw
 * per new row from std::mt19937_64(seed). */
void initialize_centroids(Lloyd& lloyd, Init init, int64_t seed, size_t n_given, size_t k,
                          size_t d, float* centroids, int64_t b = 0);

} // namespace flashkmeans
