// Exact pruning of the assignment (Options::prune; CPU backend): Hamerly's
// two bounds per point prove that a point keeps its label after the centroids
// moved, and its distances to the k centroids are then not computed.
//
// Per point, from its last computed scores: a bound on its own centroid's
// distance and one on every other centroid's (L2: an upper and a lower bound
// on the distances; IP: a lower bound on its own inner product and an upper
// one on the others'). When the centroids move, each bound gives way by the
// drift ||c_new - c_old|| (times ||x|| for IP): its own centroid's, and the
// largest among the others'. A point is skipped when the bounds, less the
// kernel's rounding on both sides, still keep every other centroid behind
// its own: then the kernel's own argmin is that label too. The rounding bound
// is the fp32 dot product's, 2 (d + 2) 2^-24 (||x|| + max ||c||)^2 (twice
// the textbook gamma_(d+2), whatever the summation order or FMA use).
//
// The rest (the survivors) are gathered and assigned by the same kernel in
// one call; their new scores set their bounds afresh.
//
// With the fused CPU kernel (AssignKernel::Fused) the bounds are Yinyang's:
// the centroids are split into up to 64 spatially coherent groups (of 16 to
// 64 centroids, fewer as d grows; halved at the median of the widest
// coordinate, recursively), and each
// point keeps one lower bound per group (on its distance to any centroid of
// the group but its own), loosened by the group's largest drift. A point the
// smallest of them does not clear gets its own centroid's distance exactly,
// and then only the groups whose bound it does not clear are computed
// (kernels::cpu_fused_group_assign), their results merged by (score, index).
// The fused kernel's scores do not depend on the call, so every label and
// distance is the unpruned assignment's bit for bit. What is not bitwise the
// unpruned run's: OpenBLAS rounds a dot product by where its row and column
// sit in the call, so a survivor's score is rounded as in a smaller call, and
// a skipped point whose centroid moved gets its distance from a direct dot
// product. Labels can therefore differ from the unpruned run's only where a
// survivor's two best scores are within the rounding bound of each other; such
// points are counted (near_ties). Objectives agree to float rounding.
#pragma once

#include <flashkmeans/kernels.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace flashkmeans {

/// What one pruned assignment did, per problem of the batch.
struct PruneStep {
    /// fraction of the point x centroid work skipped (0: every point assigned)
    std::vector<double> skipped;
    /// survivors whose two best scores were within the rounding bound: the
    /// only points whose label may differ from an unpruned assignment's
    std::vector<int64_t> near_ties;
    /// the plain call ran (no bounds used or set): pruning did not pay lately
    std::vector<char> plain;
};

class Pruner {
   public:
    /// B problems of n points of d dimensions and k centroids (host memory),
    /// assigned by `kernel` (Fused: group bounds; else Hamerly's).
    Pruner(Metric metric, int64_t n, int64_t k, int64_t d, int64_t batch,
           kernels::AssignKernel kernel);

    /// Bytes it holds: the bounds per point, the centroids last assigned,
    /// one call's survivors.
    static size_t bytes(int64_t n, int64_t k, int64_t d, int64_t batch,
                        kernels::AssignKernel kernel);
    /// The number of centroid groups of the group bounds for k centroids of
    /// d dimensions.
    static int64_t group_count(int64_t k, int64_t d);

    /// The next assignment runs in full (the centroids were set anew).
    void reset();

    /// The assignment `a` asks for (all problems, CPU, with x_norms and
    /// distances), skipping the points whose label the bounds prove. The
    /// first call after construction or reset() assigns every point. Where
    /// the bounds leave 90% or more of a problem's points, pruning does not
    /// pay: that problem runs the plain call for 1, 2, 4, then 8 calls before
    /// it sets bounds again, so data that cannot be pruned (iid) pays for
    /// the bounds in few iterations. With group bounds, so does a pruned call
    /// that took as long as the problem's last plain call (the choice is
    /// timed; the labels do not depend on it).
    PruneStep assign(const kernels::AssignArgs& a);

    using Clock = std::chrono::steady_clock;

