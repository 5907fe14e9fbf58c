// The exact (3xTF32) kernel's centroids, split once per call into tf32 high
// and low parts: one pass over batch * k * d values, each read once and
// written twice.
#include "../cuda_check.h"
#include "../flash_assign_mainloop.cuh"
#include "launch.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

namespace {
/// The exact kernel's centroid split: hi[i] + lo[i] == c[i] to 2^-22 |c[i]|,
/// both tf32 values (low 13 mantissa bits zero) stored as fp32.
__global__ void split_tf32_kernel(const float* __restrict__ c, int64_t count, float* hi, float* lo) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        uint32_t h, l;
        fa::split_tf32(__ldg(c + i), h, l);
        hi[i] = __uint_as_float(h);
        lo[i] = __uint_as_float(l);
    }
}
} // namespace

void split_tf32(const float* c, int64_t count, float* hi, float* lo, int sms, cudaStream_t stream) {
    const int64_t blocks = (count + 255) / 256;
    split_tf32_kernel<<<unsigned(blocks < 4 * sms ? blocks : 4 * sms), 256, 0, stream>>>(c, count,
                                                                                       hi, lo);
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
