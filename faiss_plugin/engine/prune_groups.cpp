// Exact pruning's group bounds (prune.h, the fused CPU kernel): the groups of
// centroids, the bounds loosened lazily, and the groups a point needs
// computed, merged into its label.
#include "prune.h"

#include "prune_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace flashkmeans {

using namespace kernels;
using namespace prune_detail;

namespace {

/// Splits ids[lo, hi) into `groups` groups of near-equal sizes (multiples of
/// 16 where it can: the fused kernel's panel) that sit together in space:
/// halves at the median of the coordinate with the widest spread, then again
/// in each half. `ends` gets each group's end, in order.
void split_groups(const float* c, int64_t d, std::vector<int32_t>& ids, int64_t lo, int64_t hi,
                  int64_t groups, std::vector<int32_t>& ends) {
    if (groups == 1) {
        ends.push_back(int32_t(hi));
        return;
    }
    const int64_t left = groups / 2;
    int64_t mid = lo + ((hi - lo) * left / groups + 8) / 16 * 16;
    mid = std::min(std::max(mid, lo + left), hi - (groups - left)); // none left empty
    int64_t axis = 0;
    float widest = -1;
    for (int64_t t = 0; t < d; t++) {
        float mn = std::numeric_limits<float>::infinity(), mx = -mn;
        for (int64_t r = lo; r < hi; r++) {
            mn = std::min(mn, c[ids[size_t(r)] * d + t]);
            mx = std::max(mx, c[ids[size_t(r)] * d + t]);
        }
        if (mx - mn > widest) {
            widest = mx - mn;
            axis = t;
        }
    }
    std::nth_element(ids.begin() + lo, ids.begin() + mid, ids.begin() + hi,
                     [&](int32_t a, int32_t b) {
                         const float va = c[a * d + axis], vb = c[b * d + axis];
                         return va < vb || (va == vb && a < b);
                     });
    split_groups(c, d, ids, lo, mid, left, ends);
    split_groups(c, d, ids, mid, hi, groups - left, ends);
}

} // namespace

int64_t Pruner::group_count(int64_t k, int64_t d) {
    // A group computed for a point costs its bound upkeep and merge besides
    // size x d products: groups of about 6000 / d centroids (16 to 64, whole
    // panels of the fused kernel) keep that small, finer ones prune more.
    // At most 64 groups: the bounds cost 4 bytes per point and group.
    const int64_t size = std::min<int64_t>(64, std::max<int64_t>(16, (6144 / d + 8) / 16 * 16));
    return std::max<int64_t>(1, std::min<int64_t>(kMaxGroups, k / size));
}

void Pruner::set_groups(const AssignArgs& a, int64_t b, double c_max) {
    const float* c = static_cast<const float*>(a.centroids) + b * k_ * d_;
    std::vector<int32_t>& members = members_[size_t(b)];
    std::vector<int32_t>& begin = begin_[size_t(b)];
    std::vector<int32_t>& group_of = group_of_[size_t(b)];
    members.resize(size_t(k_));
    for (int64_t j = 0; j < k_; j++) {
        members[size_t(j)] = int32_t(j);
    }
    begin.assign(1, 0);
    split_groups(c, d_, members, 0, k_, G_, begin);
    group_of.resize(size_t(k_));
    for (int64_t g = 0; g < G_; g++) {
        std::sort(members.begin() + begin[size_t(g)], members.begin() + begin[size_t(g + 1)]);
        for (int32_t r = begin[size_t(g)]; r < begin[size_t(g + 1)]; r++) {
            group_of[size_t(members[size_t(r)])] = int32_t(g);
        }
    }
    drift_sum_[size_t(b)].assign(1, std::vector<double>(size_t(G_), 0.0));
    max_sum_[size_t(b)].assign(1, 0.0);
    std::vector<int64_t> rows(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; i++) {
        rows[size_t(i)] = i;
        stamp_[size_t(b * n_ + i)] = 0;
    }
    assign_groups(a, b, c_max, rows, {}, std::vector<uint8_t>(size_t(n_ * G_), 1));
}

