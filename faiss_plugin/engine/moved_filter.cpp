#include "moved_filter.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>

namespace flashkmeans {

using namespace kernels;

namespace {

/// Points assigned against all k at a time: bounds the gathered copy.
constexpr int64_t kChunkRows = 1 << 16;
/// The plain call runs where the filter would leave this share of the work.
constexpr double kPlainShare = 0.8;
/// After that, the plain call runs 1, 2, 4, ... up to this many times
/// before the filter looks again: its look waits on the GPU, which costs a
/// few percent of an iteration where every centroid keeps moving (iid data).
constexpr int kMaxBackoff = 16;

} // namespace

MovedFilter::MovedFilter(const Place& place, Metric metric, int64_t n, int64_t k, int64_t dp,
                         DType dtype)
        : place_(place),
          metric_(metric),
          n_(n),
          k_(k),
          dp_(dp),
          chunk_rows_(std::max<int64_t>(1, std::min(n, kChunkRows))),
          row_bytes_(size_t(dp) * dtype_size(dtype)),
          last_(place, size_t(k) * row_bytes_),
          flags_(place, size_t(k)),
          moved_ids_(place, size_t(k)),
          point_ids_(place, size_t(n)),
          moved_rows_(place, size_t(k) * row_bytes_),
          moved_norms_(place, size_t(k)),
          cand_labels_(place, size_t(n)),
          cand_dist_(place, size_t(n)),
          chunk_rows_x_(place, size_t(chunk_rows_) * row_bytes_),
          chunk_norms_(place, size_t(chunk_rows_)),
          chunk_labels_(place, size_t(chunk_rows_)),
          chunk_dist_(place, size_t(chunk_rows_)),
          select_ws_(place, select_ids_workspace(place, std::max(n, k))),
          scratch_(place, 1) {}

size_t MovedFilter::bytes(const Place& place, int64_t n, int64_t k, int64_t dp, DType dtype) {
    const size_t row = size_t(dp) * dtype_size(dtype);
    const size_t chunk = size_t(std::max<int64_t>(1, std::min(n, kChunkRows)));
    return 2 * size_t(k) * row + size_t(k) * (1 + 4 + 4) + size_t(n) * (4 + 4 + 4) +
           chunk * (row + 12) + select_ids_workspace(place, std::max(n, k)) + 8;
}

void MovedFilter::plain(const AssignArgs& a) {
    flash_assign(place_, a);
    copy_within(place_, last_.get(), a.centroids, size_t(k_) * row_bytes_);
    ready_ = true;
}

PruneStep MovedFilter::assign(const AssignArgs& a) {
    FAISS_THROW_IF_NOT_MSG(a.batch == 1 && a.n == n_ && a.k == k_ && a.d == dp_ &&
                                   a.centroid_norms && (n_ == 0 || (a.x_norms && a.distances)),
                           "MovedFilter::assign: arguments do not match the filter");
    PruneStep step;
    step.skipped.assign(1, 0.0);
    step.near_ties.assign(1, 0);
    step.plain.assign(1, 0);
    if (n_ == 0) {
        return step; // a rank with no points
    }
    if (!ready_) { // the first assignment runs in full
        plain(a);
        return step;
    }
    if (plain_left_ > 0) {
        plain_left_--;
        plain(a);
        step.plain[0] = 1;
        return step;
    }
    rows_differ(place_, a.centroids, last_.get(), k_, row_bytes_, flags_.get());
    const int64_t m = select_ids(place_, flags_.get(), nullptr, k_, moved_ids_.get(),
                                 select_ws_.get(), select_ws_.size());
    if (m == 0) { // nothing moved: every label and distance stands
        step.skipped[0] = 1.0;
        backoff_ = 1;
        return step;
    }
    const double total = double(n_) * double(k_);
    // n m alone is that much already (every centroid moving, as on iid
    // data): no need to find the points whose centroid moved
    const int64_t u = double(m) >= kPlainShare * double(k_)
                              ? n_
                              : select_ids(place_, flags_.get(), a.labels, n_, point_ids_.get(),
                                           select_ws_.get(), select_ws_.size());
    const double work = double(n_) * m + double(u) * k_;
    if (work >= kPlainShare * total) {
        plain(a);
        step.plain[0] = 1;
        plain_left_ = backoff_;
        backoff_ = std::min(2 * backoff_, kMaxBackoff);
        return step;
    }
    backoff_ = 1;
    // every point against the moved centroids, merged into the points that keep theirs
    gather_rows_by_id(place_, a.centroids, row_bytes_, moved_ids_.get(), m, moved_rows_.get());
    gather_rows_by_id(place_, a.centroid_norms, sizeof(float), moved_ids_.get(), m,
                      moved_norms_.get());
    AssignArgs am = a;
    am.centroids = moved_rows_.get();
    am.centroid_norms = moved_norms_.get();
    am.k = m;
    am.labels = cand_labels_.get();
    am.distances = cand_dist_.get();
    am.second = nullptr;
    flash_assign(place_, am);
    // the fp32 dot product's rounding bound (prune_common.h's rule) on
    // ||x||^2 + ||c||^2: distances closer than that may rank either way
    const double rel_tol = 2.0 * double(dp_ + 2) * 0x1p-24;
    step.near_ties[0] =
            merge_moved(place_, metric_, n_, flags_.get(), moved_ids_.get(), cand_labels_.get(),
                        cand_dist_.get(), a.x_norms, a.centroid_norms, rel_tol, a.labels,
                        a.distances, scratch_.get());
    // the points whose centroid moved, against every centroid
    for (int64_t r0 = 0; r0 < u; r0 += chunk_rows_) {
        const int64_t mc = std::min(chunk_rows_, u - r0);
        const int32_t* ids = point_ids_.get() + r0;
        gather_rows_by_id(place_, a.x, row_bytes_, ids, mc, chunk_rows_x_.get());
        gather_rows_by_id(place_, a.x_norms, sizeof(float), ids, mc, chunk_norms_.get());
        AssignArgs au = a;
        au.x = chunk_rows_x_.get();
        au.n = mc;
        au.x_norms = chunk_norms_.get();
        au.labels = chunk_labels_.get();
        au.distances = chunk_dist_.get();
        au.second = nullptr;
        au.call_rows = 0;
        flash_assign(place_, au);
        scatter_assignment(place_, ids, mc, chunk_labels_.get(), chunk_dist_.get(), a.labels,
                           a.distances);
    }
    copy_within(place_, last_.get(), a.centroids, size_t(k_) * row_bytes_);
    step.skipped[0] = 1.0 - work / total;
    return step;
}

} // namespace flashkmeans
