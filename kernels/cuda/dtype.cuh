// Element types of the points on the device, and the one place where a
// runtime DType becomes a C++ type (dispatch_dtype). Shared by the CUDA kernel
// files; device code only reads through these helpers, so every kernel
// converts fp16/bf16 to fp32 the same way (exactly: both are subsets of fp32).
#pragma once

#include <flashkmeans/kernels.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

/// Loads 4 consecutive elements (16 bytes of fp32, 8 bytes of fp16/bf16) as
/// fp32; `p` must be aligned to 4 elements.
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 load4(const __half* p) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
    return make_float4(a.x, a.y, b.x, b.y);
}
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
    const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
    return make_float4(a.x, a.y, b.x, b.y);
}

/// fp32 to T, rounding to nearest even (fp16/bf16).
template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}
template <typename T>
__device__ __forceinline__ void store_as(T* p, float v) { *p = from_float<T>(v); }

/// 4 consecutive elements with the rounding of store_as; `p` aligned to 4.
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
template <typename T2>
__device__ __forceinline__ uint32_t as_u32(T2 v) { return *reinterpret_cast<const uint32_t*>(&v); }
__device__ __forceinline__ void store4(__half* p, float4 v) {
    *reinterpret_cast<uint2*>(p) =
            make_uint2(as_u32(__floats2half2_rn(v.x, v.y)), as_u32(__floats2half2_rn(v.z, v.w)));
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, float4 v) {
    *reinterpret_cast<uint2*>(p) = make_uint2(as_u32(__floats2bfloat162_rn(v.x, v.y)),
                                              as_u32(__floats2bfloat162_rn(v.z, v.w)));
}

/// Calls f(T{}) with T = float, __half or __nv_bfloat16 for `dtype`.
template <typename F>
void dispatch_dtype(DType dtype, F&& f) {
    switch (dtype) {
        case DType::Float32:
            f(float{});
            return;
        case DType::Float16:
            f(__half{});
            return;
        case DType::BFloat16:
            f(__nv_bfloat16{});
            return;
    }
    throw KernelError("flashkmeans: unknown dtype");
}

} // namespace cuda
} // namespace flashkmeans
