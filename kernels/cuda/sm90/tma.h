// TMA tensor maps (descriptors) of the points and centroids, as the Hopper
// kernels read them: boxes of 128 bytes of a row by box_rows rows, written to
// shared memory in the 128-byte swizzle that wgmma's descriptors expect.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// Tensor map of a rows x d row-major matrix of T (float, __half or
/// __nv_bfloat16), read in boxes of box_rows rows by 128 bytes, written to
/// shared memory in the 128-byte swizzle. Throws KernelError if the driver
/// refuses it.
template <typename T>
CUtensorMap make_map(const void* base, int64_t rows, int64_t d, int box_rows);

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
