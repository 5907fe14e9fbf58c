// gather_rows and sum_values (CPU): the two small host helpers of the engine.
// gather_rows copies sampled rows (subsampling, init seeding) into a dense
// block; it is a memcpy per row, parallel over rows when there are many.
// sum_values adds the per-point distances into the objective in double, in
// index order on one thread, so the objective is the same on every run and
// every thread count (FAISS's own loop sums in float; double loses nothing).
#include "cpu_kernels.h"

#include <cstring>

namespace flashkmeans {
namespace cpu {

void gather_rows(const float* x, int64_t d, const int64_t* ids, int64_t m, float* out) {
#pragma omp parallel for schedule(static) if (m * d > (int64_t(1) << 16))
    for (int64_t i = 0; i < m; i++) {
        std::memcpy(out + i * d, x + ids[i] * d, sizeof(float) * size_t(d));
    }
}

double sum_values(const float* values, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += values[i];
    }
    return s;
}

} // namespace cpu
} // namespace flashkmeans
