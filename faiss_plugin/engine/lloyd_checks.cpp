// The engine's checks of its inputs: given centroids, and the points'
// squared norms (finite, and small enough for float32 distances), which name
// the first bad point only on the error path.
#include "lloyd.h"

#include <flashkmeans/errors.h>

#include "check_input.h"

#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace flashkmeans {

using namespace kernels;

namespace {

// Distances are ||x||^2 + ||c||^2 - 2 x.c in float32. A centroid is a mean
// of points, so ||c||^2 <= max ||x||^2, and every term stays finite while the
// squared norms sum to at most FLT_MAX / 4. Past that the distances become
// inf or NaN and every label is arbitrary.
const double kMaxSquaredNorms = double(std::numeric_limits<float>::max()) / 4;

std::string format(const char* fmt, ...) {
    char buf[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);
    return buf;
}

} // namespace

void check_given_centroids(const float* c, int64_t m, int64_t d, const char* what) {
    for (int64_t j = 0; j < m; j++) {
        double norm = 0;
        for (int64_t t = 0; t < d; t++) {
            const double v = c[j * d + t];
            if (!std::isfinite(v)) {
                throw InputError(
                        format("%s contain NaN's or Inf's (centroid %" PRId64 ")", what, j));
            }
            norm += v * v;
        }
        if (!(norm <= kMaxSquaredNorms)) {
            throw InputError(format("%s too large for float32 distances: centroid %" PRId64
                                    " has squared norm %g, above %g",
                                    what, j, norm, kMaxSquaredNorms));
        }
    }
}

void Lloyd::queue_norm_sums(const float* norms, int64_t rows, size_t at) {
    // with the reduction the iteration statistics use: one launch, and its
    // 3 B sums to pinned memory in stream order (the rest of stats_ is the
    // iteration's, unwritten yet)
    const int64_t B = data_.batch;
    iteration_stats(place_, norms, rows, nullptr, 1, B, stats_.get(), stats_scratch_.get());
    copy_to_pinned(place_, stats_host_.get() + at, stats_.get(), size_t(3) * B * sizeof(double));
}

std::vector<double> Lloyd::read_norm_sums(size_t at) const {
    std::vector<double> sums(static_cast<size_t>(data_.batch));
    for (size_t b = 0; b < sums.size(); b++) {
        sums[b] = stats_host_.get()[at + 3 * b];
    }
    return sums;
}

std::string Lloyd::first_bad_row(const float* norms, int64_t rows, int64_t b,
                                 const char* row) const {
    // the error path only: problem b's norms come to the host
    std::vector<float> h(static_cast<size_t>(rows));
    copy_to_host(place_, h.data(), norms + size_t(b) * rows, size_t(rows) * sizeof(float));
    int64_t i = 0;
    while (i + 1 < rows && std::isfinite(h[size_t(i)]) && h[size_t(i)] <= kMaxSquaredNorms) {
        i++;
    }
    return data_.batch > 1 ? format("%s %" PRId64 " of problem %" PRId64, row, i, b)
                           : format("%s %" PRId64, row, i);
}

void Lloyd::check_points() const {
    if (points_check_pending_) {
        place_sync(place_);
        check_points_sums();
    }
}

void Lloyd::check_points_sums() const {
    // This is also the check for NaN and Inf: any makes its point's squared
    // norm, and so the sum, NaN or Inf. A host pass over the points is then
    // needed only to name the point, on the error path.
    points_check_pending_ = false;
    const std::vector<double> mine = read_norm_sums(0);
    // over all ranks: a bad point anywhere stops every rank at once
    const std::vector<double> sums = ranks_ ? ranks_->sum(mine) : mine;
    for (int64_t b = 0; b < data_.batch; b++) {
        const double sum = sums[size_t(b)];
        if (!std::isfinite(sum) && std::isfinite(mine[size_t(b)])) {
            throw InputError(format("input contains NaN or Inf values on rank(s) other than %d",
                                    ranks_->comm().rank()));
        }
        if (!std::isfinite(sum)) {
            throw_not_finite(b);
        }
        if (!(sum <= kMaxSquaredNorms)) {
            throw InputError(format("points too large for float32 distances: their squared norms "
                                    "sum to %g (problem %" PRId64
                                    "), above %g; scale the data down",
                                    sum, b, kMaxSquaredNorms));
        }
    }
}

void Lloyd::check_centroids(const char* what) {
    // the points' check on the centroids' norms: NaN or Inf makes a problem's
    // sum NaN or Inf; a centroid too large makes it exceed the bound. One
    // host sync reads these sums and the points' (when still pending).
    const int64_t k = cfg_.k;
    row_norms(place_, centroids_.get(), DType::Float32, k, dp_, c_norms_.get(), data_.batch);
    prepared_ = false; // c_norms_ now holds fp32 norms, not the assignment's
    const size_t at = size_t(3) * data_.batch;
    queue_norm_sums(c_norms_.get(), k, at);
    place_sync(place_);
    if (points_check_pending_) {
        check_points_sums(); // the points first, as if checked on arrival
    }
    const std::vector<double> sums = read_norm_sums(at);
    for (int64_t b = 0; b < data_.batch; b++) {
        if (!(std::isfinite(sums[size_t(b)]) && sums[size_t(b)] <= kMaxSquaredNorms)) {
            throw InputError(format("%s contain NaN's or Inf's, or values too large for float32 "
                                    "distances (%s)",
                                    what, first_bad_row(c_norms_.get(), k, b, "centroid").c_str()));
        }
    }
}

void Lloyd::throw_not_finite(int64_t b) const {
    if (!data_.x_on_device) {
        // throws naming the point
        check_points_finite(data_.x, data_.dtype, data_.batch, data_.n, data_.d);
    }
    // on the device, in the compute dtype (fp32 values beyond fp16's range
    // become Inf there), or squares beyond float32's: the first such norm
    throw InputError(format("input contains NaN or Inf values, or values too large for %s "
                            "distances (%s); scale the data down",
                            dtype_name(cfg_.compute_dtype),
                            first_bad_row(x_norms_.get(), data_.n, b, "point").c_str()));
}

} // namespace flashkmeans
