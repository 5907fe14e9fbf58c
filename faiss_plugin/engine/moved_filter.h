// Exact pruning on the GPU (Options::prune, CUDA backend): the moved-centroid
// filter. A centroid whose bits did not change since the last assignment
// scores every point bitwise as before, so a point whose own centroid did not
// move can only be taken by one that moved. Each assignment after the first:
//   - the centroids that moved (their rows in the kernel's dtype compared
//     with the last assignment's) are gathered into a compact set of M;
//   - every point is assigned against those M alone (FlashAssign, one call),
//     and a point whose centroid did not move keeps the better of its own
//     (label, distance) and the best moved one, by (distance, index);
//   - the points whose centroid moved (or that have none) are gathered, a
//     chunk at a time, and assigned against all k.
// The work is n M + U k of n k (U: the points whose centroid moved); where
// it would be most of it, the plain call runs instead, and again for the
// next 1, 2, 4, ... up to 16 calls before the filter looks again (its look
// waits on the GPU). FlashAssign picks the same kernel for every call of a
// shape and dtype and scores a (point, centroid) pair the same wherever the
// pair sits in a call, so a label can
// differ from the plain call's only where the two candidates' distances are
// within the kernel's rounding of each other (FlashAssign compares its own
// score, the merge the distances it writes): such points are counted as
// near-ties. Tests: tests/test_moved_filter.cpp (CPU, the fused kernel),
// tests/gpu/test_moved_filter.cpp.
#pragma once

#include "device_memory.h"
#include "prune.h"

#include <flashkmeans/kernels.h>

namespace flashkmeans {

class MovedFilter {
   public:
    /// n points and k centroids of `dp` elements of `dtype` (padded rows) on `place`.
    MovedFilter(const Place& place, Metric metric, int64_t n, int64_t k, int64_t dp, DType dtype);
    /// Place memory it holds for these sizes.
    static size_t bytes(const Place& place, int64_t n, int64_t k, int64_t dp, DType dtype);
    /// The next assignment runs in full (the centroids were set anew).
    void reset() {
        ready_ = false;
        plain_left_ = 0;
        backoff_ = 1;
    }
    /// The assignment `a` asks for (one problem; labels and distances hold
    /// the last assignment's, x_norms and centroid_norms given).
    PruneStep assign(const kernels::AssignArgs& a);

    /// The same assignment a piece of the points at a time (streamed runs,
    /// whose points are on the place a chunk at a time): begin() with `a` as
    /// for assign() (its points are not read), then rows() for each piece,
    /// every point once, then end(). The labels and distances are those of
    /// assign(), bit for bit.
    void begin(const kernels::AssignArgs& a);
    /// Points [first, first + piece.n) of begin()'s: piece.x, x_norms,
    /// labels and distances point at that row of theirs.
    void rows(const kernels::AssignArgs& piece, int64_t first);
    PruneStep end();

   private:
    enum class Mode { Plain, Filter, Skip };
    /// The points whose centroid moved, ids among the piece's: in full.
    void assign_in_full(const kernels::AssignArgs& piece, const int32_t* ids, int64_t count);
    Place place_;
    Metric metric_;
    int64_t n_, k_, dp_, chunk_rows_;
    size_t row_bytes_;
    Mode mode_ = Mode::Plain;
    int64_t moved_ = 0, moved_points_ = 0; // this assignment's m and u
    const void* centroids_ = nullptr;      // this assignment's
    PruneStep step_;                       // this assignment's
    bool ready_ = false;
    int plain_left_ = 0; // plain calls before the filter looks again
    int backoff_ = 1;
    PlaceArray<uint8_t> last_;         // k rows: the centroids as last assigned
    PlaceArray<uint8_t> flags_;        // k: moved
    PlaceArray<int32_t> moved_ids_;    // k
    PlaceArray<int32_t> point_ids_;    // n: the points assigned in full
    PlaceArray<uint8_t> moved_rows_;   // k rows: the moved centroids, compact
    PlaceArray<float> moved_norms_;    // k
    PlaceArray<int32_t> cand_labels_;  // n: best moved centroid (compact index)
    PlaceArray<float> cand_dist_;      // n
    PlaceArray<uint8_t> chunk_rows_x_; // chunk_rows rows of points
    PlaceArray<float> chunk_norms_;
    PlaceArray<int32_t> chunk_labels_;
    PlaceArray<float> chunk_dist_;
    PlaceArray<uint8_t> select_ws_;
    PlaceArray<int64_t> scratch_;
};

} // namespace flashkmeans
