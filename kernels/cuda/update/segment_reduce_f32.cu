// The update's reduce step (segment_reduce.cuh) for float points.
#include "segment_reduce.cuh"

namespace flashkmeans {
namespace cuda {
namespace update {

template void segment_reduce<float>(dim3 grid, const ReduceParams& rp, bool v8, bool vec4, int rows,
                                    cudaStream_t stream);

} // namespace update
} // namespace cuda
} // namespace flashkmeans
