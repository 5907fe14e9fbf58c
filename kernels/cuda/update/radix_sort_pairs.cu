// The update's radix sort of (key, point id) pairs: CUB's kernels for the
// 6-, 7- and 8-bit digit policies (sort_policy.cuh); and CUB's public sort of
// pairs, the tests' reference.
#include "radix_sort.cuh"
#include "sort_policy.cuh"

namespace flashkmeans {
namespace cuda {
namespace update {

cudaError_t radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                       cub::DoubleBuffer<int32_t>& values, uint32_t m, int begin_bit, int end_bit,
                       bool sort6, cudaStream_t stream) {
    return sort_with_digit_policy(tmp, bytes, keys, values, m, begin_bit, end_bit, sort6, stream);
}

cudaError_t cub_public_radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                                  cub::DoubleBuffer<int32_t>& values, uint32_t m, int begin_bit,
                                  int end_bit, cudaStream_t stream) {
    return cub::DeviceRadixSort::SortPairs(tmp, bytes, keys, values, m, begin_bit, end_bit, stream);
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