   private:
    /// Bounds of point i (problem-relative arrays) from its computed best and
    /// runner-up scores; `err`: that assignment's rounding bound for it.
    void set_bounds(int64_t i, float best, float second, double err);
    /// Problem b assigned in one call over `rows` (null: all n points), its
    /// bounds set from the runner-up scores unless `plain`; returns the
    /// near-ties among `rows`.
    int64_t assign_rows(const kernels::AssignArgs& a, int64_t b, const std::vector<int64_t>* rows,
                        double c_max, bool plain = false);
    /// Problem b's plain call, and the plain calls that follow it.
    void back_off(const kernels::AssignArgs& a, int64_t b, double c_max, PruneStep& step);
    /// Group bounds (fused kernel): problem b's groups from its centroids,
    /// then every point assigned group by group and its bounds set.
    void set_groups(const kernels::AssignArgs& a, int64_t b, double c_max);
    /// Group bounds: the points `rows` of problem b (their own centroid's
    /// score `own_score`, from the new centroids) assigned against the groups
    /// `need` marks (rows x groups), labels, distances and bounds updated;
    /// returns the centroids compared.
    int64_t assign_groups(const kernels::AssignArgs& a, int64_t b, double c_max,
                          const std::vector<int64_t>& rows, const std::vector<float>& own_score,
                          const std::vector<uint8_t>& need);
    /// Problem b with group bounds; returns the share of the work skipped,
    /// or -1 where it ran the plain call.
    double assign_with_groups(const kernels::AssignArgs& a, int64_t b, double c_max,
                              const std::vector<float>& drift, const std::vector<char>& moved);

    /// Per problem: whether its bounds hold for the centroids last assigned,
    /// and the plain calls it makes before setting them again.
    /// With group bounds, also how long its last plain call and its last
    /// bound-setting call took (0: none yet), the yardsticks of a pruned one.
    struct State {
        bool ready = false;
        int plain_left = 0;
        int backoff = 1;
        double plain_seconds = 0;
        double bounds_seconds = 0;
    };
    /// The plain calls before problem `st` sets bounds again (1, 2, 4, ...).
    void wait_before_bounds(State& st);
    Metric metric_;
    int64_t n_, k_, d_, batch_;
    bool groups_; // the fused kernel's group bounds
    int64_t G_;   // groups per problem (group bounds)
    /// per problem: group g = members_[b][begin_[b][g] .. begin_[b][g + 1])
    std::vector<std::vector<int32_t>> begin_, members_, group_of_;
    /// group bounds, batch x n x G: L2, a lower bound on the distance to any
    /// centroid of group g but the point's own; IP, an upper bound on the
    /// inner product with any of them
    std::vector<float> group_bound_;
    /// Group bounds are loosened lazily: a point's bounds hold for the
    /// centroids of assignment stamp_[i] of its problem; drift_sum_[b][t][g]
    /// (and max_sum_[b][t] for other_, the smallest of them) add up the
    /// groups' drifts (the largest drift) over problem b's first t
    /// assignments since its groups were set, so most points, which the
    /// global bound skips, cost O(1).
    std::vector<int32_t> stamp_;
    std::vector<std::vector<std::vector<double>>> drift_sum_;
    std::vector<std::vector<double>> max_sum_;
    /// Problem b's points `rows`, their own centroid's score from the
    /// centroids now (the fused kernel's bits), `own` bounds tightened to it.
    void own_scores(const kernels::AssignArgs& a, int64_t b, double c_max,
                    const std::vector<int64_t>& rows, std::vector<float>& scores);
    std::vector<State> state_;
    /// L2: upper bound on the distance to the own centroid and lower bound on
    /// the distance to any other. IP: lower bound on the own inner product and
    /// upper bound on any other's. Problem-major, batch x n.
    std::vector<float> own_, other_;
    std::vector<float> last_centroids_; // batch x k x d, as last assigned
    // scratch of one problem's survivors
    std::vector<float> rows_, rows_norms_, rows_dist_, rows_second_;
    std::vector<int32_t> rows_labels_;
};

} // namespace flashkmeans
