// Finalize (CUDA): centroids[j] = sums[j] * (1 / weight_sums[j]) for
// j >= k_begin (FAISS's rounding: a multiply by the float reciprocal, not a
// division), 0 for empty clusters (weight 0; counted in n_empty, to be split),
// and max_shift = max over non-empty j of ||c_new - c_old||^2 (the CPU kernel's
// definition: empty rows are not counted). Optionally the next assignment's
// inputs in the same pass (the rows rounded to fp16/bf16 and their norms),
// which saves the engine two launches per iteration. Also FAISS's
// post-processing (spherical renormalisation, rounding to integers).
//
// Memory traffic: k*d sums and old centroids read once, k*d centroids written
// once, k weights; tiny next to the update, one launch.
//
// Why this shape: one warp per centroid row, lanes across d, so every access
// is coalesced whatever k and d are. The shift of a row is summed in double
// per lane and then by a fixed xor-shuffle tree, so it is deterministic; the
// per-problem maximum uses an integer atomicMax on the bit pattern of the
// non-negative float, which orders like the float and, being a max, does not
// depend on the order of the updates: deterministic, no float atomics.
// n_empty is an integer atomicAdd (exact). The plain per-row loop is its own
// reference; the tests compare it with the CPU kernel.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"
#include "launch_after.cuh"
#include "row_norm.cuh"

#include <cuda_runtime.h>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kWarps = 8;

struct FinalizeParams {
    const float* sums;
    const float* weight_sums;
    int64_t k, d, k_begin, batch;
    float* centroids;
    int32_t* n_empty;
    float* max_shift;
    void* typed;   // null: norms of the fp32 rows
    float* norms;  // null: none
    bool vec4;     // rows_vec4 of the rows whose norms are taken (row_norms' lane order)
    bool wide;     // vec4, and sums / centroids 16-byte aligned: float4 accesses
};

/// The new value of an element from its sum and old value; its part of the
/// shift goes into `shift`.
__device__ __forceinline__ float new_value(float sum, float old, float inv_w, double& shift) {
    const float v = sum * inv_w;
    const double delta = double(v) - double(old);
    shift += delta * delta;
    return v;
}

/// The value the next assignment sees (rounded to T) and its norm adds.
template <typename T>
__device__ __forceinline__ float as_seen(const T* typed, float v) {
    return typed != nullptr ? to_float(from_float<T>(v)) : v;
}

/// Element t of a row, one at a time: the new value into the centroids (and
/// typed copy); returns what the norm adds.
template <typename T>
__device__ __forceinline__ float finalize_element(const float* s, float* c, T* typed, int64_t t,
                                                  float inv_w, double& shift) {
    const float v = new_value(s[t], c[t], inv_w, shift);
    c[t] = v;
    if (typed != nullptr) {
        store_as(typed + t, v);
    }
    return as_seen(typed, v);
}

/// T: the element type of `typed` (float when there is none). The norm of a
/// row is summed in row_norms' order (row_norm.cuh) on the values the lanes
/// hold, so it has row_norms' bits without reading the row back: short rows
/// (warp_norm_rows) by lane 0 alone, in order; longer ones lane l takes
/// 4 l + 128 j .. + 3, then warp_sum_xor.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32) finalize_kernel(const FinalizeParams p) {
    allow_next_grid();  // the iteration's statistics (launch_after) may start
    const int lane = threadIdx.x & 31;
    const int64_t live = p.k - p.k_begin;  // rows per problem that are updated
    const int64_t rows = live * p.batch;
    const int64_t warps = int64_t(gridDim.x) * kWarps;
    const int64_t d = p.d;
    const bool serial = !warp_norm_rows(d);
    for (int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows; r += warps) {
        const int64_t b = r / live;
        const int64_t row = b * p.k + p.k_begin + r % live;
        const float w = p.weight_sums[row];
        float* c = p.centroids + row * d;
        T* typed = p.typed != nullptr ? static_cast<T*>(p.typed) + row * d : nullptr;
        if (w == 0.0f) {
            for (int64_t t = lane; t < d; t += 32) {
                c[t] = 0.0f;
                if (typed != nullptr) {
                    store_as(typed + t, 0.0f);
                }
            }
            if (lane == 0 && p.n_empty != nullptr) {
                atomicAdd(p.n_empty + b, 1);
            }
            if (lane == 0 && p.norms != nullptr) {
                p.norms[row] = 0.0f;  // what row_norms gives for a zero row
            }
            continue;
        }
        // FAISS: float norm = 1 / hassign[ci]; __frcp_rn is that correctly
        // rounded reciprocal, without the division subroutine
        const float inv_w = __frcp_rn(w);
        const float* s = p.sums + row * d;
        double shift = 0.0;
        float nr = 0.0f;
        if (serial) {
            if (lane == 0) {
                for (int64_t t = 0; t < d; ++t) {
                    const float v = finalize_element(s, c, typed, t, inv_w, shift);
                    nr = fmaf(v, v, nr);
                }
            }
        } else {
            for (int64_t t = 4 * lane; t < d; t += 128) {
                float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // past d: zeros, which add nothing
                if (p.vec4 && p.wide) {  // 16-byte loads and stores of the 4 elements
                    const float4 s4 = *reinterpret_cast<const float4*>(s + t);
                    const float4 c4 = *reinterpret_cast<const float4*>(c + t);
                    float4 v4;  // in element order (each adds to the shift)
                    v4.x = new_value(s4.x, c4.x, inv_w, shift);
                    v4.y = new_value(s4.y, c4.y, inv_w, shift);
                    v4.z = new_value(s4.z, c4.z, inv_w, shift);
                    v4.w = new_value(s4.w, c4.w, inv_w, shift);
                    *reinterpret_cast<float4*>(c + t) = v4;
                    if (typed != nullptr) {
                        store4(typed + t, v4);
                    }
                    v[0] = as_seen(typed, v4.x), v[1] = as_seen(typed, v4.y);
                    v[2] = as_seen(typed, v4.z), v[3] = as_seen(typed, v4.w);
                } else {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        if (t + e < d) {
                            v[e] = finalize_element(s, c, typed, t + e, inv_w, shift);
                        }
                    }
                }
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    if (t + e < d) {
                        nr = fmaf(v[e], v[e], nr);
                    }
                }
            }
            nr = warp_sum_xor(nr);
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            shift += __shfl_xor_sync(0xffffffffu, shift, off);
        }
        if (lane == 0 && p.max_shift != nullptr) {
            // non-negative floats order like their bit patterns as ints
            atomicMax(reinterpret_cast<int*>(p.max_shift + b), __float_as_int(float(shift)));
        }
        if (lane == 0 && p.norms != nullptr) {
            p.norms[row] = nr;
        }
    }
}

