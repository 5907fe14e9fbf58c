// The update's radix sort (step 2; the policy and its reasons in
// sort_policy.cuh). Declared here for the files that only call it; defined
// once per value type in radix_sort_pairs.cu and radix_sort_keys.cu, since
// CUB's kernels for three digit policies are the slowest compiles of the
// update and build in parallel there. Beside each, the same sort by CUB's
// public API, the reference of the tests (radix_sort_for_test.h).
#pragma once

#include <cub/util_type.cuh>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

/// Stable sort of keys on bits [begin_bit, end_bit), with their int32 ids,
/// in digits of sort_digit_bits(end_bit - begin_bit, sort6); tmp == nullptr:
/// sets bytes to the temporary storage needed.
cudaError_t radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                       cub::DoubleBuffer<int32_t>& values, uint32_t m, int begin_bit, int end_bit,
                       bool sort6, cudaStream_t stream);
/// The same, keys only (the packed keys: key << shift | point).
cudaError_t radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                       cub::DoubleBuffer<cub::NullType>& values, uint32_t m, int begin_bit,
                       int end_bit, bool sort6, cudaStream_t stream);

/// cub::DeviceRadixSort::SortPairs with the same arguments. Its kernels are
/// those of radix_sort's 8-bit digits, so it compiles no more of them.
cudaError_t cub_public_radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                                  cub::DoubleBuffer<int32_t>& values, uint32_t m, int begin_bit,
                                  int end_bit, cudaStream_t stream);
/// cub::DeviceRadixSort::SortKeys, likewise.
cudaError_t cub_public_radix_sort(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                                  cub::DoubleBuffer<cub::NullType>& values, uint32_t m,
                                  int begin_bit, int end_bit, cudaStream_t stream);

} // namespace update
} // namespace cuda
} // namespace flashkmeans
