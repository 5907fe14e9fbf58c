// Finalize (CUDA): centroids[j] = sums[j] * (1 / weight_sums[j]) for
// j >= k_begin (FAISS's rounding: a multiply by the float reciprocal, not a
// division), 0 for empty clusters (weight 0; counted in n_empty, to be split),
// and max_shift = max over non-empty j of ||c_new - c_old||^2 (the CPU kernel's
// definition: empty rows are not counted). Also FAISS's post-processing
// (spherical renormalisation, rounding to integers).
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

#include <cuda_runtime.h>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kWarps = 8;

__global__ void __launch_bounds__(kWarps * 32)
        finalize_kernel(const float* __restrict__ sums, const float* __restrict__ weight_sums,
                        int64_t k, int64_t d, int64_t k_begin, int64_t batch,
                        float* __restrict__ centroids, int32_t* __restrict__ n_empty,
                        float* __restrict__ max_shift) {
    const int lane = threadIdx.x & 31;
    const int64_t live = k - k_begin;  // rows per problem that are updated
    const int64_t rows = live * batch;
    const int64_t warps = int64_t(gridDim.x) * kWarps;
    for (int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows; r += warps) {
        const int64_t b = r / live;
        const int64_t row = b * k + k_begin + r % live;
        const float w = weight_sums[row];
        float* c = centroids + row * d;
        if (w == 0.0f) {
            for (int64_t t = lane; t < d; t += 32) {
                c[t] = 0.0f;
            }
            if (lane == 0 && n_empty != nullptr) {
                atomicAdd(n_empty + b, 1);
            }
            continue;
        }
        // FAISS: float norm = 1 / hassign[ci]; __frcp_rn is that correctly
        // rounded reciprocal, without the division subroutine
        const float norm = __frcp_rn(w);
        const float* s = sums + row * d;
        double shift = 0.0;
        for (int64_t t = lane; t < d; t += 32) {
            const float v = s[t] * norm;
            const double delta = double(v) - double(c[t]);
            shift += delta * delta;
            c[t] = v;
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            shift += __shfl_xor_sync(0xffffffffu, shift, off);
        }
        if (lane == 0 && max_shift != nullptr) {
            // non-negative floats order like their bit patterns as ints
            atomicMax(reinterpret_cast<int*>(max_shift + b), __float_as_int(float(shift)));
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
    finalize_kernel<<<blocks_for(rows), kWarps * 32, 0, stream>>>(
            a.sums, a.weight_sums, a.k, a.d, a.k_begin, a.batch, a.centroids, a.n_empty,
            a.max_shift);
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
