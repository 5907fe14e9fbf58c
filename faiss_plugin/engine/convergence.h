// scikit-learn's stopping rule for one Lloyd run, applied between the engine's
// iterations (Clustering::train_typed's loop): the run has converged once an
// iteration leaves every label as the previous one did (strict convergence),
// or once it moves the centroids by at most `tol` (squared Frobenius norm of
// the change). The engine's iterate() knows nothing of it.
#pragma once

#include "lloyd.h"

#include <flashkmeans/Communicator.h>

#include <cstdint>
#include <vector>

namespace flashkmeans {

/// Why a run stopped.
enum class Stop {
    Iterations, ///< it ran every iteration asked for
    Unchanged,  ///< an iteration left every label unchanged
    Tolerance,  ///< an iteration moved the centroids by at most tol
};

class Convergence {
   public:
    /// tol: absolute bound on the squared Frobenius norm of one iteration's
    /// centroid change, in the squared units of the points (>= 0); k x d
    /// centroids of one problem.
    Convergence(double tol, int64_t k, int64_t d);

    /// Before a run's first iteration: the centroids it starts from.
    void start(const Lloyd& lloyd);
    /// After an iteration: measures the centroid change and compares the
    /// labels of the iteration's assignment with the previous iteration's
    /// (one copy of each to the host); true when the run has converged.
    /// Across ranks the labels are unchanged only where they are on every
    /// rank (one small exchange), so that every rank stops at the same
    /// iteration; the centroids, and so the shift, are the same everywhere.
    bool converged(const Lloyd& lloyd, Communicator& comm);

    /// The last iteration's squared Frobenius norm of the centroid change.
    double shift() const {
        return shift_;
    }
    Stop stop() const {
        return stop_;
    }

   private:
    double tol_;
    double shift_ = 0;
    Stop stop_ = Stop::Iterations;
    std::vector<float> centroids_, next_;
    std::vector<int32_t> labels_;
    bool have_labels_ = false;
};

} // namespace flashkmeans
