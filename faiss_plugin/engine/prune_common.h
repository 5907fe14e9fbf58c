// What the two kinds of bounds of exact pruning (prune.h) share: the sizes of
// the calls, the rounding bound of a score, and rounding to float in a given
// direction.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace flashkmeans {
namespace prune_detail {

/// Survivors go to the kernel this many at a time: FAISS's block of points,
/// so the scratch copy stays small and every call has the blocks' shape.
inline constexpr int64_t kRowsPerCall = 4096;
/// Past this share of survivors the problem is assigned in place, in one
/// call over all its points: gathering them would cost more than it saves.
inline constexpr double kFullShare = 0.9;
/// The longest run of plain calls after pruning did not pay: data whose
/// bounds start to hold later in a run (centroids settling) get them back.
inline constexpr int kMaxBackoff = 8;
/// Group bounds: at most this many groups (4 bytes per point each).
inline constexpr int64_t kMaxGroups = 64;

/// The rounding bound's factor: an fp32 dot product of d terms, summed in any
/// order (with or without FMA), is within gamma_d sum |x_t c_t| of the exact
/// one, gamma_d ~ d 2^-24; two more roundings form the score. Doubled.
inline double rounding_factor(int64_t d) {
    return 2.0 * double(d + 2) * std::ldexp(1.0, -24);
}

/// v as a float no smaller (up) or no larger (down) than v.
inline float up(double v) {
    float f = float(v);
    return double(f) < v ? std::nextafter(f, std::numeric_limits<float>::infinity()) : f;
}
inline float down(double v) {
    float f = float(v);
    return double(f) > v ? std::nextafter(f, -std::numeric_limits<float>::infinity()) : f;
}

/// A float no larger (down) or no smaller (up) than v, within 2^-22
/// relative: cheaper than up()/down() in the loops over every group.
inline float down_fast(double v) {
    return float(v - std::abs(v) * 0x1p-23 - 0x1p-126);
}
inline float up_fast(double v) {
    return float(v + std::abs(v) * 0x1p-23 + 0x1p-126);
}

/// The rounding bound of one point's score (see rounding_factor).
inline double score_error(bool l2, double gamma, float x_norm, double c_max) {
    const double xn = std::sqrt(double(x_norm) * (1 + gamma));
    return l2 ? gamma * (xn + c_max) * (xn + c_max) : gamma * xn * c_max;
}

} // namespace prune_detail
} // namespace flashkmeans
