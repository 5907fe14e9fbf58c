// k-means++ seeding across ranks: D^2 sampling in which each rank reads only
// its own shard and no collective carries points, only O(R + d) values.
//
// Every rank draws the same k - n_given uniforms (kmeanspp_draws, init.h)
// and keeps D for its own points in local order (= ascending global id),
// computed with the CPU kernel's arithmetic (kernels::kmeanspp_add_row) over
// its rows fetched a chunk at a time (Lloyd::gather_points: a copy of the
// caller's rows on the CPU; on CUDA the whole shard, once). Per new row:
// - total = the ranks' sums of D (each its block sums in order), added in
//   rank order (sum_over_ranks);
// - the pick for r = u * total is the smallest global id g with P(g) > r,
//   P(g) = the ranks' prefixes of D over their ids <= g, added in rank order:
//   a binary search over g in [0, n_total), each probe one all-gather of a
//   double per rank (about log2(n_total) per row). P never decreases and
//   steps only at points with D > 0 (adding 0 leaves a double as it is), so
//   the pick has D > 0, as the kernel's rule asks. total <= 0 and r at or
//   past total (rounding) take the kernel's fallbacks: the uniform pick over
//   the global index, and the largest global id with D > 0;
// - the rank holding g broadcasts its row (broadcast_global_row).
// P adds the same D values as the one process's prefix in another order
// (per rank, then across ranks, where the kernel adds blocks of the global
// order), so where the distances and their double sums are exact (small
// integers) the picks are the one process's bit for bit; elsewhere a pick can
// differ where a prefix rounds differently. On CUDA ranks the distances are
// the CPU kernel's fp32 sums, which may round differently from the CUDA
// kernel's (kernels.h). Weights play no part, as in one process.
#include "shard.h"

#include "init.h"

#include <flashkmeans/kernels.h>

#include <algorithm>
#include <numeric>
#include <vector>

namespace flashkmeans {

namespace {

/// This rank's D over its points, and the sums the search reads.
class LocalDistances {
   public:
    LocalDistances(const Shard& shard, const Lloyd& lloyd, int64_t d)
            : shard_(shard), lloyd_(lloyd), d_(d), block_(kernels::kmeanspp_block_rows()) {
        const int64_t n = shard.n, blocks = (n + block_ - 1) / block_;
        dist_.resize(size_t(n));
        block_sums_.resize(size_t(blocks));
        before_.assign(size_t(blocks) + 1, 0.0);
        // whole blocks of about 32 MiB of rows: scratch bounded whatever the
        // shard, and blocks enough for the threads (8 or more up to d = 256)
        const int64_t per_block = block_ * d * int64_t(sizeof(float));
        chunk_ = block_ * std::max<int64_t>(1, std::min(blocks, (int64_t(32) << 20) / per_block));
        // On CUDA the rows cross the bus: this rank's shard comes to the
        // host once, not once per new row (the distance pass runs on the
        // host; a device step is not built)
        whole_ = lloyd.place().backend == Backend::CUDA &&
                 lloyd.plan().resident_rows == lloyd.plan().rows; // streamed: host data, chunks
        if (whole_) {
            chunk_ = std::max<int64_t>(n, 1);
        }
        rows_.resize(size_t(std::min(chunk_, n) * d));
        ids_.resize(size_t(std::min(chunk_, n)));
        if (whole_) {
            std::iota(ids_.begin(), ids_.end(), int64_t(0));
            lloyd.gather_points(0, ids_.data(), n, rows_.data());
        }
    }

    /// D = min(D, distance to c) (D = the distance when `first`).
    void add_row(const float* c, bool first) {
        const int64_t n = shard_.n;
        for (int64_t i0 = 0; i0 < n; i0 += chunk_) {
            const int64_t m = std::min(chunk_, n - i0);
            if (!whole_) {
                std::iota(ids_.begin(), ids_.begin() + m, i0);
                lloyd_.gather_points(0, ids_.data(), m, rows_.data());
            }
            kernels::kmeanspp_add_row(rows_.data(), m, d_, c, first, dist_.data() + i0,
                                      block_sums_.data() + i0 / block_);
        }
        for (size_t b = 0; b < block_sums_.size(); b++) {
            before_[b + 1] = before_[b] + block_sums_[b];
        }
    }

