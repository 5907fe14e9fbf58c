// A Hopper block's frame, the same in every kernel: its start (barriers, then
// the producer warpgroup's and the consumers' roles) and which row tile it
// takes next (persistent: row tiles, or groups of CL of them for a cluster,
// strided by the grid).
#pragma once

#include "params.cuh"
#include "ptx.cuh"
#include "smem.cuh"

#include <cuda.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

#if FK_SM90A
/// The row tile of CTA `rank` in its cluster's group q of CL row tiles: row
/// m0 of problem b (past the problem's end when CL does not divide its
/// tiles: computed, not stored).
template <int CL>
__device__ __forceinline__ void row_tile(const Params& p, int64_t q, int rank, int64_t& b,
                                         int64_t& m0) {
    b = q / p.groups_per_problem;
    m0 = ((q % p.groups_per_problem) * CL + rank) * kBM;
}
/// The consumer warpgroup of this thread (0 or 1), read from lane 0 so the
/// compiler knows it is the same across the warp and keeps addresses derived
/// from it (wgmma descriptors) in uniform registers.
__device__ __forceinline__ int consumer_group() {
    return __shfl_sync(0xffffffffu, int(threadIdx.x - 128) / 128, 0);
}
/// Every kernel's start: thread 0 initialises the barriers, then the block
/// (the cluster of CL CTAs, whose peers will signal these barriers) syncs.
template <int CL = 1>
__device__ __forceinline__ void init_block(const Smem& sm, int stages) {
    if (threadIdx.x == 0) {
        sm.init_barriers(stages, CL > 1 ? CL * kConsumerThreads / 32 : kConsumerThreads);
    }
    if constexpr (CL > 1) {
        cluster_sync();
    } else {
        __syncthreads();
    }
}
/// The producer warpgroup's start: give registers to the consumers, warm the
/// tensor-map cache.
__device__ __forceinline__ void producer_start(const CUtensorMap* x_map, const CUtensorMap* c_map) {
    setmaxnreg_dec<40>();
    if (threadIdx.x == 0) {
        tma_prefetch_map(x_map);
        tma_prefetch_map(c_map);
    }
}
#endif

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
