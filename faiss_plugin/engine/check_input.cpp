#include "check_input.h"

#include <flashkmeans/errors.h>

#include <omp.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace flashkmeans {

namespace {

/// fp16 / bf16 bits with an all-ones exponent are Inf or NaN.
inline bool finite16(uint16_t bits, DType dtype) {
    const uint16_t exponent = dtype == DType::Float16 ? 0x7c00 : 0x7f80;
    return (bits & exponent) != exponent;
}

/// True when all `count` values are finite.
bool all_finite(const void* x, DType dtype, int64_t count) {
    if (dtype == DType::Float32) {
        const float* f = static_cast<const float*>(x);
        bool ok = true;
        for (int64_t i = 0; i < count; i++) {
            ok &= std::isfinite(f[i]); // no early exit: the loop vectorises
        }
        return ok;
    }
    const uint16_t* h = static_cast<const uint16_t*>(x);
    bool ok = true;
    for (int64_t i = 0; i < count; i++) {
        ok &= finite16(h[i], dtype);
    }
    return ok;
}

} // namespace

void check_points_finite(const void* x, DType dtype, int64_t batch, int64_t n, int64_t d) {
    const int64_t rows = batch * n;
    const size_t esz = dtype_size(dtype);
    const int64_t block = std::max<int64_t>(1, (int64_t(1) << 16) / d); // ~64K values
    const int64_t blocks = (rows + block - 1) / block;
    int64_t first_bad_block = std::numeric_limits<int64_t>::max();
#pragma omp parallel for schedule(static) reduction(min : first_bad_block)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
        if (!all_finite(static_cast<const char*>(x) + size_t(r0) * d * esz, dtype, (r1 - r0) * d)) {
            first_bad_block = std::min(first_bad_block, b);
        }
    }
    if (first_bad_block == std::numeric_limits<int64_t>::max()) {
        return;
    }
    for (int64_t r = first_bad_block * block;; r++) {
        if (!all_finite(static_cast<const char*>(x) + size_t(r) * d * esz, dtype, d)) {
            const std::string where = batch > 1 ? "point " + std::to_string(r % n) + " of problem " +
                                                          std::to_string(r / n)
                                                : "point " + std::to_string(r);
            throw InputError("input contains NaN or Inf values (" + where + ")");
        }
    }
}

} // namespace flashkmeans
