// For tests only: the update's radix sort (radix_sort.cuh) and CUB's public
// cub::DeviceRadixSort side by side on host arrays, so that a test built by the
// host compiler can compare their orders (tests/gpu/test_cub_sort_policy.cpp).
// Plain C++: no CUDA or CUB header.
#pragma once

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

enum class SortBy {
    Update,        ///< radix_sort: digits of sort_digit_bits(end_bit - begin_bit, true)
    CubPublicApi,  ///< cub::DeviceRadixSort::SortPairs, or SortKeys when there are no values
};

/// Sorts the m host keys (with their values when `values` is non-null) in
/// place, stable on the key bits [begin_bit, end_bit), on the current device;
/// returns when done. Throws KernelError on a CUDA error.
void radix_sort_for_test(SortBy by, uint32_t* keys, int32_t* values, uint32_t m, int begin_bit,
                         int end_bit);

} // namespace update
} // namespace cuda
} // namespace flashkmeans
