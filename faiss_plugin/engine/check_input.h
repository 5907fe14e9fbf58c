// Checks of the caller's host data that run before any work.
#pragma once

#include <flashkmeans/kernels.h>

#include <cstdint>

namespace flashkmeans {

/** Throws InputError naming the first point (and problem, for batch > 1)
 * with a NaN or Inf in host points x (batch x n x d, in `dtype`). One pass,
 * in parallel over blocks of rows: this is the only check of the points, so
 * it runs at memory speed on large inputs. */
void check_points_finite(const void* x, DType dtype, int64_t batch, int64_t n, int64_t d);

} // namespace flashkmeans
