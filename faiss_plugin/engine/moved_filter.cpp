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

PruneStep MovedFilter::assign(const AssignArgs& a) {
    begin(a);
    rows(a, 0);
    return end();
}

void MovedFilter::begin(const AssignArgs& a) {
    FAISS_THROW_IF_NOT_MSG(a.batch == 1 && a.n == n_ && a.k == k_ && a.d == dp_ &&
                                   a.centroid_norms && (n_ == 0 || (a.x_norms && a.distances)),
                           "MovedFilter::assign: arguments do not match the filter");
    PruneStep& step = step_;
    step.skipped.assign(1, 0.0);
    step.near_ties.assign(1, 0);
    step.plain.assign(1, 0);
    centroids_ = a.centroids;
    mode_ = Mode::Plain;
    moved_points_ = -1;
    if (n_ == 0) {
        mode_ = Mode::Skip; // a rank with no points
        return;
    }
    if (!ready_) { // the first assignment runs in full
        return;
    }
    if (plain_left_ > 0) {
        plain_left_--;
        step.plain[0] = 1;
        return;
    }
    rows_differ(place_, a.centroids, last_.get(), k_, row_bytes_, flags_.get());
    moved_ = select_ids(place_, flags_.get(), nullptr, k_, moved_ids_.get(), select_ws_.get(),
                        select_ws_.size());
    if (moved_ == 0) { // nothing moved: every label and distance stands
        step.skipped[0] = 1.0;
        backoff_ = 1;
        mode_ = Mode::Skip;
        return;
    }
    const double total = double(n_) * double(k_);
    // n m alone is that much already (every centroid moving, as on iid
    // data): no need to find the points whose centroid moved
    const int64_t u = double(moved_) >= kPlainShare * double(k_)
                              ? n_
                              : select_ids(place_, flags_.get(), a.labels, n_, point_ids_.get(),
                                           select_ws_.get(), select_ws_.size());
    const double work = double(n_) * moved_ + double(u) * k_;
    if (work >= kPlainShare * total) {
        step.plain[0] = 1;
        plain_left_ = backoff_;
        backoff_ = std::min(2 * backoff_, kMaxBackoff);
        return;
    }
    backoff_ = 1;
    mode_ = Mode::Filter;
    moved_points_ = u; // point_ids_ holds them, for a piece of all n points
    gather_rows_by_id(place_, a.centroids, row_bytes_, moved_ids_.get(), moved_, moved_rows_.get());
    gather_rows_by_id(place_, a.centroid_norms, sizeof(float), moved_ids_.get(), moved_,
                      moved_norms_.get());
    step.skipped[0] = 1.0 - work / total;
}

void MovedFilter::rows(const AssignArgs& piece, int64_t first) {
    FAISS_THROW_IF_NOT_MSG(piece.batch == 1 && first >= 0 && first + piece.n <= n_ &&
                                   piece.centroids == centroids_,
                           "MovedFilter::rows: a piece outside the assignment begin() set");
    if (mode_ == Mode::Skip || piece.n == 0) {
        return;
    }
    if (mode_ == Mode::Plain) {
        flash_assign(place_, piece);
        return;
    }
    // the piece's points whose centroid moved, before the merge changes labels
    int64_t u = moved_points_;
    if (first != 0 || piece.n != n_) {
        u = select_ids(place_, flags_.get(), piece.labels, piece.n, point_ids_.get(),
                       select_ws_.get(), select_ws_.size());
    }
    // every point against the moved centroids, merged into the points that keep theirs
    AssignArgs am = piece;
    am.centroids = moved_rows_.get();
    am.centroid_norms = moved_norms_.get();
    am.k = moved_;
    am.labels = cand_labels_.get() + first;
    am.distances = cand_dist_.get() + first;
    am.second = nullptr;
    flash_assign(place_, am);
    // the fp32 dot product's rounding bound (prune_common.h's rule) on
    // ||x||^2 + ||c||^2: distances closer than that may rank either way
    const double rel_tol = 2.0 * double(dp_ + 2) * 0x1p-24;
    step_.near_ties[0] += merge_moved(place_, metric_, piece.n, flags_.get(), moved_ids_.get(),
                                      am.labels, am.distances, piece.x_norms, piece.centroid_norms,
                                      rel_tol, piece.labels, piece.distances, scratch_.get());
    assign_in_full(piece, point_ids_.get(), u);
}

PruneStep MovedFilter::end() {
    if (mode_ != Mode::Skip) { // what the next assignment compares with
        copy_within(place_, last_.get(), centroids_, size_t(k_) * row_bytes_);
        ready_ = true;
    }
    return step_;
}

void MovedFilter::assign_in_full(const AssignArgs& piece, const int32_t* ids, int64_t count) {
    for (int64_t r0 = 0; r0 < count; r0 += chunk_rows_) {
        const int64_t mc = std::min(chunk_rows_, count - r0);
        const int32_t* chunk_ids = ids + r0;
        gather_rows_by_id(place_, piece.x, row_bytes_, chunk_ids, mc, chunk_rows_x_.get());
        gather_rows_by_id(place_, piece.x_norms, sizeof(float), chunk_ids, mc, chunk_norms_.get());
        AssignArgs au = piece;
        au.x = chunk_rows_x_.get();
        au.n = mc;
        au.x_norms = chunk_norms_.get();
        au.labels = chunk_labels_.get();
        au.distances = chunk_dist_.get();
        au.second = nullptr;
        au.call_rows = 0;
        flash_assign(place_, au);
        scatter_assignment(place_, chunk_ids, mc, chunk_labels_.get(), chunk_dist_.get(),
                           piece.labels, piece.distances);
    }
}

} // namespace flashkmeans