    /// The sum of D over this rank's points.
    double total() const {
        return before_.back();
    }

    /// The sum of D over this rank's points with global id <= g, in the
    /// kernel's order (the blocks before, then the points of the block);
    /// prefix(n_total - 1) == total().
    double prefix(int64_t g) const {
        const int64_t count = points_upto(g), b = count / block_;
        double local = 0;
        for (int64_t i = b * block_; i < count; i++) {
            local += dist_[size_t(i)];
        }
        return before_[size_t(b)] + local;
    }

    /// The largest global id of this rank's points with D > 0, or -1.
    int64_t last_positive() const {
        const int64_t i = kernels::kmeanspp_last_positive(dist_.data(), shard_.n);
        return i < 0 ? -1 : global_id(i);
    }

   private:
    int64_t points_upto(int64_t g) const {
        if (shard_.ids.empty()) {
            return std::clamp<int64_t>(g - shard_.offset + 1, 0, shard_.n);
        }
        return int64_t(std::upper_bound(shard_.ids.begin(), shard_.ids.end(), g) -
                       shard_.ids.begin());
    }
    int64_t global_id(int64_t i) const {
        return shard_.ids.empty() ? shard_.offset + i : shard_.ids[size_t(i)];
    }

    const Shard& shard_;
    const Lloyd& lloyd_;
    int64_t d_, block_, chunk_ = 0;
    bool whole_ = false; // rows_ holds the whole shard (CUDA)
    std::vector<float> dist_;
    std::vector<double> block_sums_; // one per block_ points, as the kernel writes them
    std::vector<double> before_;     // before_[b] = block sums < b, added in order
    std::vector<float> rows_;        // one chunk of this rank's rows, fp32
    std::vector<int64_t> ids_;
};

/// The global id of the D^2 draw for uniform u (the kernel's rule over the
/// global order), the same on every rank.
int64_t pick_on_ranks(const Shard& shard, const LocalDistances& local, double u) {
    Communicator& comm = *shard.comm;
    const double total = sum_over_ranks(comm, local.total());
    if (!(total > 0)) {
        return kernels::kmeanspp_uniform_pick(u, shard.n_total);
    }
    const double r = u * total;
    if (!(total > r)) {
        // rounding put r at or past the last prefix
        std::vector<int64_t> last(size_t(comm.size()));
        const int64_t mine = local.last_positive();
        comm.allgather(&mine, last.data(), sizeof(mine));
        return *std::max_element(last.begin(), last.end());
    }
    // P(hi) > r holds throughout; P(g) <= r for every g < lo
    int64_t lo = 0, hi = shard.n_total - 1;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (sum_over_ranks(comm, local.prefix(mid)) > r) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

} // namespace

void kmeanspp_on_ranks(const Shard& shard, const Lloyd& lloyd, int64_t seed, size_t n_given,
                       size_t k, size_t d, float* centroids) {
    if (n_given >= k) {
        return;
    }
    const std::vector<double> draws = kmeanspp_draws(seed, k - n_given);
    LocalDistances local(shard, lloyd, int64_t(d));
    size_t j = n_given;
    if (j == 0) {
        const int64_t g = kernels::kmeanspp_uniform_pick(draws[0], shard.n_total);
        broadcast_global_row(shard, lloyd, g, int64_t(d), centroids);
        j = 1;
    }
    for (size_t g = 0; g < j; g++) {
        local.add_row(centroids + g * d, g == 0);
    }
    for (; j < k; j++) {
        const int64_t g = pick_on_ranks(shard, local, draws[j - n_given]);
        broadcast_global_row(shard, lloyd, g, int64_t(d), centroids + j * d);
        if (j + 1 < k) {
            local.add_row(centroids + j * d, false);
        }
    }
}

} // namespace flashkmeans
