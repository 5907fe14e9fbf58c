#include "prune.h"

#include "prune_common.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

namespace flashkmeans {

using namespace kernels;
using namespace prune_detail;

namespace {

double seconds_since(Pruner::Clock::time_point t0) {
    return std::chrono::duration<double>(Pruner::Clock::now() - t0).count();
}

/// The kernel's score of x against c, by a plain dot product: FAISS's L2
/// formula (clamped at 0) or the inner product.
float score(const float* x, const float* c, int64_t d, bool l2, float x_norm, float c_norm) {
    float ip = 0;
    for (int64_t t = 0; t < d; t++) {
        ip += x[t] * c[t];
    }
    if (!l2) {
        return ip;
    }
    const float s = x_norm + c_norm - 2 * ip;
    return s < 0 ? 0 : s;
}

} // namespace

Pruner::Pruner(Metric metric, int64_t n, int64_t k, int64_t d, int64_t batch, AssignKernel kernel)
        : metric_(metric),
          n_(n),
          k_(k),
          d_(d),
          batch_(batch),
          groups_(kernel == AssignKernel::Fused),
          G_(group_count(k, d)),
          state_(size_t(batch)),
          own_(size_t(n * batch)),
          other_(size_t(n * batch)),
          last_centroids_(size_t(k * d * batch)) {
    if (groups_) {
        begin_.resize(size_t(batch));
        members_.resize(size_t(batch));
        group_of_.resize(size_t(batch));
        group_bound_.resize(size_t(n * batch * G_));
        stamp_.resize(size_t(n * batch));
        drift_sum_.resize(size_t(batch));
        max_sum_.resize(size_t(batch));
    }
}

void Pruner::reset() {
    std::fill(state_.begin(), state_.end(), State());
}

size_t Pruner::bytes(int64_t n, int64_t k, int64_t d, int64_t batch, AssignKernel kernel) {
    const size_t common = size_t(k) * d * batch * sizeof(float) + // the centroids last assigned
                          size_t(kRowsPerCall) * (size_t(d) + 4) * sizeof(float);
    if (kernel == AssignKernel::Fused) {
        // an upper bound per point, G lower ones; per point of one problem:
        // its own score and G need flags; per survivor of one call: G
        // (best, second, index) and the centroids packed once more
        const size_t G = size_t(group_count(k, d));
        return common + size_t(n) * batch * (1 + G) * sizeof(float) +
               size_t(n) * (sizeof(float) + G + sizeof(int64_t)) + size_t(kRowsPerCall) * G * 12 +
               (size_t(k) + 16 * G) * (d + 2) * sizeof(float);
    }
    // two bounds per point, a runner-up per point of one problem
    return common + (size_t(n) * batch * 2 + size_t(n)) * sizeof(float);
}

void Pruner::set_bounds(int64_t i, float best, float second, double err) {
    if (metric_ == Metric::L2) {
        own_[size_t(i)] = up(std::sqrt(double(best) + err));
        other_[size_t(i)] = down(std::sqrt(std::max(0.0, double(second) - err)));
    } else {
        own_[size_t(i)] = down(double(best) - err);
        other_[size_t(i)] = up(double(second) + err);
    }
}

int64_t Pruner::assign_rows(const AssignArgs& a, int64_t b, const std::vector<int64_t>* rows,
                            double c_max, bool plain) {
    const bool l2 = metric_ == Metric::L2;
    const int64_t n = n_, d = d_, base = b * n;
    const double gamma = rounding_factor(d);
    const auto err = [&](float x_norm) {
        const double xn = std::sqrt(double(x_norm) * (1 + gamma));
        return l2 ? gamma * (xn + c_max) * (xn + c_max) : gamma * xn * c_max;
    };
    AssignArgs s = a;
    s.batch = 1;
    s.call_rows = 0;
    s.centroids = static_cast<const float*>(a.centroids) + b * k_ * d;
    s.centroid_norms = a.centroid_norms ? a.centroid_norms + b * k_ : nullptr;
    const float* x = static_cast<const float*>(a.x) + base * d;
    if (rows == nullptr) {
        // in place, one call: the unpruned assignment itself
        rows_second_.resize(size_t(n));
        s.x = x;
        s.n = n;
        s.x_norms = a.x_norms + base;
        s.labels = a.labels + base;
        s.distances = a.distances + base;
        s.second = plain ? nullptr : rows_second_.data();
        flash_assign(Place{}, s);
        if (plain) {
            return 0;
        }
        for (int64_t i = 0; i < n; i++) {
            set_bounds(base + i, s.distances[i], rows_second_[size_t(i)], err(s.x_norms[i]));
        }
        return 0;
    }
    int64_t near_ties = 0;
    const int64_t m = int64_t(rows->size());
    for (int64_t r0 = 0; r0 < m; r0 += kRowsPerCall) {
        const int64_t mc = std::min(kRowsPerCall, m - r0);
        rows_.resize(size_t(mc * d));
        rows_norms_.resize(size_t(mc));
        rows_dist_.resize(size_t(mc));
        rows_second_.resize(size_t(mc));
        rows_labels_.resize(size_t(mc));
        for (int64_t r = 0; r < mc; r++) {
            const int64_t i = (*rows)[size_t(r0 + r)];
            std::memcpy(rows_.data() + r * d, x + i * d, size_t(d) * sizeof(float));
            rows_norms_[size_t(r)] = a.x_norms[base + i];
        }
        s.x = rows_.data();
        s.n = mc;
        s.x_norms = rows_norms_.data();
        s.labels = rows_labels_.data();
        s.distances = rows_dist_.data();
        s.second = rows_second_.data();
        flash_assign(Place{}, s);
        for (int64_t r = 0; r < mc; r++) {
            const int64_t i = base + (*rows)[size_t(r0 + r)];
            const float best = rows_dist_[size_t(r)], second = rows_second_[size_t(r)];
            const double e = err(rows_norms_[size_t(r)]);
            a.labels[i] = rows_labels_[size_t(r)];
            a.distances[i] = best;
            set_bounds(i, best, second, e);
            // within twice the rounding bound, a call of another shape may
            // have ranked the two the other way (these are FAISS's blocks:
            // the fused kernel takes the group bounds)
            if (std::abs(double(second) - double(best)) <= 2 * e) {
                near_ties++;
            }
        }
    }
    return near_ties;
}

void Pruner::own_scores(const AssignArgs& a, int64_t b, double c_max,
                        const std::vector<int64_t>& rows, std::vector<float>& scores) {
    const bool l2 = metric_ == Metric::L2;
    const int64_t base = b * n_, m = int64_t(rows.size());
    const float* x = static_cast<const float*>(a.x) + base * d_;
    const float* c = static_cast<const float*>(a.centroids) + b * k_ * d_;
    const float* cn = l2 ? a.centroid_norms + b * k_ : nullptr;
    std::vector<int32_t> labels(static_cast<size_t>(m));
    for (int64_t r = 0; r < m; r++) {
        labels[size_t(r)] = a.labels[base + rows[size_t(r)]];
    }
    scores.resize(size_t(m));
    const bool fused = a.kernel == AssignKernel::Fused;
    if (fused) { // the fused kernel's own arithmetic: the distance it computes
        cpu_fused_pair_scores(x, a.x_norms + base, rows.data(), c, cn, labels.data(), m, d_,
                              metric_, scores.data());
    }
    const double gamma = rounding_factor(d_);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m; r++) {
        const int64_t i = rows[size_t(r)], j = labels[size_t(r)];
        if (!fused) {
            scores[size_t(r)] =
                    score(x + i * d_, c + j * d_, d_, l2, a.x_norms[base + i], l2 ? cn[j] : 0.f);
        }
        const float s = scores[size_t(r)];
        const double e = score_error(l2, gamma, a.x_norms[base + i], c_max);
        own_[size_t(base + i)] = l2 ? up(std::sqrt(double(s) + e)) : down(double(s) - e);
    }
}

