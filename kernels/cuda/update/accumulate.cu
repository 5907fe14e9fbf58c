// The update's accumulate mode (UpdateArgs::accumulate, points streamed in
// chunks): the chunk's sums, weight sums and counts, reduced apart into the
// workspace by the ordinary steps, are added to the running ones. One thread
// per float, no atomics: chunk after chunk in the order the caller streams
// them, the result depends on the chunks alone, never on the run. Memory
// traffic: 3 k d floats per chunk, small beside the chunk's own points.
#include "update_kernels.cuh"

#include "../cuda_check.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

__global__ void accumulate_kernel(AccumulateParams p) {
    const int64_t rows = p.batch * p.k;
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * p.d; i += stride) {
        const int64_t j = (i / p.d) % p.k;
        if (j >= p.k_begin) {
            p.sums[i] += p.chunk_sums[i];
        }
    }
    for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < rows; r += stride) {
        if (r % p.k >= p.k_begin) {
            p.weight_sums[r] += p.chunk_weight_sums[r];
        }
        if (p.counts != nullptr) {
            p.counts[r] += p.chunk_counts[r]; // every cluster: the histogram
        }
    }
}

} // namespace

void accumulate_chunk(const AccumulateParams& p, cudaStream_t stream) {
    const int64_t elems = p.batch * p.k * p.d;
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((elems + threads - 1) / threads, 4096);
    accumulate_kernel<<<unsigned(blocks > 0 ? blocks : 1), threads, 0, stream>>>(p);
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