__global__ void __launch_bounds__(kWarps * 32)
        postprocess_kernel(float* __restrict__ centroids, int64_t rows, int64_t d, bool spherical,
                           bool round_to_int) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * kWarps;
    for (int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows; r += warps) {
        float* c = centroids + r * d;
        if (spherical) {
            float nr = 0.0f;
            for (int64_t t = lane; t < d; t += 32) {
                nr = fmaf(c[t], c[t], nr);
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) {
                nr += __shfl_xor_sync(0xffffffffu, nr, off);
            }
            if (nr > 0.0f) {
                // FAISS fvec_renorm_L2: const float inv_nr = 1.0 / sqrtf(nr)
                const float inv_nr = float(1.0 / double(sqrtf(nr)));
                for (int64_t t = lane; t < d; t += 32) {
                    c[t] *= inv_nr;
                }
            }
        }
        if (round_to_int) {
            for (int64_t t = lane; t < d; t += 32) {
                c[t] = roundf(c[t]);
            }
        }
    }
}

unsigned blocks_for(int64_t rows) {
    const int64_t b = (rows + kWarps - 1) / kWarps;
    return unsigned(b < (int64_t(1) << 20) ? (b > 0 ? b : 1) : (int64_t(1) << 20));
}

} // namespace

void finalize_centroids(const Place& place, const kernels::FinalizeArgs& a) {
    DeviceGuard guard(place.device);
    const cudaStream_t stream = stream_of(place);
    if (a.n_empty != nullptr) {
        FK_CUDA_CHECK(cudaMemsetAsync(a.n_empty, 0, size_t(a.batch) * sizeof(int32_t), stream));
    }
    if (a.max_shift != nullptr) {
        FK_CUDA_CHECK(cudaMemsetAsync(a.max_shift, 0, size_t(a.batch) * sizeof(float), stream));
    }
    const int64_t rows = (a.k - a.k_begin) * a.batch;
    if (rows == 0) {
        return;
    }
    FinalizeParams p{a.sums,    a.weight_sums, a.k,     a.d,     a.k_begin, a.batch, a.centroids,
                     a.n_empty, a.max_shift,   a.typed, a.norms, false,     false};
    const bool aligned16 = reinterpret_cast<uintptr_t>(a.sums) % 16 == 0 &&
                           reinterpret_cast<uintptr_t>(a.centroids) % 16 == 0;
    if (a.typed == nullptr) {
        p.vec4 = rows_vec4(a.centroids, a.d);
        p.wide = p.vec4 && aligned16;
        finalize_kernel<float><<<blocks_for(rows), kWarps * 32, 0, stream>>>(p);
    } else {
        dispatch_dtype(a.typed_dtype, [&](auto tag) {
            using T = decltype(tag);
            p.vec4 = rows_vec4(static_cast<const T*>(a.typed), a.d);
            p.wide = p.vec4 && aligned16;
            finalize_kernel<T><<<blocks_for(rows), kWarps * 32, 0, stream>>>(p);
        });
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

void postprocess_centroids(const Place& place, float* c, int64_t k, int64_t d, bool spherical,
                           bool round_to_int, int64_t batch) {
    if (!spherical && !round_to_int) {
        return;
    }
    DeviceGuard guard(place.device);
    const int64_t rows = k * batch;
    postprocess_kernel<<<blocks_for(rows), kWarps * 32, 0, stream_of(place)>>>(
            c, rows, d, spherical, round_to_int);
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace cuda
} // namespace flashkmeans
