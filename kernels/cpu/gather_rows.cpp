// gather_rows (CPU): copies sampled rows (subsampling, init seeding) into a
// dense block; a memcpy per row, parallel over rows when there are many.
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

} // namespace cpu
} // namespace flashkmeans
