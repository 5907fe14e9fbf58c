// train_ivf: FAISS's IndexIVF::train with the coarse k-means done by
// flashkmeans. Once the quantizer holds nlist centroids, FAISS's own train()
// skips its clustering ("does not need training") and trains the encoder.
#include <flashkmeans/ivf.h>

#include <flashkmeans/Clustering.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>

#include <memory>
#include <vector>

namespace flashkmeans {

namespace {

void train_ivf_level(faiss::IndexIVF& ivf, int64_t n, const float* x, const Options& options) {
    FAISS_THROW_IF_NOT_MSG(!ivf.is_trained, "train_ivf: the IVF index is already trained");
    faiss::Index* q = ivf.quantizer;
    FAISS_THROW_IF_NOT_MSG(q != nullptr, "train_ivf: the IVF index has no quantizer");
    FAISS_THROW_IF_NOT_FMT(ivf.quantizer_trains_alone != 1,
                           "train_ivf: quantizer_trains_alone=1 (%s) trains itself; use "
                           "index.train() for this index",
                           "e.g. a multi-index quantizer");
    FAISS_THROW_IF_NOT_FMT(n >= int64_t(ivf.nlist),
                           "train_ivf: %ld training points for nlist=%zd lists", long(n),
                           ivf.nlist);

    Clustering clus(ivf.d, ivf.nlist, ivf.cp, options);
    clus.verbose = ivf.verbose;
    if (dynamic_cast<faiss::IndexFlat*>(q) != nullptr && q->d == ivf.d) {
        // a flat quantizer receives the centroids directly, as in FAISS
        clus.train(n, x, *q);
    } else {
        // other quantizers (HNSW, ...) are trained and filled from the centroids
        std::unique_ptr<faiss::Index> flat(ivf.metric_type == faiss::METRIC_INNER_PRODUCT
                                                   ? static_cast<faiss::Index*>(new faiss::IndexFlatIP(ivf.d))
                                                   : new faiss::IndexFlatL2(ivf.d));
        clus.train(n, x, *flat);
        q->reset();
        q->train(ivf.nlist, clus.centroids.data());
        q->add(ivf.nlist, clus.centroids.data());
    }
    q->is_trained = true;
    // FAISS now sees a filled quantizer and trains only the encoder.
    ivf.train(n, x);
}

} // namespace

void train_ivf(faiss::Index& index, int64_t n, const float* x, const Options& options) {
    FAISS_THROW_IF_NOT_MSG(!options.comm || options.comm->size() == 1,
                           "train_ivf runs in one process (FAISS trains the encoder on the "
                           "local points): Options::comm with several ranks is for "
                           "Clustering::train");
    FAISS_THROW_IF_NOT_FMT(n > 0, "train_ivf: need n > 0 training points, got %ld", long(n));
    FAISS_THROW_IF_NOT_MSG(x != nullptr, "train_ivf: x is null");
    for (int64_t i = 0; i < n * index.d; i++) {
        FAISS_THROW_IF_NOT_MSG(std::isfinite(x[i]), "train_ivf: input contains NaN's or Inf's");
    }
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(&index)) {
        train_ivf_level(*ivf, n, x, options);
        return;
    }
    auto* pt = dynamic_cast<faiss::IndexPreTransform*>(&index);
    FAISS_THROW_IF_NOT_MSG(pt != nullptr,
                           "train_ivf: the index is neither an IndexIVF nor an IndexPreTransform "
                           "around one");
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(pt->index);
    FAISS_THROW_IF_NOT_MSG(ivf != nullptr,
                           "train_ivf: the IndexPreTransform does not wrap an IndexIVF");
    FAISS_THROW_IF_NOT_MSG(!pt->is_trained, "train_ivf: the index is already trained");
    // Train each transform on the output of the previous one, as
    // IndexPreTransform::train does, then the IVF on the transformed points.
    const float* xt = x;
    std::unique_ptr<const float[]> owned;
    for (auto* vt : pt->chain) {
        if (!vt->is_trained) {
            vt->train(n, xt);
        }
        const float* next = vt->apply(n, xt);
        owned.reset(next); // frees the previous stage's output
        xt = next;
    }
    train_ivf_level(*ivf, n, xt, options);
    pt->is_trained = true;
}

} // namespace flashkmeans
