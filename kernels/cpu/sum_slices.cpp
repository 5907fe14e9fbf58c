// sum_slices (CPU): the rank-order combine of partial sums. Each element adds
// its slices in slice order; threads split the elements, never a sum, so the
// bits do not depend on the thread count.
#include "cpu_kernels.h"

#include <cstdint>

namespace flashkmeans {
namespace cpu {

namespace {

template <typename T>
void sum_in_order(const char* slices, int64_t nslices, size_t slice_bytes, int64_t count, T* out) {
#pragma omp parallel for schedule(static) if (count * nslices > (int64_t(1) << 16))
    for (int64_t i = 0; i < count; i++) {
        T s = reinterpret_cast<const T*>(slices)[i];
        for (int64_t r = 1; r < nslices; r++) {
            s += reinterpret_cast<const T*>(slices + size_t(r) * slice_bytes)[i];
        }
        out[i] = s;
    }
}

} // namespace

void sum_slices(const void* slices, int64_t nslices, size_t slice_bytes, kernels::SumType type,
                int64_t count, void* out) {
    const char* s = static_cast<const char*>(slices);
    switch (type) {
        case kernels::SumType::Float32:
            sum_in_order(s, nslices, slice_bytes, count, static_cast<float*>(out));
            break;
        case kernels::SumType::Int32:
            sum_in_order(s, nslices, slice_bytes, count, static_cast<int32_t*>(out));
            break;
        case kernels::SumType::Float64:
            sum_in_order(s, nslices, slice_bytes, count, static_cast<double*>(out));
            break;
    }
}

} // namespace cpu
} // namespace flashkmeans
