// The squared L2 norm of one row, in the one summation order that row_norms
// uses, for every kernel whose norms must have the same bits: row_norms
// itself and finalize, which writes the norms the next assignment reads
// (so an iteration's norms do not depend on which of the two wrote them).
// fp32 fmaf accumulation, never fp16 (norms overflow at 65504).
#pragma once

#include "dtype.cuh"

#include <cstdint>

namespace flashkmeans {
namespace cuda {

/// Rows shorter than this get one thread each: a warp would leave most
/// lanes idle.
constexpr int64_t kWarpNormMinD = 64;

/// Whether a row of d elements is summed by a warp. Decided on d rounded up
/// to 8, the widest zero padding the engine gives rows (16 bytes of fp16):
/// a padded row then takes the same path as the unpadded one, and its zeros
/// come last in some lane's sum, so padding never changes a norm's bits.
__host__ __device__ inline bool warp_norm_rows(int64_t d) {
    return (d + 7) / 8 * 8 >= kWarpNormMinD;
}

/// Whether rows of `x` are read 4 elements at a time (aligned 4-element groups).
template <typename T>
__host__ __device__ inline bool rows_vec4(const T* x, int64_t d) {
    return d % 4 == 0 && reinterpret_cast<uintptr_t>(x) % (4 * sizeof(T)) == 0;
}

/// One thread, in-order sum (the reference order; short rows).
template <typename T>
__device__ __forceinline__ float serial_row_norm(const T* xi, int64_t d) {
    float s = 0.0f;
    for (int64_t t = 0; t < d; ++t) {
        const float v = to_float(xi[t]);
        s = fmaf(v, v, s);
    }
    return s;
}

/// The fixed xor-shuffle tree that adds the 32 lane sums of a warp; every
/// lane gets the total.
__device__ __forceinline__ float warp_sum_xor(float s) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        s += __shfl_xor_sync(0xffffffffu, s, off);
    }
    return s;
}

/// One warp: lane l sums elements 4 l + 128 j .. + 3 in order, then
/// warp_sum_xor: deterministic, and every lane gets the total. The order is
/// the same whether the row is read 4 elements at a time (kVec4) or one, so
/// a row's norm does not depend on its alignment or on zero padding.
/// (finalize_centroids follows the same lane order on the values it holds.)
template <typename T, bool kVec4>
__device__ __forceinline__ float warp_row_norm(const T* xi, int64_t d, int lane) {
    float s = 0.0f;
    for (int64_t t = 4 * lane; t < d; t += 128) {
        if (kVec4) {
            const float4 v = load4(xi + t);
            s = fmaf(v.x, v.x, s);
            s = fmaf(v.y, v.y, s);
            s = fmaf(v.z, v.z, s);
            s = fmaf(v.w, v.w, s);
        } else {
            for (int64_t u = t; u < t + 4 && u < d; ++u) {
                const float v = to_float(xi[u]);
                s = fmaf(v, v, s);
            }
        }
    }
    return warp_sum_xor(s);
}

} // namespace cuda
} // namespace flashkmeans
