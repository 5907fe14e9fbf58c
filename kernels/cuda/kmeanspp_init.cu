// k-means++ seeding (CUDA): rows [n_given, k) of the centroids by D^2
// sampling, with the semantics stated in <flashkmeans/kernels.h>, wholly on
// the device: the draws go up in one copy before the loop, the picks come back
// in one copy after it, and nothing in between waits for the host.
//
// Per new row j, two kernels on the stream:
//  1. distance: D[i] = min(D[i], ||x_i - c_j||^2) for every point, with the
//     double sum of D over each fixed block of `per_block` points (one CUDA
//     block per block of points; cub::BlockReduce, a fixed tree). A group of
//     G lanes (a power of two up to a warp, each lane at least 2 loads of a
//     row) shares a point and runs across d with 16-byte loads (8 fp16/bf16
//     or 4 fp32; single elements when d or the alignment does not allow), and
//     each group has kPointsInFlight points loading at once: the pass is a
//     stream over x, bound by how many loads are in flight (one point per warp
//     with 2-byte loads took 208 us per row at 1M x 128 fp16 on an H200).
//     Traffic: x read once (n d elements), D read and written once (n
//     floats), one double per block of points.
//  2. pick: one CUDA block. It scans the block sums in double (each thread a
//     contiguous slice in order, then cub::BlockScan across the slices) to
//     get the total and the block of points where the prefix crosses
//     r = u * total, scans that block's D the same way to find the point,
//     then writes row j = fp32(x[pick]) (the next distance pass reads it
//     there) and the pick. Traffic:
//     n / per_block doubles + per_block floats + one row.
// Why two kernels and not one with a grid-wide sync: the pick is inherently
// serial (a prefix over every point) but needs only the block sums and one
// block of D, so one small block does it between two wide passes; a
// cooperative launch would gain one launch per row (microseconds) and cost
// occupancy limits on the wide pass.
//
// Every sum is over a fixed set in a fixed order (per_block depends on n
// only): the same picks on every run. The prefix inside the crossing block is
// (prefix of the blocks before) + (the block's own scan), which may round
// differently from the block sum of kernel 1; if it then never exceeds r,
// the pick is the block's largest i with D[i] > 0 (the header's "rounding
// leaves none" case, confined to that block). Where the fp32 distances and
// their double sums are exact (small integer data) the picks equal the CPU
// kernel's.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kThreads = 256;          // distance kernel
constexpr int kPickThreads = 512;      // the one block of the pick kernel
constexpr int64_t kMinBlockPoints = 1024;
constexpr int64_t kMaxBlocks = 16384;  // block sums the pick kernel scans
constexpr int64_t kNone = INT64_MAX;

/// Points per block of kernel 1: a multiple of kMinBlockPoints, so that at
/// most kMaxBlocks blocks cover n. Depends on n only (determinism).
int64_t block_points(int64_t n) {
    const int64_t per = (n + kMaxBlocks - 1) / kMaxBlocks;
    return std::max(kMinBlockPoints, (per + kMinBlockPoints - 1) / kMinBlockPoints * kMinBlockPoints);
}

constexpr int kPointsInFlight = 4;  // points per group of lanes, loaded together

/// Lanes per point in kernel 1: a power of two up to 32, each lane taking at
/// least two of the row's `vectors` loads.
int lanes_for(int64_t vectors) {
    int g = 1;
    while (g < 32 && 2 * (2 * int64_t(g)) <= vectors) {
        g *= 2;
    }
    return g;
}

__host__ __device__ inline int64_t uniform_pick(double u, int64_t n) {
    const int64_t p = int64_t(floor(u * double(n)));
    return p < n - 1 ? p : n - 1;
}

using BlockSum = cub::BlockReduce<double, kThreads>;

/// VEC elements of x (one 16-byte load when VEC > 1) as floats.
template <typename T, int VEC>
struct XVec {
    float v[VEC];
};

template <typename T, int VEC>
__device__ __forceinline__ XVec<T, VEC> load_x(const T* p) {
    XVec<T, VEC> r;
    if constexpr (VEC == 1) {
        r.v[0] = to_float(*p);
    } else {
        static_assert(VEC * sizeof(T) == 16, "one 16-byte load");
        const uint4 u = *reinterpret_cast<const uint4*>(p);
        const T* e = reinterpret_cast<const T*>(&u);
#pragma unroll
        for (int t = 0; t < VEC; ++t) r.v[t] = to_float(e[t]);
    }
    return r;
}

