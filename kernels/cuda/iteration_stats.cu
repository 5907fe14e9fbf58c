// iteration_stats (CUDA): the per-problem sums one Lloyd iteration reports
// (objective = sum of the point distances; sum and sum of squares of the
// cluster sizes for FAISS's imbalance factor), in double, reduced on the
// device so the iteration never waits for the host in the middle.
//
// Why two small kernels instead of cub::DeviceReduce per problem: the batch
// API runs B problems per iteration, and B reductions with a synced copy each
// left the GPU idle between launches (one sync per problem). Here one launch
// covers every problem and the host reads 3 doubles per problem once, at the
// end of the iteration.
// - partial_sums: block (b, p) sums slice p of problem b's distances and of
//   its counts (each thread a fixed strided subset, then cub::BlockReduce).
// - final_sums: block b adds its `parts` partials with cub::BlockReduce.
// Both trees depend only on n, k and the block size, never on timing, and
// there are no atomics: the same bits on every run.
// Traffic: n + k values read per problem, plus 3 doubles per block.
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "launch_after.cuh"

#include <cub/block/block_reduce.cuh>
#include <cuda_runtime.h>

#include <algorithm>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kThreads = 256;
// values per block: ~8 loads per thread: 16384 made 7 blocks for n = 100000,
// 64 dependent loads each (14 us)
constexpr int64_t kPerBlock = 2048;
constexpr int kMaxParts = kThreads;   // final_sums gives each thread one partial
// values a thread loads at once (predicated, all in flight) before adding
// them in index order: at 1M points (4096 values per block) one round trip
constexpr int kLoads = 16;

struct Sums3 {
    double s, c, c2;
};

struct AddSums3 {
    __device__ Sums3 operator()(const Sums3& a, const Sums3& b) const {
        return {a.s + b.s, a.c + b.c, a.c2 + b.c2};
    }
};

using BlockSum = cub::BlockReduce<Sums3, kThreads>;

/// Sums v0, v1, v2 over the block in one pass (each component in the tree
/// of a BlockReduce of doubles); thread 0 gets the totals.
__device__ void block_sum3(double& v0, double& v1, double& v2) {
    __shared__ typename BlockSum::TempStorage tmp;
    const Sums3 r = BlockSum(tmp).Reduce(Sums3{v0, v1, v2}, AddSums3{});
    v0 = r.s;
    v1 = r.c;
    v2 = r.c2;
}

__global__ void partial_sums_kernel(const float* __restrict__ values, int64_t n,
                                    const int32_t* __restrict__ counts, int64_t k, int parts,
                                    double* __restrict__ partial) {
    wait_for_previous_grid();  // launched with launch_after
    allow_next_grid();
    const int64_t b = blockIdx.x / parts;
    const int p = int(blockIdx.x % parts);
    const int64_t vlen = (n + parts - 1) / parts, klen = (k + parts - 1) / parts;
    double s = 0, c = 0, c2 = 0;
    const int64_t v_end = (p + 1) * vlen < n ? (p + 1) * vlen : n;
    for (int64_t i0 = p * vlen + threadIdx.x; i0 < v_end; i0 += kThreads * kLoads) {
        float v[kLoads];
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
            const int64_t i = i0 + int64_t(u) * kThreads;
            v[u] = i < v_end ? values[b * n + i] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < kLoads; ++u) {
            s += double(v[u]);  // i0, i0 + kThreads, ...: index order (+0.0 past the end)
        }
    }
    if (counts != nullptr) {
        const int64_t k_end = (p + 1) * klen < k ? (p + 1) * klen : k;
        for (int64_t j = p * klen + threadIdx.x; j < k_end; j += kThreads) {
            const double h = double(counts[b * k + j]);
            c += h;
            c2 += h * h;
        }
    }
    block_sum3(s, c, c2);
    if (threadIdx.x == 0) {
        double* out = partial + (b * parts + p) * 3;
        out[0] = s;
        out[1] = c;
        out[2] = c2;
    }
}

__global__ void final_sums_kernel(const double* __restrict__ partial, int parts,
                                  double* __restrict__ out) {
    wait_for_previous_grid();  // launched with launch_after
    const int64_t b = blockIdx.x;
    const int t = threadIdx.x;
    const double* in = partial + b * parts * 3;
    double s = t < parts ? in[t * 3] : 0.0;
    double c = t < parts ? in[t * 3 + 1] : 0.0;
    double c2 = t < parts ? in[t * 3 + 2] : 0.0;
    block_sum3(s, c, c2);
    if (t == 0) {
        out[b * 3] = s;
        out[b * 3 + 1] = c;
        out[b * 3 + 2] = c2;
    }
}

} // namespace

namespace {

/// Blocks per problem: enough that each sums about kPerBlock values.
int parts_for(int64_t n, int64_t k) {
    const int64_t longest = std::max(n, k);
    return int(std::min<int64_t>(kMaxParts, std::max<int64_t>(1, (longest + kPerBlock - 1) / kPerBlock)));
}

} // namespace

int64_t iteration_stats_scratch(int64_t n, int64_t k, int64_t batch) {
    return batch * parts_for(n, k) * 3;
}

void iteration_stats(const Place& p, const float* values, int64_t n, const int32_t* counts,
                     int64_t k, int64_t batch, double* out, double* scratch) {
    if (batch == 0) {
        return;
    }
    DeviceGuard guard(p.device);
    const cudaStream_t stream = stream_of(p);
    // the scratch's size does not depend on counts being given: a caller
    // sizes it once for every call
    const int parts = parts_for(n, counts != nullptr ? k : 0);
    ScopedDeviceBuffer partial(scratch == nullptr ? size_t(batch) * parts * 3 * sizeof(double) : 0,
                               stream);
    auto* part = scratch != nullptr ? scratch : static_cast<double*>(partial.get());
    launch_after(partial_sums_kernel, unsigned(batch * parts), kThreads, 0, stream, values, n,
                 counts, k, parts, part);
    launch_after(final_sums_kernel, unsigned(batch), kThreads, 0, stream,
                 static_cast<const double*>(part), parts, out);
}

} // namespace cuda
} // namespace flashkmeans