int64_t Pruner::assign_groups(const AssignArgs& a, int64_t b, double c_max,
                              const std::vector<int64_t>& rows, const std::vector<float>& own_score,
                              const std::vector<uint8_t>& need) {
    const bool l2 = metric_ == Metric::L2, fresh = own_score.empty();
    const int64_t base = b * n_, G = G_, m = int64_t(rows.size());
    const double gamma = rounding_factor(d_);
    const std::vector<int32_t>& begin = begin_[size_t(b)];
    const std::vector<int32_t>& group_of = group_of_[size_t(b)];
    const auto better = [l2](float v, int32_t j, float bv, int32_t bj) {
        return j >= 0 && (bj < 0 || (l2 ? v < bv : v > bv) || (v == bv && j < bj));
    };
    std::vector<float> best, second;
    std::vector<int32_t> arg;
    std::vector<int64_t> chunk_rows;
    int64_t work = 0;
    for (int64_t r0 = 0; r0 < m; r0 += kRowsPerCall) {
        const int64_t mc = std::min(kRowsPerCall, m - r0);
        best.resize(size_t(mc * G));
        second.resize(size_t(mc * G));
        arg.resize(size_t(mc * G));
        chunk_rows.resize(size_t(mc));
        for (int64_t r = 0; r < mc; r++) {
            chunk_rows[size_t(r)] = base + rows[size_t(r0 + r)];
        }
        GroupAssignArgs ga;
        ga.x = static_cast<const float*>(a.x);
        ga.x_norms = a.x_norms;
        ga.rows = chunk_rows.data();
        ga.m = mc;
        ga.d = d_;
        ga.centroids = static_cast<const float*>(a.centroids) + b * k_ * d_;
        ga.centroid_norms = l2 ? a.centroid_norms + b * k_ : nullptr;
        ga.k = k_;
        ga.metric = metric_;
        ga.groups = G;
        ga.group_begin = begin.data();
        ga.members = members_[size_t(b)].data();
        ga.need = need.data() + r0 * G;
        ga.best = best.data();
        ga.second = second.data();
        ga.arg = arg.data();
        cpu_fused_group_assign(ga);
        const int32_t now = int32_t(drift_sum_[size_t(b)].size() - 1); // the bounds hold now
#pragma omp parallel for schedule(static) reduction(+ : work)
        for (int64_t r = 0; r < mc; r++) {
            const int64_t gi = chunk_rows[size_t(r)];
            const uint8_t* nr = need.data() + (r0 + r) * G;
            const int32_t old = fresh ? -1 : a.labels[gi];
            const float own = fresh ? (l2 ? INFINITY : -INFINITY) : own_score[size_t(r0 + r)];
            // the best of the own centroid and the groups computed, by
            // (score, index): the unpruned assignment's pick, since every
            // other group is provably worse
            float bv = own;
            int32_t bj = old;
            for (int64_t g = 0; g < G; g++) {
                const size_t at = size_t(r * G + g);
                if (nr[g]) {
                    work += begin[size_t(g + 1)] - begin[size_t(g)];
                    if (better(best[at], arg[at], bv, bj)) {
                        bv = best[at];
                        bj = arg[at];
                    }
                }
            }
            a.labels[gi] = bj;
            a.distances[gi] = bv;
            stamp_[size_t(gi)] = now;
            const double e = score_error(l2, gamma, a.x_norms[gi], c_max);
            const auto lower = [&](float v) { // a bound on the others from a score
                return l2 ? std::max(0.f, down_fast(std::sqrt(std::max(0.0, double(v) - e))))
                          : up_fast(double(v) + e);
            };
            own_[size_t(gi)] = l2 ? up_fast(std::sqrt(double(bv) + e)) : down_fast(double(bv) - e);
            float* bound = group_bound_.data() + gi * G;
            for (int64_t g = 0; g < G; g++) {
                const size_t at = size_t(r * G + g);
                if (nr[g]) { // the group's best other than the point's own centroid
                    bound[g] = lower(arg[at] == bj ? second[at] : best[at]);
                }
            }
            if (old >= 0 && old != bj && !nr[group_of[size_t(old)]]) {
                // the old centroid is now one of the others of its group
                float& bo = bound[group_of[size_t(old)]];
                bo = l2 ? std::min(bo, lower(own)) : std::max(bo, lower(own));
            }
            float nearest = bound[0];
            for (int64_t g = 1; g < G; g++) {
                nearest = l2 ? std::min(nearest, bound[g]) : std::max(nearest, bound[g]);
            }
            other_[size_t(gi)] = nearest;
        }
    }
    return work;
}