template <typename T, int G, int VEC>
__global__ void __launch_bounds__(kThreads)
        distance_kernel(const T* __restrict__ x, int64_t n, int64_t d, const float* __restrict__ c,
                        bool first, int64_t per_block, float* __restrict__ dist,
                        double* __restrict__ block_sums) {
    constexpr int kGroups = kThreads / G;
    constexpr int U = kPointsInFlight;
    const int group = threadIdx.x / G, lane = threadIdx.x % G;
    const int64_t begin = int64_t(blockIdx.x) * per_block;
    const int64_t end = begin + per_block < n ? begin + per_block : n;
    double s = 0;
    // the loop bounds are the same for the whole block: every lane reaches
    // the shuffles
    for (int64_t i0 = begin; i0 < end; i0 += int64_t(kGroups) * U) {
        float acc[U];
#pragma unroll
        for (int u = 0; u < U; ++u) acc[u] = 0.0f;
        for (int64_t t = int64_t(lane) * VEC; t < d; t += int64_t(G) * VEC) {
            XVec<T, VEC> xv[U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int64_t i = i0 + group + int64_t(u) * kGroups;
                if (i < end) {
                    xv[u] = load_x<T, VEC>(x + i * d + t);
                } else {
#pragma unroll
                    for (int e = 0; e < VEC; ++e) xv[u].v[e] = 0.0f;  // unused, defined
                }
            }
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
                const float ce = __ldg(c + t + e);
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    const float diff = xv[u].v[e] - ce;
                    acc[u] += diff * diff;
                }
            }
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
#pragma unroll
            for (int off = G / 2; off > 0; off >>= 1) {
                acc[u] += __shfl_xor_sync(0xffffffffu, acc[u], off);
            }
            const int64_t i = i0 + group + int64_t(u) * kGroups;
            if (lane == 0 && i < end) {
                const float v = first || acc[u] < dist[i] ? acc[u] : dist[i];
                dist[i] = v;
                s += double(v);
            }
        }
    }
    __shared__ typename BlockSum::TempStorage tmp;
    s = BlockSum(tmp).Sum(s);
    if (threadIdx.x == 0) {
        block_sums[blockIdx.x] = s;
    }
}

using PickScan = cub::BlockScan<double, kPickThreads>;
using PickReduce = cub::BlockReduce<int64_t, kPickThreads>;

union PickTemp {
    typename PickScan::TempStorage scan;
    typename PickReduce::TempStorage reduce;
};

struct MinOp {
    __device__ int64_t operator()(int64_t a, int64_t b) const { return b < a ? b : a; }
};
struct MaxOp {
    __device__ int64_t operator()(int64_t a, int64_t b) const { return b > a ? b : a; }
};

/// The block-wide reduction of v, in every thread.
template <typename Op>
__device__ int64_t block_reduce(int64_t v, Op op, PickTemp& tmp) {
    __shared__ int64_t out;
    __syncthreads(); // tmp and `out` are free again
    const int64_t r = PickReduce(tmp.reduce).Reduce(v, op);
    if (threadIdx.x == 0) {
        out = r;
    }
    __syncthreads();
    return out;
}

/// This thread's contiguous slice of [begin, end) and the double prefix of
/// the values before it: each slice summed in order, the slice sums scanned
/// by cub's fixed tree. `total` is the sum of everything, in every thread.
struct Slice {
    int64_t begin, end;
    double before, total;
};

template <typename V>
__device__ Slice scan_slices(const V* v, int64_t begin, int64_t end, PickTemp& tmp) {
    const int64_t per = (end - begin + kPickThreads - 1) / kPickThreads;
    Slice s;
    s.begin = begin + threadIdx.x * per < end ? begin + threadIdx.x * per : end;
    s.end = s.begin + per < end ? s.begin + per : end;
    double sum = 0;
    for (int64_t i = s.begin; i < s.end; i++) {
        sum += double(v[i]);
    }
    __syncthreads(); // tmp is free again
    PickScan(tmp.scan).ExclusiveSum(sum, s.before, s.total);
    return s;
}

struct Found {
    int64_t index;  ///< -1: every value is 0
    bool crossed;   ///< false: no prefix exceeded r, index = the last value > 0
    double before;  ///< crossed: base + the prefix of the values before index
};

/// The smallest i of the slices with base + prefix(i) > r and v[i] > 0, or,
/// when none, the largest i with v[i] > 0. The same in every thread.
template <typename V>
__device__ Found find_crossing(const V* v, const Slice& s, double base, double r, PickTemp& tmp) {
    __shared__ double before_found;
    int64_t first = kNone, last = -1;
    double before = 0, local = 0;
    for (int64_t i = s.begin; i < s.end; i++) {
        const double vi = double(v[i]);
        const double prev = base + (s.before + local);
        local += vi;
        if (vi > 0) {
            last = i;
            if (first == kNone && base + (s.before + local) > r) {
                first = i;
                before = prev;
            }
        }
    }
    Found f;
    f.index = block_reduce(first, MinOp(), tmp);
    f.crossed = f.index != kNone;
    if (!f.crossed) {
        f.index = block_reduce(last, MaxOp(), tmp);
        f.before = 0;
        return f;
    }
    if (first == f.index) {
        before_found = before; // the one thread whose slice holds the crossing
    }
    __syncthreads();
    f.before = before_found;
    return f;
}

