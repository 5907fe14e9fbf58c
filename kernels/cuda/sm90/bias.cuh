// The bias ring: each centroid tile's score bias (-||c||^2 / 2 for L2, 0 for
// IP, -inf past k), written by the producer warpgroup a few tiles ahead and
// read by the consumers, either as the start of the tile's accumulators
// (fill_bias: the fp16/bf16/TF32 kernels) or added in the fold
// (fold_with_bias: the exact kernel).
#pragma once

#include "../flash_assign_epilogue.cuh"
#include "params.cuh"
#include "ptx.cuh"

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

#if FK_SM90A
/// Producer side of the bias ring: thread `tid` (of 128) writes column tid of
/// centroid tile t's bias into the next slot, the very expression of
/// fa::RowArgMax::fold (-||c||^2 / 2 for L2, 0 for IP, -inf past k).
__device__ __forceinline__ void put_bias(float* bias, uint64_t* b_full, uint64_t* b_empty,
                                         const Params& p, int64_t b, int t, uint32_t gt, int tid) {
    const int slot = int(gt % kBiasSlots);
    mbar_wait(&b_empty[slot], ((gt / kBiasSlots) & 1) ^ 1u);
    const int col = t * kBN + tid;
    bias[slot * kBN + tid] = col < p.k ? (p.l2 ? -0.5f * __ldg(p.c_norms + b * p.k + col) : 0.0f)
                                       : fa::neg_inf();
    mbar_arrive(&b_full[slot]);
}

/// Consumer side of the bias ring in the exact (3xTF32) kernel: fold centroid
/// tile t's inner products (acc) into the running argmax with the bias slot
/// put_bias filled, fl(x.c) + bias as the sm_80 and CPU kernels, then free
/// the slot.
__device__ __forceinline__ void fold_with_bias(fa::RowArgMax<1, 16>& best, float (&acc)[64],
                                               const float* bias, uint64_t* b_full,
                                               uint64_t* b_empty, int t, uint32_t gt, int lane) {
    const int slot = int(gt % kBiasSlots);
    mbar_wait(&b_full[slot], (gt / kBiasSlots) & 1);
    best.fold_bias(reinterpret_cast<const float(&)[1][16][4]>(acc), bias + slot * kBN, t * kBN,
                   lane);
    mbar_arrive(&b_empty[slot]);
}

/// Consumer side of the bias ring in the fp16/bf16/TF32 kernels: centroid
/// tile t's bias (slot of gt) as the start of the tile's accumulators, one
/// value per column in both rows of each fragment; then the slot is free and
/// the MMAs add x.c to it (wgmma with scale-d = 1 from the first k-step).
/// Against adding the bias in the fold (fold_with_bias), 64 adds per tile and
/// thread less and the bias read once per tile before its MMAs instead of
/// after. Scores are bias + x.c summed inside the tensor core instead of
/// fl(x.c) + bias, a rounding difference of the size of the inner product's
/// own: on 1M fp16 points at k = 1024 to 65536 the labels equal the plain
/// reference kernel's (fp32 FMA, then + bias) to the 4th decimal of a percent
/// and differ from the sm_80 kernel's on 0-5 points (bench_kernels' agree
/// columns); the float64 tests' near-tie rule holds (CudaFlashAssign.Hopper*).
/// It pays where long runs sit at the power cap: 1.5-2.5% less time per Lloyd
/// iteration (1M x 8192 and 4M x 4096 x 128 fp16, streamed d = 768), 4% for
/// FlashAssign at 1M x 65536, within 1% elsewhere; in short bursts the
/// streamed kernel is 4-5% slower with it (the fill delays a tile's first
/// MMAs). Measured on the H200, see docs/benchmarks.md.
__device__ __forceinline__ void fill_bias(float (&acc)[64], const float* bias, uint64_t* b_full,
                                          uint64_t* b_empty, uint32_t gt, int lane) {
    const int slot = int(gt % kBiasSlots);
    mbar_wait(&b_full[slot], (gt / kBiasSlots) & 1);
    // each pair loaded twice (not copied): equal values in two accumulator
    // registers would be merged by the compiler and split again by moves
    // right before the wgmma, which then waits for the previous ones
    const uint32_t bs = smem_u32(bias + slot * kBN + 2 * (lane & 3));
#pragma unroll
    for (int ni = 0; ni < 16; ++ni) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n"
                         : "=f"(acc[4 * ni + 2 * h]), "=f"(acc[4 * ni + 2 * h + 1])
                         : "r"(bs + uint32_t(ni * 32)));
        }
    }
    mbar_arrive(&b_empty[slot]);
}
#endif

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
