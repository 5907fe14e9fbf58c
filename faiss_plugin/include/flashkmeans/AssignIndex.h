/**
 * flashkmeans::AssignIndex: a faiss::IndexFlatL2 whose 1-nearest-neighbour
 * search runs FlashAssign. Set it as IndexIVF::clustering_index, or pass it to
 * a plain faiss::Clustering, and FAISS's own k-means loop uses our kernel with
 * FAISS unchanged. Searches with k > 1 fall back to IndexFlatL2.
 */
#pragma once

#include <flashkmeans/Options.h>

#include <faiss/IndexFlat.h>

#include <cstdint>
#include <memory>

namespace flashkmeans {

struct AssignBackendState; // device copies of the centroids (CUDA backend)

struct AssignIndex : faiss::IndexFlatL2 {
    Options options;

    explicit AssignIndex(int64_t d, const Options& options = Options());
    ~AssignIndex() override;

    void add(int64_t n, const float* x) override;
    void reset() override;
    void search(
            int64_t n,
            const float* x,
            int64_t k,
            float* distances,
            int64_t* labels,
            const faiss::SearchParameters* params = nullptr) const override;

   private:
    mutable std::unique_ptr<AssignBackendState> state_;
};

/// The inner-product variant: search(k = 1) returns the largest x.c.
struct AssignIndexIP : faiss::IndexFlatIP {
    Options options;

    explicit AssignIndexIP(int64_t d, const Options& options = Options());
    ~AssignIndexIP() override;

    void add(int64_t n, const float* x) override;
    void reset() override;
    void search(
            int64_t n,
            const float* x,
            int64_t k,
            float* distances,
            int64_t* labels,
            const faiss::SearchParameters* params = nullptr) const override;

   private:
    mutable std::unique_ptr<AssignBackendState> state_;
};

} // namespace flashkmeans
