// gather_rows / scatter_rows (CPU): copy chosen rows (subsampling, init
// seeding, the rows an empty-cluster split touches) into a dense block and
// back; a memcpy per row, parallel over rows when there are many.
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

void scatter_rows(const float* rows, int64_t m, int64_t d, const int64_t* ids, float* x) {
#pragma omp parallel for schedule(static) if (m * d > (int64_t(1) << 16))
    for (int64_t i = 0; i < m; i++) {
        std::memcpy(x + ids[i] * d, rows + i * d, sizeof(float) * size_t(d));
    }
}

} // namespace cpu
} // namespace flashkmeans