void Pruner::back_off(const AssignArgs& a, int64_t b, double c_max, PruneStep& step) {
    // pruning does not pay now: the plain call, then a few more
    State& st = state_[size_t(b)];
    const Clock::time_point t0 = Clock::now();
    assign_rows(a, b, nullptr, c_max, true);
    st.plain_seconds = seconds_since(t0);
    step.plain[size_t(b)] = 1;
    wait_before_bounds(st);
}

void Pruner::wait_before_bounds(State& st) {
    st.ready = false;
    st.plain_left = st.backoff;
    st.backoff = std::min(2 * st.backoff, kMaxBackoff);
}

PruneStep Pruner::assign(const AssignArgs& a) {
    FAISS_THROW_IF_NOT_MSG(a.dtype == DType::Float32 && a.n == n_ && a.k == k_ && a.d == d_ &&
                                   a.batch == batch_ && (n_ == 0 || (a.x_norms && a.distances)),
                           "Pruner::assign: arguments do not match the pruner");
    PruneStep step;
    step.skipped.assign(size_t(batch_), 0.0);
    step.near_ties.assign(size_t(batch_), 0);
    step.plain.assign(size_t(batch_), 0);
    if (n_ == 0) {
        return step; // a rank with no points
    }
    const bool l2 = metric_ == Metric::L2;
    const int64_t n = n_, k = k_, d = d_;
    const double gamma = rounding_factor(d);
    const float* centroids = static_cast<const float*>(a.centroids);
    std::vector<float> drift(static_cast<size_t>(k));
    std::vector<char> moved(static_cast<size_t>(k));
    std::vector<int64_t> survivors, rescored;
    for (int64_t b = 0; b < batch_; b++) {
        State& st = state_[size_t(b)];
        if (st.plain_left > 0) {
            st.plain_left--;
            step.plain[size_t(b)] = 1;
            const Clock::time_point t0 = Clock::now();
            assign_rows(a, b, nullptr, 0, true);
            st.plain_seconds = seconds_since(t0);
            continue;
        }
        const float* c = centroids + b * k * d;
        const float* last = last_centroids_.data() + b * k * d;
        // each centroid's drift (rounded up) and the largest norm
        double c_max = 0, first = 0, runner_up = 0;
        int64_t first_j = -1;
        for (int64_t j = 0; j < k; j++) {
            double norm = 0, shift = 0;
            bool changed = false;
            for (int64_t t = 0; t < d; t++) {
                const double v = c[j * d + t], delta = v - double(last[j * d + t]);
                norm += v * v;
                shift += delta * delta;
                changed |= c[j * d + t] != last[j * d + t];
            }
            c_max = std::max(c_max, std::sqrt(norm));
            drift[size_t(j)] = st.ready ? up(std::sqrt(shift) * (1 + 1e-12)) : 0.f;
            moved[size_t(j)] = changed;
            if (drift[size_t(j)] > first) {
                runner_up = first;
                first = drift[size_t(j)];
                first_j = j;
            } else {
                runner_up = std::max(runner_up, double(drift[size_t(j)]));
            }
        }
        c_max *= 1 + 1e-12;
        if (groups_) {
            const Clock::time_point t0 = Clock::now();
            if (!st.ready) {
                set_groups(a, b, c_max);
                st.ready = true;
                st.bounds_seconds = seconds_since(t0);
                continue;
            }
            const double skipped = assign_with_groups(a, b, c_max, drift, moved);
            if (skipped < 0) {
                back_off(a, b, c_max, step);
                continue;
            }
            step.skipped[size_t(b)] = skipped;
            // Measured, not predicted: the work skipped pays only where the
            // kernel is slower than the bounds' upkeep (with AVX-512 it is
            // twice as fast as with AVX2, and iid data leaves half the
            // work). A pruned call slower than the plain one (or than the
            // call that set the bounds, which did all the work, before a
            // plain one ran) backs off; the labels are the same either way.
            const double reference = st.plain_seconds > 0 ? st.plain_seconds : st.bounds_seconds;
            if (seconds_since(t0) >= reference) {
                wait_before_bounds(st);
            } else {
                st.backoff = 1;
            }
            continue;
        }
        if (!st.ready) {
            assign_rows(a, b, nullptr, c_max);
            st.ready = true;
            continue;
        }
        survivors.clear();
        rescored.clear();
        const int64_t base = b * n;
        for (int64_t i = 0; i < n; i++) {
            const int32_t label = a.labels[base + i];
            if (label < 0) {
                survivors.push_back(i);
                continue;
            }
            const double own_drift = drift[size_t(label)];
            const double other_drift = label == first_j ? runner_up : first;
            const float x_norm = a.x_norms[base + i];
            const double xn = std::sqrt(double(x_norm) * (1 + gamma));
            float& own = own_[size_t(base + i)];
            float& other = other_[size_t(base + i)];
            bool skip;
            double e;
            if (l2) {
                e = gamma * (xn + c_max) * (xn + c_max);
                own = up(double(own) + own_drift);
                other = down(std::max(0.0, double(other) - other_drift));
                skip = double(other) * other - double(own) * own > 2 * e;
            } else {
                e = gamma * xn * c_max;
                own = down(double(own) - xn * own_drift);
                other = up(double(other) + xn * other_drift);
                skip = double(own) - double(other) > 2 * e;
            }
            if (!skip) {
                survivors.push_back(i);
            } else if (moved[size_t(label)]) {
                rescored.push_back(i); // same label, new distance (below)
            }
        }
        // same label, new distance: one dot product each, and a tight bound
        std::vector<float> scores;
        own_scores(a, b, c_max, rescored, scores);
        for (size_t r = 0; r < rescored.size(); r++) {
            a.distances[base + rescored[r]] = scores[r];
        }
        const int64_t m = int64_t(survivors.size());
        if (double(m) >= kFullShare * double(n)) {
            back_off(a, b, c_max, step);
        } else {
            step.near_ties[size_t(b)] = assign_rows(a, b, &survivors, c_max);
            step.skipped[size_t(b)] = n > 0 ? 1.0 - double(m) / double(n) : 0.0;
            st.backoff = 1;
        }
    }
    std::memcpy(last_centroids_.data(), centroids, last_centroids_.size() * sizeof(float));
    return step;
}

} // namespace flashkmeans
