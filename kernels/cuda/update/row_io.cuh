// Rows of x and of partial sums as the reduce and combine steps of the update
// load and store them: VEC consecutive columns of one row per lane, as fp32.
#pragma once

#include "../dtype.cuh"

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

template <int VEC>
struct Vec {
    float v[VEC];
};

template <typename T, int VEC>
__device__ __forceinline__ Vec<VEC> load_vec(const T* p) {
    Vec<VEC> r;
    if constexpr (VEC == 4) {
        const float4 f = load4(p);
        r.v[0] = f.x;
        r.v[1] = f.y;
        r.v[2] = f.z;
        r.v[3] = f.w;
    } else {
        r.v[0] = to_float(p[0]);
    }
    return r;
}

/// 16 bytes of a row read once: `use` ? *p : zeros. The non-coherent path
/// without L1 allocation (x is read-only here and each row is read once).
__device__ __forceinline__ uint4 load_once16(const void* p, bool use) {
    uint4 r;
    asm("{\n\t.reg .pred q;\n\t"
        "setp.ne.b32 q, %5, 0;\n\t"
        "mov.b32 %0, 0; mov.b32 %1, 0; mov.b32 %2, 0; mov.b32 %3, 0;\n\t"
        "@q ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n\t}"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p), "r"(int(use)));
    return r;
}

/// 8 fp16/bf16 elements of one 16-byte load (the v8 update variants keep
/// the loaded rows packed, 4 registers each, and convert when adding).
template <typename T>
__device__ __forceinline__ Vec<8> unpack8(const uint4 u) {
    static_assert(sizeof(T) == 2, "16-byte loads of 8 elements are for fp16/bf16");
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    Vec<8> r;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const T* h = reinterpret_cast<const T*>(&w[i]);
        r.v[2 * i] = to_float(h[0]);
        r.v[2 * i + 1] = to_float(h[1]);
    }
    return r;
}

template <int VEC>
__device__ __forceinline__ void store_vec(float* p, const float (&a)[VEC]) {
    if constexpr (VEC == 8) {
        *reinterpret_cast<float4*>(p) = make_float4(a[0], a[1], a[2], a[3]);
        *reinterpret_cast<float4*>(p + 4) = make_float4(a[4], a[5], a[6], a[7]);
    } else if constexpr (VEC == 4) {
        *reinterpret_cast<float4*>(p) = make_float4(a[0], a[1], a[2], a[3]);
    } else {
        p[0] = a[0];
    }
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
