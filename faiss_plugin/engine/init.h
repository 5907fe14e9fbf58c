// Centroid initialisation for the rows the caller did not provide.
#pragma once

#include "lloyd.h"

#include <flashkmeans/Options.h>

#include <vector>

namespace flashkmeans {

/** perm[0..m) of faiss::rand_perm(perm, n, seed), bit for bit, in O(m) time
 * and memory: the Fisher-Yates shuffle fixes perm[i] at its step i, so only
 * the first m steps run, with the displaced entries kept in a hash map. FAISS
 * subsamples and seeds from this prefix; the whole permutation (O(n)) made
 * those steps cost more than the clustering of a small batch. */
std::vector<int64_t> rand_perm_prefix(int64_t n, int64_t m, int64_t seed);

/** Fills rows [n_given, k) of `centroids` (host, k x d) for problem `b`.
 * Random: rows perm[i] of FAISS's rand_perm(n, seed) (bit-identical to
 * faiss::Clustering). KMeansPP: D^2 sampling continuing from the given
 * rows, run on the backend (kernels::kmeanspp_init) with one uniform draw
 * per new row from std::mt19937_64(seed). */
void initialize_centroids(Lloyd& lloyd, Init init, int64_t seed, size_t n_given, size_t k,
                          size_t d, float* centroids, int64_t b = 0);

} // namespace flashkmeans
