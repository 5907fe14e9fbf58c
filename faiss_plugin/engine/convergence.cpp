#include "convergence.h"

#include "shard.h"

#include <faiss/impl/FaissAssert.h>

namespace flashkmeans {

Convergence::Convergence(double tol, int64_t k, int64_t d)
        : tol_(tol), centroids_(size_t(k * d)), next_(size_t(k * d)) {
    FAISS_THROW_IF_NOT_FMT(tol >= 0, "convergence tolerance must be >= 0, got %g", tol);
}

void Convergence::start(const Lloyd& lloyd) {
    lloyd.get_centroids(centroids_.data());
    have_labels_ = false;
    shift_ = 0;
    stop_ = Stop::Iterations;
}

bool Convergence::converged(const Lloyd& lloyd, Communicator& comm) {
    lloyd.get_centroids(next_.data());
    double shift = 0;
    for (size_t i = 0; i < next_.size(); i++) {
        const double delta = double(next_[i]) - double(centroids_[i]);
        shift += delta * delta;
    }
    shift_ = shift;
    centroids_.swap(next_);

    std::vector<int32_t> labels = lloyd.labels();
    // n == k has no assignment to compare (the points are the centroids); a
    // rank without points has none either, and leaves the others to decide
    bool unchanged = have_labels_ && !labels.empty() && labels == labels_;
    if (comm.size() > 1) {
        const double assigned = sum_over_ranks(comm, labels.empty() ? 0 : 1);
        const double changed = sum_over_ranks(comm, labels.empty() || unchanged ? 0 : 1);
        unchanged = have_labels_ && assigned > 0 && changed == 0;
    }
    labels_.swap(labels);
    have_labels_ = true;
    // scikit-learn checks strict convergence first
    if (unchanged) {
        stop_ = Stop::Unchanged;
    } else if (shift <= tol_) {
        stop_ = Stop::Tolerance;
    }
    return stop_ != Stop::Iterations;
}

} // namespace flashkmeans
