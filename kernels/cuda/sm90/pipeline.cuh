// The chunk ring of shared-memory slots that every Hopper kernel streams the
// centroids (and, streamed, the points) through: one type for a position in
// it (PipelineState), the producer's load into a slot and the consumers'
// release of one, alone or in a cluster of CTAs that share the ring's loads.
#pragma once

#include "params.cuh"
#include "ptx.cuh"

#include <cuda.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// A position in the ring: how many slots have been passed (count), the slot
/// (count modulo the ring's slots) and the parity of its phase ((count /
/// slots) & 1), what the slot's mbarriers are waited on. Two ways to use it:
/// - next(): the streamed and exact kernels walk the ring one slot at a time,
///   so slot and phase are carried, not derived (`g % S`, `g / S` by a
///   run-time S cost ~20 instructions each, and the consumers are
///   issue-bound);
/// - slot_at() / phase_at(): the resident kernel names the chunks of a tile
///   by their count (the producer runs a tile ahead, the consumers have two
///   tiles in flight), so it derives slot and phase, by a mask and a shift
///   where the ring is a power of two (resident_ring_pow2).
struct PipelineState {
    uint32_t count = 0, slot = 0, phase = 0;
    __device__ __forceinline__ void next(uint32_t slots) {
        ++count;
        if (++slot == slots) {
            slot = 0;
            phase ^= 1u;
        }
    }
    /// The slot of position `count` in a ring of `slots` slots.
    template <bool kPow2>
    __device__ __forceinline__ static uint32_t slot_at(uint32_t count, int slots) {
        return kPow2 ? count & uint32_t(slots - 1) : count % uint32_t(slots);
    }
    /// The phase parity of position `count` (slots == 1 << shift if kPow2).
    template <bool kPow2>
    __device__ __forceinline__ static uint32_t phase_at(uint32_t count, int slots, int shift) {
        return (kPow2 ? count >> shift : count / uint32_t(slots)) & 1u;
    }
};

#if FK_SM90A
/// A consumer thread is done with ring slot `empty` (its warp's wgmmas that
/// read it are complete: wgmma_wait is warp-wide). Alone (CL = 1) every
/// consumer thread arrives; in a cluster sharing the ring's loads, one
/// arrival per warp on the slot of every CTA that fills it.
template <int CL>
__device__ __forceinline__ void release_slot(uint64_t* empty, int lane) {
    if constexpr (CL > 1) {
        if (lane == 0) {
            for (int cta = 0; cta < CL; ++cta) {
                mbar_arrive_cluster(empty, uint32_t(cta));
            }
        }
    } else {
        mbar_arrive(empty);
    }
}
/// The streamed and exact consumers, after a wgmma wait that leaves at most
/// the newest chunk's MMAs in flight: frees the ring slot before `upto` if it
/// is still held. Each wait is followed by one such call, so one slot at most
/// is ever held besides the newest (an `if`, not a loop).
template <int CL = 1>
__device__ __forceinline__ void release_slot_before(PipelineState& released, uint32_t upto,
                                                    uint64_t* c_empty, uint32_t slots, int lane) {
    if (released.count < upto) {
        release_slot<CL>(&c_empty[released.slot], lane);
        released.next(slots);
    }
}
/// The producer's load of one d-chunk (column col) of the centroid tile
/// starting at row `row` into `dst`: alone, the whole chunk; in a cluster,
/// this CTA's share of its rows, multicast into every CTA.
template <int CL>
__device__ __forceinline__ void load_centroid_chunk(char* dst, const CUtensorMap* c_map, int col,
                                                    int row, uint64_t* full, int rank) {
    if constexpr (CL > 1) {
        constexpr int kPart = kBN / CL;
        tma_load_2d_multicast(dst + rank * kPart * kChunkBytes, c_map, col, row + rank * kPart,
                              full, uint16_t((1u << CL) - 1u));
    } else {
        tma_load_2d(dst, c_map, col, row, full);
    }
}
#endif

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
