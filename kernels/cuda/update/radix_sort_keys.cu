// The update's keys-only radix sort of packed keys (key << shift | point):
// CUB's kernels for the 6-, 7- and 8-bit digit policies (sort_policy.cuh);
// and CUB's public keys-only sort, the tests' reference.
#include "radix_sort.cuh"
#include "sort_policy.cuh"

namespace flashkmeans {
namespace cuda {
namespace update {

cudaError_t radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                       cub::DoubleBuffer<cub::NullType>& values, uint32_t m, int begin_bit,
                       int end_bit, bool sort6, cudaStream_t stream) {
    return sort_with_digit_policy(tmp, bytes, keys, values, m, begin_bit, end_bit, sort6, stream);
}

cudaError_t cub_public_radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                                  cub::DoubleBuffer<cub::NullType>&, uint32_t m, int begin_bit,
                                  int end_bit, cudaStream_t stream) {
    return cub::DeviceRadixSort::SortKeys(tmp, bytes, keys, m, begin_bit, end_bit, stream);
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
