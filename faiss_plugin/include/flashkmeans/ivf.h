/**
 * flashkmeans::train_ivf: train an IVF index's coarse quantizer with the
 * flashkmeans engine, then let FAISS train the rest (PQ/SQ encoder) as usual.
 */
#pragma once

#include <flashkmeans/Options.h>

#include <faiss/Clustering.h>
#include <faiss/Index.h>

#include <cstdint>

namespace flashkmeans {

/** Train `index` on n x d points. `index` is an IndexIVF (any encoder), or an
 * IndexPreTransform around one (e.g. "PCA64,IVF1024,PQ16"): the transforms are
 * trained first and the points passed through them. The coarse quantizer is
 * trained with flashkmeans using the IVF's own `cp` (ClusteringParameters),
 * filled with the centroids, and FAISS then trains the encoder. Throws
 * faiss::FaissException if no IVF index is found or the index is trained. */
void train_ivf(
        faiss::Index& index,
        int64_t n,
        const float* x,
        const Options& options = Options());

} // namespace flashkmeans
