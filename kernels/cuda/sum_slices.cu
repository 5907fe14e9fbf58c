// sum_slices (CUDA): the rank-order combine of partial sums, after an
// all-gather has put every rank's partials side by side on the device.
// One thread per element adds its slices in slice order, so the bits depend
// on the slice count alone, never on the grid. Traffic: nslices * count
// values read, count written; once per iteration on k x d values, far below
// the assignment's cost.
#include "cuda_check.h"
#include "cuda_kernels.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void sum_slices_kernel(const char* __restrict__ slices, int64_t nslices,
                                  size_t slice_bytes, int64_t count, T* __restrict__ out) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        T s = reinterpret_cast<const T*>(slices)[i];
        for (int64_t r = 1; r < nslices; r++) {
            s += reinterpret_cast<const T*>(slices + size_t(r) * slice_bytes)[i];
        }
        out[i] = s;
    }
}

template <typename T>
void launch(const char* slices, int64_t nslices, size_t slice_bytes, int64_t count, void* out,
            cudaStream_t stream) {
    const int64_t blocks = (count + kThreads - 1) / kThreads;
    const unsigned grid = unsigned(blocks < (int64_t(1) << 20) ? blocks : (int64_t(1) << 20));
    sum_slices_kernel<T><<<grid, kThreads, 0, stream>>>(slices, nslices, slice_bytes, count,
                                                        static_cast<T*>(out));
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace

void sum_slices(const Place& p, const void* slices, int64_t nslices, size_t slice_bytes,
                kernels::SumType type, int64_t count, void* out) {
    if (count == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    const char* s = static_cast<const char*>(slices);
    switch (type) {
        case kernels::SumType::Float32:
            launch<float>(s, nslices, slice_bytes, count, out, stream);
            break;
        case kernels::SumType::Int32:
            launch<int32_t>(s, nslices, slice_bytes, count, out, stream);
            break;
        case kernels::SumType::Float64:
            launch<double>(s, nslices, slice_bytes, count, out, stream);
            break;
    }
}

} // namespace cuda
} // namespace flashkmeans
