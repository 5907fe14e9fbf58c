// The resident mainloop (flash_assign_sm90_kernel): the block's points stay
// in shared memory (or, fp16/bf16 with d <= 128, in registers) for a whole row
// tile while every centroid tile streams through the ring, one 128 x 128-byte
// d-chunk per slot. Memory traffic per row tile: its points once, every
// centroid once (from L2; once per two row tiles in CTA pairs).
#pragma once

#include "../dtype.cuh"
#include "../flash_assign_epilogue.cuh"
#include "bias.cuh"
#include "block.cuh"
#include "epilogue.cuh"
#include "params.cuh"
#include "pipeline.cuh"
#include "ptx.cuh"
#include "smem.cuh"

#include <cuda.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// CHUNKS: d-chunks of 128 bytes (a template parameter so the MMAs of a
/// tile are straight-line code: a branch between wgmmas makes the compiler
/// insert fences of its own).
/// AREGS (fp16/bf16, CHUNKS <= 2): each consumer loads its 64 rows of points
/// into registers once per row tile (ldmatrix) and issues wgmma with A from
/// registers, so the tensor cores read only the centroids from shared memory
/// and the points buffer is released at once.
/// CL (1 or 2): CTAs per cluster. With 2, the two CTAs (on two SMs) take two
/// row tiles of one problem against the same centroid tiles, and each loads
/// half of every centroid chunk with a TMA multicast into both: the
/// centroids come from L2 once per 256 points instead of once per 128. That
/// is no faster while the clock holds, but it is energy, and under the
/// H200's 700 W cap (where every long run at k >= 1024 ends up, clock ~1.65
/// GHz) the kernel is energy-bound (see ClusterVariant, heuristics.cu). A ring slot is
/// then free only once the consumer warps of both CTAs have released it.
/// MAXF: the fold of many centroid tiles (fa::RowArgMax::fold_acc_max_first,
/// see MaxFirstVariant, heuristics.cu); one fold per kernel, as ptxas needs.
template <typename T, int CHUNKS, bool AREGS, int CL, bool MAXF = false>
__global__ void __launch_bounds__(kThreads, 1)
        flash_assign_sm90_kernel(const __grid_constant__ CUtensorMap x_map,
                                 const __grid_constant__ CUtensorMap c_map, const Params p) {
#if FK_SM90A
    extern __shared__ char smem_raw[];
    constexpr int C = CHUNKS;
    const Layout L{C, p.stages, p.x_buffers, 1};
    const Smem sm(smem_raw, L);
    const int XB = p.x_buffers;
    const int S = p.stages;
    // ring position of chunk g (see resident_ring_pow2)
    constexpr bool kPow2 = resident_ring_pow2(C);
    auto slot_of = [&](uint32_t g) { return PipelineState::slot_at<kPow2>(g, S); };
    auto phase_of = [&](uint32_t g) { return PipelineState::phase_at<kPow2>(g, S, p.stage_shift); };
    char* const x_buf = sm.x_buf;
    float* const bias = sm.bias;
    uint64_t *const x_full = sm.x_full, *const x_empty = sm.x_empty;
    uint64_t *const c_full = sm.c_full, *const c_empty = sm.c_empty;
    uint64_t *const b_full = sm.b_full, *const b_empty = sm.b_empty;
    const int tid = threadIdx.x;
    static_assert(CL == 1 || CL == 2, "clusters of 1 or 2 CTAs");
    const int rank = CL > 1 ? int(cluster_ctarank()) : 0;
    init_block<CL>(sm, S);

    const int n_tiles = (p.k + kBN - 1) / kBN;

    if (tid < 128) {
        // ------------------------------------------------------ producer
        producer_start(&x_map, &c_map);
        uint32_t gs = 0, gt = 0;  // chunk-stage and bias-slot counters
        int64_t local = 0;
        for (int64_t q = blockIdx.x / CL; q < p.groups; q += gridDim.x / CL, ++local) {
            int64_t b, m0;
            row_tile<CL>(p, q, rank, b, m0);
            const int xb = int(local % XB);
            if (tid == 0) {
                mbar_wait(&x_empty[xb], uint32_t((local / XB) & 1) ^ 1u);
                mbar_arrive_expect_tx(&x_full[xb], uint32_t(C * kXTileBytes));
                for (int c = 0; c < C; ++c) {
                    tma_load_2d(x_buf + (xb * C + c) * kXTileBytes, &x_map,
                                c * int(kChunkBytes / sizeof(T)), int(b * p.n + m0), &x_full[xb]);
                }
            }
            for (int t = 0; t < n_tiles; ++t, ++gt) {
                put_bias(bias, b_full, b_empty, p, b, t, gt, tid);
                if (tid == 0) {
                    for (int c = 0; c < C; ++c) {
                        const uint32_t g = gs + uint32_t(c);
                        const int s = int(slot_of(g));
                        mbar_wait(&c_empty[s], phase_of(g) ^ 1u);
                        mbar_arrive_expect_tx(&c_full[s], uint32_t(kCTileBytes));
                        load_centroid_chunk<CL>(sm.slot(s), &c_map,
                                                c * int(kChunkBytes / sizeof(T)),
                                                int(b * p.k + t * kBN), &c_full[s], rank);
                    }
                }
                gs += uint32_t(C);
            }
        }
        if constexpr (CL > 1) {
            cluster_sync();  // no CTA leaves while its peer may still signal it
        }
        return;
    }

    // ---------------------------------------------------------- consumers
    setmaxnreg_inc<232>();
    const int w = consumer_group();  // rows [64 w, 64 w + 64)
    const int lane = tid & 31, warp = (tid >> 5) & 3;
    float acc0[64], acc1[64];
    uint32_t a_frag[AREGS ? C : 1][kKSteps][4];  // AREGS: the warp's 16 rows of points
    uint32_t gs = 0, gt = 0;
    int64_t local = 0;

    // Issues the MMAs of one centroid tile (all its d-chunks) into `acc`.
    auto mma_tile = [&](float (&acc)[64], uint32_t a_base, uint32_t gs0, uint32_t gt0) {
        // wait for every chunk first: no branch between the fence and the
        // MMAs, so the compiler adds no fences of its own
        for (int c = 0; c < C; ++c) {
            const uint32_t g = gs0 + uint32_t(c);
            mbar_wait(&c_full[slot_of(g)], phase_of(g));
        }
        fill_bias(acc, bias, b_full, b_empty, gt0, lane);
        wgmma_fence();
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const uint32_t a_addr = a_base + uint32_t(c * kXTileBytes);
            const uint32_t b_addr =
                    smem_u32(sm.slot(slot_of(gs0 + uint32_t(c))));
#pragma unroll
            for (int kk = 0; kk < kKSteps; ++kk) {
                if constexpr (AREGS) {
                    WgmmaRegA<T>::run(acc, a_frag[c][kk], sw128_desc(b_addr, kk * 32), true);
                } else {
                    Wgmma<T>::run(acc, sw128_desc(a_addr, kk * 32), sw128_desc(b_addr, kk * 32),
                                  true);
                }
            }
        }
        wgmma_commit();
    };
    // Once the MMAs of a tile are done: free its chunks, fold its scores.
    fa::RowArgMax<1, 16> best;
    auto finish_tile = [&](float (&acc)[64], int t, uint32_t gs0) {
        fence_acc(acc);
        for (int c = 0; c < C; ++c) {
            release_slot<CL>(&c_empty[int(slot_of(gs0 + uint32_t(c)))], lane);
        }
        const auto& scores = reinterpret_cast<const float(&)[1][16][4]>(acc);
        if constexpr (MAXF) {
            best.fold_acc_max_first(scores, t * kBN, lane);
        } else {
            best.fold_acc(scores, t * kBN, lane);
        }
    };

    for (int64_t q = blockIdx.x / CL; q < p.groups; q += gridDim.x / CL, ++local) {
        int64_t b, m0;
        row_tile<CL>(p, q, rank, b, m0);
        const int xb = int(local % XB);
        mbar_wait(&x_full[xb], uint32_t((local / XB) & 1));
        const uint32_t a_base = smem_u32(x_buf + xb * C * kXTileBytes) + uint32_t(w * 64 * kChunkBytes);
        if constexpr (AREGS) {
            const int row = w * 64 + warp * 16 + (lane & 15);
#pragma unroll
            for (int c = 0; c < C; ++c) {
#pragma unroll
                for (int kk = 0; kk < kKSteps; ++kk) {
                    ldmatrix_x4(a_frag[c][kk],
                                smem_u32(x_buf + (xb * C + c) * kXTileBytes +
                                         sw128_offset(row, kk * 32 + (lane >> 4) * 16)));
                }
            }
            mbar_arrive(&x_empty[xb]);  // the points are in registers now
        }
        best.init();

        // Tiles in pairs so each accumulator set is named at compile time:
        // the MMAs of tile t + 1 run while tile t is folded.
        mma_tile(acc0, a_base, gs, gt);
        for (int t = 0;; t += 2) {
            // here only tile t's MMAs (into acc0) are in flight
            const uint32_t gs_t = gs + uint32_t(t * C), gt_t = gt + uint32_t(t);
            if (t + 1 < n_tiles) {
                // a no-op (only tile t's group is in flight) that shows
                // ptxas, on this side of the back edge, that acc1's last MMAs
                // are done before fill_bias writes it (else it injects a wait
                // for every group: C7517)
                wgmma_wait<1>();
                mma_tile(acc1, a_base, gs_t + uint32_t(C), gt_t + 1);
                wgmma_wait<1>();
                finish_tile(acc0, t, gs_t);
            } else {
                wgmma_wait<0>();
                finish_tile(acc0, t, gs_t);
                break;
            }
            // here only tile t + 1's MMAs (into acc1) are in flight
            if (t + 2 < n_tiles) {
                mma_tile(acc0, a_base, gs_t + uint32_t(2 * C), gt_t + 2);
                wgmma_wait<1>();
                finish_tile(acc1, t + 1, gs_t + uint32_t(C));
            } else {
                wgmma_wait<0>();
                finish_tile(acc1, t + 1, gs_t + uint32_t(C));
                break;
            }
        }
        if constexpr (!AREGS) {
            mbar_arrive(&x_empty[xb]);  // every MMA reading this buffer is done
        }
        gs += uint32_t(n_tiles * C);
        gt += uint32_t(n_tiles);

        store_rows(best, p, b, m0 + w * 64 + warp * 16, lane);
    }
    if constexpr (CL > 1) {
        cluster_sync();
    }
#endif
}

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