double Pruner::assign_with_groups(const AssignArgs& a, int64_t b, double c_max,
                                  const std::vector<float>& drift, const std::vector<char>& moved) {
    const bool l2 = metric_ == Metric::L2;
    const int64_t n = n_, G = G_, base = b * n;
    const double gamma = rounding_factor(d_);
    const std::vector<int32_t>& begin = begin_[size_t(b)];
    // the running sums of each group's drift and of the largest one
    std::vector<std::vector<double>>& sums = drift_sum_[size_t(b)];
    std::vector<double>& max_sums = max_sum_[size_t(b)];
    const int32_t now = int32_t(sums.size());
    sums.push_back(sums.back());
    double largest = 0;
    for (int64_t g = 0; g < G; g++) {
        double gd = 0;
        for (int32_t r = begin[size_t(g)]; r < begin[size_t(g + 1)]; r++) {
            gd = std::max(gd, double(drift[size_t(members_[size_t(b)][size_t(r)])]));
        }
        sums.back()[size_t(g)] += gd;
        largest = std::max(largest, gd);
    }
    max_sums.push_back(max_sums.back() + largest);
    // sums of up to a few hundred rounded-up drifts, in double: a relative
    // margin covers their rounding
    constexpr double kSumMargin = 1 + 1e-12;
    const std::vector<double>& sum_now = sums.back();
    // the points whose bounds fail against the nearest group: candidates
    enum : uint8_t { kSkip, kRescore, kCandidate };
    std::vector<uint8_t> status(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const int64_t gi = base + i;
        const int32_t label = a.labels[gi];
        const double e = score_error(l2, gamma, a.x_norms[gi], c_max);
        const double xn = l2 ? 1.0 : std::sqrt(double(a.x_norms[gi]) * (1 + gamma));
        bool skip = false;
        if (label >= 0) {
            float& own = own_[size_t(gi)];
            own = l2 ? up_fast(double(own) + drift[size_t(label)])
                     : down_fast(double(own) - xn * drift[size_t(label)]);
            const int32_t then = stamp_[size_t(gi)];
            const auto clears = [&](float other) {
                return l2 ? double(other) * other - double(own) * own > 2 * e
                          : double(own) - double(other) > 2 * e;
            };
            // the smallest group bound, loosened by the largest drifts: O(1)
            const double moved_max = (max_sums[size_t(now)] - max_sums[size_t(then)]) * kSumMargin;
            const float global =
                    l2 ? std::max(0.f, down_fast(double(other_[size_t(gi)]) - moved_max))
                       : up_fast(double(other_[size_t(gi)]) + xn * moved_max);
            skip = clears(global);
            if (!skip) { // each group's bound, loosened by its own drifts
                float* bound = group_bound_.data() + gi * G;
                const std::vector<double>& sum_then = sums[size_t(then)];
                float nearest = l2 ? INFINITY : -INFINITY;
                for (int64_t g = 0; g < G; g++) {
                    const double gd = (sum_now[size_t(g)] - sum_then[size_t(g)]) * kSumMargin;
                    bound[g] = l2 ? std::max(0.f, down_fast(double(bound[g]) - gd))
                                  : up_fast(double(bound[g]) + xn * gd);
                    nearest = l2 ? std::min(nearest, bound[g]) : std::max(nearest, bound[g]);
                }
                stamp_[size_t(gi)] = now;
                other_[size_t(gi)] = nearest;
                skip = clears(nearest);
            }
        }
        status[size_t(i)] = !skip ? kCandidate : moved[size_t(label)] ? kRescore : kSkip;
    }
    std::vector<int64_t> candidates, rescored, known;
    for (int64_t i = 0; i < n; i++) {
        if (status[size_t(i)] == kRescore) {
            rescored.push_back(i); // same label, new distance
        } else if (status[size_t(i)] == kCandidate) {
            candidates.push_back(i);
            if (a.labels[base + i] >= 0) {
                known.push_back(i);
            }
        }
    }
    std::vector<float> scores;
    own_scores(a, b, c_max, rescored, scores);
    for (size_t r = 0; r < rescored.size(); r++) {
        a.distances[base + rescored[r]] = scores[r];
    }
    // the candidates' own scores, exact: then only the groups their bounds
    // do not clear need computing
    own_scores(a, b, c_max, known, scores);
    const int64_t nc = int64_t(candidates.size());
    std::vector<float> cand_scores(static_cast<size_t>(nc));
    for (int64_t r = 0, kr = 0; r < nc; r++) {
        cand_scores[size_t(r)] = a.labels[base + candidates[size_t(r)]] >= 0
                                         ? scores[size_t(kr++)]
                                         : (l2 ? INFINITY : -INFINITY);
    }
    std::vector<uint8_t> cand_need(size_t(nc * G)), any(static_cast<size_t>(nc));
    int64_t work = int64_t(known.size()); // one score each
#pragma omp parallel for schedule(static) reduction(+ : work)
    for (int64_t r = 0; r < nc; r++) {
        const int64_t gi = base + candidates[size_t(r)];
        const bool has_label = a.labels[gi] >= 0;
        const double e = score_error(l2, gamma, a.x_norms[gi], c_max);
        const float own = own_[size_t(gi)];
        const float* bound = group_bound_.data() + gi * G;
        uint8_t* nr = cand_need.data() + r * G;
        for (int64_t g = 0; g < G; g++) {
            const bool clear =
                    has_label && (l2 ? double(bound[g]) * bound[g] - double(own) * own > 2 * e
                                     : double(own) - double(bound[g]) > 2 * e);
            nr[g] = !clear;
            if (!clear) {
                any[size_t(r)] = 1;
                work += begin[size_t(g + 1)] - begin[size_t(g)];
            }
        }
        if (!any[size_t(r)]) { // the label stays; its score is now exact
            a.distances[gi] = cand_scores[size_t(r)];
        }
    }
    std::vector<int64_t> rows;
    std::vector<float> row_scores;
    std::vector<uint8_t> need;
    for (int64_t r = 0; r < nc; r++) {
        if (any[size_t(r)]) {
            rows.push_back(candidates[size_t(r)]);
            row_scores.push_back(cand_scores[size_t(r)]);
            need.insert(need.end(), cand_need.begin() + r * G, cand_need.begin() + (r + 1) * G);
        }
    }
    const double total = double(n) * double(k_);
    if (double(work) >= kFullShare * total) {
        return -1; // pruning does not pay now: the caller runs the plain call
    }
    if (!rows.empty()) {
        // in label order: points of one cluster tend to need the same groups,
        // and the kernel computes a group for whole tiles of 6 rows. A
        // counting sort over the labels (-1 first): stable, so the rows of a
        // label stay in index order, in O(rows + k)
        std::vector<size_t> start(size_t(k_) + 2, 0), order(rows.size());
        for (size_t r = 0; r < rows.size(); r++) {
            start[size_t(a.labels[base + rows[r]] + 2)]++;
        }
        for (size_t j = 1; j < start.size(); j++) {
            start[j] += start[j - 1];
        }
        for (size_t r = 0; r < rows.size(); r++) {
            order[start[size_t(a.labels[base + rows[r]] + 1)]++] = r;
        }
        std::vector<int64_t> sorted_rows(rows.size());
        std::vector<float> sorted_scores(rows.size());
        std::vector<uint8_t> sorted_need(need.size());
        for (size_t r = 0; r < order.size(); r++) {
            sorted_rows[r] = rows[order[r]];
            sorted_scores[r] = row_scores[order[r]];
            std::memcpy(sorted_need.data() + r * size_t(G), need.data() + order[r] * size_t(G),
                        size_t(G));
        }
        assign_groups(a, b, c_max, sorted_rows, sorted_scores, sorted_need);
    }
    return total > 0 ? 1.0 - double(work) / total : 0.0;
}

} // namespace flashkmeans
