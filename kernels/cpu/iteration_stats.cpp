// iteration_stats (CPU): the per-problem sums one Lloyd iteration reports
// (objective, sum and sum of squares of the cluster sizes), in double and in
// index order on one thread, so they are the same on every run and every
// thread count (FAISS's own loop sums the objective in float; double loses
// nothing). O(n + k) per problem: negligible next to the assignment.
#include "cpu_kernels.h"

namespace flashkmeans {
namespace cpu {

void iteration_stats(const float* values, int64_t n, const int32_t* counts, int64_t k,
                     int64_t batch, double* out) {
    for (int64_t b = 0; b < batch; b++) {
        double s = 0, c = 0, c2 = 0;
        for (int64_t i = 0; i < n; i++) {
            s += values[b * n + i];
        }
        for (int64_t j = 0; counts != nullptr && j < k; j++) {
            const double h = counts[b * k + j];
            c += h;
            c2 += h * h;
        }
        out[3 * b] = s;
        out[3 * b + 1] = c;
        out[3 * b + 2] = c2;
    }
}

} // namespace cpu
} // namespace flashkmeans
