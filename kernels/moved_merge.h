// The moved-centroid filter's merge rule (kernels::merge_moved), shared by
// its CPU and CUDA implementations: a point whose centroid did not move
// keeps the better of its own (label, distance) and the best moved
// centroid's, by (distance, index).
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define FK_HOST_DEVICE __host__ __device__
#else
#define FK_HOST_DEVICE
#endif

namespace flashkmeans {
namespace moved_merge {

/// Whether the candidate takes the point: L2 a smaller distance, IP a larger
/// one, the lower index on equal ones.
FK_HOST_DEVICE inline bool candidate_wins(bool l2, int32_t own, float d_own, int32_t cand,
                                          float d_cand) {
    return l2 ? (d_cand < d_own || (d_cand == d_own && cand < own))
              : (d_cand > d_own || (d_cand == d_own && cand < own));
}

/// Whether the two distances are within rel_tol (||x||^2 + ||c_own||^2 +
/// ||c_cand||^2) of each other: FlashAssign, which ranks by its own score,
/// may have ranked them the other way.
FK_HOST_DEVICE inline bool near_tie(double rel_tol, float x_norm, float c_own, float c_cand,
                                    float d_own, float d_cand) {
    const double tol = rel_tol * (double(x_norm) + c_own + c_cand);
    return fabs(double(d_cand) - double(d_own)) <= tol;
}

} // namespace moved_merge
} // namespace flashkmeans
