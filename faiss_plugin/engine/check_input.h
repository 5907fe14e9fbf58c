// Checks of the caller's data that run before any work.
#pragma once

#include <flashkmeans/kernels.h>

#include <cstdint>

namespace flashkmeans {

/** Throws InputError naming the first point (and problem, for batch > 1)
 * with a NaN or Inf in host points x (batch x n x d, in `dtype`). One pass,
 * in parallel over blocks of rows: this is the only check of the points, so
 * it runs at memory speed on large inputs. */
void check_points_finite(const void* x, DType dtype, int64_t batch, int64_t n, int64_t d);

/** The same for points x (n x d, in `dtype`) in the place's memory, checked
 * there: their squared norms and one sum of them, read by the host (a NaN
 * or Inf makes the sum so). The error names the first such point. */
void check_place_points_finite(const Place& place, const void* x, DType dtype, int64_t n,
                               int64_t d);

} // namespace flashkmeans
