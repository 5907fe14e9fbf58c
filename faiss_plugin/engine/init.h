// Centroid initialisation for the rows the caller did not provide.
#pragma once

#include "lloyd.h"

#include <flashkmeans/Options.h>

#include <vector>

namespace flashkmeans {

/** perm[0..m) of faiss::rand_perm(perm, n, seed), bit for bit: the
 * Fisher-Yates shuffle fixes perm[i] at its step i, so only the first m
 * steps run. The displaced entries live in a hash map when m is small beside
 * n (O(m) time and memory: seeding k rows of a large batch), else in a dense
 * array of n (a hash map costs ~20x more per step: subsampling k x 256 rows). */
std::vector<int64_t> rand_perm_prefix(int64_t n, int64_t m, int64_t seed);

/// The uniforms in [0, 1) of k-means++ seeding, one per new row, from
/// std::mt19937_64(seed): the same on every rank, so ranks need not share them.
std::vector<double> kmeanspp_draws(int64_t seed, size_t count);

/** Fills rows [n_given, k) of `centroids` (host, k x d) for problem `b`.
 * Random: rows perm[i] of FAISS's rand_perm(n, seed) (bit-identical to
 * faiss::Clustering). KMeansPP: D^2 sampling continuing from the given
 * rows, run on the backend (kernels::kmeanspp_init) with one uniform draw
 * per new row from std::mt19937_64(seed). */
void initialize_centroids(Lloyd& lloyd, Init init, int64_t seed, size_t n_given, size_t k,
                          size_t d, float* centroids, int64_t b = 0);

} // namespace flashkmeans