/// Row j of the centroids and its pick, from draw u: uniform (the first row,
/// or every point on a chosen row), else D^2 sampling over `dist`.
template <typename T>
__global__ void __launch_bounds__(kPickThreads)
        pick_kernel(const T* __restrict__ x, int64_t n, int64_t d, const float* __restrict__ dist,
                    const double* __restrict__ block_sums, int64_t n_blocks, int64_t per_block,
                    const double* __restrict__ draw, bool uniform, float* __restrict__ row,
                    int64_t* __restrict__ pick_out) {
    __shared__ PickTemp tmp;
    const double u = *draw;
    int64_t pick = -1;
    if (!uniform) {
        const Slice blocks = scan_slices(block_sums, 0, n_blocks, tmp);
        if (blocks.total > 0) {
            const double r = u * blocks.total;
            const Found b = find_crossing(block_sums, blocks, 0.0, r, tmp);
            if (b.index >= 0) { // always, as total > 0
                const int64_t begin = b.index * per_block;
                const int64_t end = begin + per_block < n ? begin + per_block : n;
                // no block crossed: the last point with D > 0, i.e. the
                // largest in the last block with a positive sum (r = inf
                // crosses nothing)
                const Slice points = scan_slices(dist, begin, end, tmp);
                pick = find_crossing(dist, points, b.before, b.crossed ? r : INFINITY, tmp).index;
            }
        }
    }
    if (pick < 0) {
        pick = uniform_pick(u, n);
    }
    const T* src = x + pick * d;
    for (int64_t t = threadIdx.x; t < d; t += kPickThreads) {
        row[t] = to_float(src[t]);
    }
    if (threadIdx.x == 0) {
        *pick_out = pick;
    }
}

template <typename T>
void launch_distance(int lanes, bool vec, unsigned grid, cudaStream_t stream, const T* x,
                     int64_t n, int64_t d, const float* c, bool first, int64_t per_block,
                     float* dist, double* sums) {
    constexpr int V = 16 / int(sizeof(T));
    switch (lanes * (vec ? 1 : -1)) {
#define FK_KPP_LANES(G)                                                                           \
    case G:                                                                                       \
        distance_kernel<T, G, V><<<grid, kThreads, 0, stream>>>(x, n, d, c, first, per_block,      \
                                                                dist, sums);                      \
        break;                                                                                    \
    case -G:                                                                                      \
        distance_kernel<T, G, 1><<<grid, kThreads, 0, stream>>>(x, n, d, c, first, per_block,      \
                                                                dist, sums);                      \
        break;
        FK_KPP_LANES(1)
        FK_KPP_LANES(2)
        FK_KPP_LANES(4)
        FK_KPP_LANES(8)
        FK_KPP_LANES(16)
        FK_KPP_LANES(32)
#undef FK_KPP_LANES
        default:
            throw KernelError("flashkmeans: kmeanspp_init: bad lane count");
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace

void kmeanspp_init(const Place& p, const kernels::KMeansPPArgs& a) {
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    const int64_t n = a.n, d = a.d, k = a.k, n_given = a.n_given, rows = k - n_given;
    const int64_t per_block = block_points(n);
    const int64_t n_blocks = (n + per_block - 1) / per_block;

    ScopedDeviceBuffer dist_buf(size_t(n) * sizeof(float), stream);
    ScopedDeviceBuffer sums_buf(size_t(n_blocks) * sizeof(double), stream);
    ScopedDeviceBuffer draws_buf(size_t(rows) * sizeof(double), stream);
    ScopedDeviceBuffer picks_buf(size_t(rows) * sizeof(int64_t), stream);
    auto* dist = static_cast<float*>(dist_buf.get());
    auto* sums = static_cast<double*>(sums_buf.get());
    auto* draws = static_cast<double*>(draws_buf.get());
    auto* picks = static_cast<int64_t*>(picks_buf.get());
    // pageable source: the copy has left host memory when this returns
    FK_CUDA_CHECK(cudaMemcpyAsync(draws, a.draws, size_t(rows) * sizeof(double),
                                  cudaMemcpyHostToDevice, stream));

    dispatch_dtype(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* x = static_cast<const T*>(a.x);
        // 16-byte loads when every row starts 16-byte aligned
        constexpr int V = 16 / int(sizeof(T));
        const bool vec = d % V == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
        const int lanes = lanes_for(vec ? d / V : d);
        auto add_row = [&](int64_t j, bool first) {
            launch_distance<T>(lanes, vec, unsigned(n_blocks), stream, x, n, d,
                               a.centroids + j * d, first, per_block, dist, sums);
        };
        auto pick_row = [&](int64_t j, bool uniform) {
            pick_kernel<T><<<1, kPickThreads, 0, stream>>>(
                    x, n, d, dist, sums, n_blocks, per_block, draws + (j - n_given), uniform,
                    a.centroids + j * d, picks + (j - n_given));
            FK_CUDA_CHECK(cudaGetLastError());
        };
        int64_t j = n_given;
        if (j == 0) {
            pick_row(0, true);
            j = 1;
        }
        for (int64_t g = 0; g < j; g++) {
            add_row(g, g == 0);
        }
        for (; j < k; j++) {
            pick_row(j, false);
            if (j + 1 < k) {
                add_row(j, false);
            }
        }
    });
    if (a.picked != nullptr) {
        FK_CUDA_CHECK(cudaMemcpyAsync(a.picked, picks, size_t(rows) * sizeof(int64_t),
                                      cudaMemcpyDeviceToHost, stream));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
}

} // namespace cuda
} // namespace flashkmeans
