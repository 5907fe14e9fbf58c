// The streamed mainloop (flash_assign_sm90_streamed_kernel), for d of any
// number of chunks: the points no longer fit in shared memory beside a ring
// deep enough to keep the tensor cores fed, so each ring slot carries one
// d-chunk of the points and one of the centroids. Memory traffic per row
// tile: its points once per centroid tile (from L2: 64 FLOP per byte loaded,
// which L2 sustains), every centroid once.
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

/// d of any number of chunks (p.chunks): each ring slot carries one d-chunk
/// of the row tile's points and of a centroid tile, loaded together and
/// released as soon as its MMAs are done. Chunk order and MMA order are those
/// of the resident kernel, so both give bitwise the same scores. CL: CTAs per
/// cluster as in the resident kernel; each slot's points chunk is the CTA's
/// own, its centroid chunk comes half from each CTA by multicast.
template <typename T, int CL>
__global__ void __launch_bounds__(kThreads, 1)
        flash_assign_sm90_streamed_kernel(const __grid_constant__ CUtensorMap x_map,
                                          const __grid_constant__ CUtensorMap c_map,
                                          const Params p) {
#if FK_SM90A
    extern __shared__ char smem_raw[];
    const Layout L{p.chunks, p.stages, 0, 2};
    const Smem sm(smem_raw, L);
    const int C = p.chunks;
    const uint32_t S = uint32_t(p.stages);
    const int tid = threadIdx.x;
    static_assert(CL == 1 || CL == 2, "clusters of 1 or 2 CTAs");
    const int rank = CL > 1 ? int(cluster_ctarank()) : 0;
    init_block<CL>(sm, p.stages);
    const int n_tiles = (p.k + kBN - 1) / kBN;

    if (tid < 128) {
        // ------------------------------------------------------ producer
        producer_start(&x_map, &c_map);
        PipelineState g;
        uint32_t gt = 0;  // bias-slot counter
        for (int64_t q = blockIdx.x / CL; q < p.groups; q += gridDim.x / CL) {
            int64_t b, m0;
            row_tile<CL>(p, q, rank, b, m0);
            for (int t = 0; t < n_tiles; ++t, ++gt) {
                put_bias(sm.bias, sm.b_full, sm.b_empty, p, b, t, gt, tid);
                if (tid == 0) {
                    for (int c = 0; c < C; ++c, g.next(S)) {
                        mbar_wait(&sm.c_empty[g.slot], g.phase ^ 1u);
                        mbar_arrive_expect_tx(&sm.c_full[g.slot],
                                              uint32_t(kXTileBytes + kCTileBytes));
                        const int col = c * int(kChunkBytes / sizeof(T));
                        tma_load_2d(sm.slot(g.slot), &x_map, col, int(b * p.n + m0),
                                    &sm.c_full[g.slot]);
                        load_centroid_chunk<CL>(sm.slot(g.slot) + kXTileBytes, &c_map, col,
                                                int(b * p.k + t * kBN), &sm.c_full[g.slot], rank);
                    }
                }
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
    PipelineState g, released;  // the next chunk's slot; the first slot not yet released
    uint32_t gt = 0;          // bias slots
    fa::RowArgMax<1, 16> best;

    // The MMAs of the next chunk (slot g) into acc, as their own commit group;
    // the first chunk of tile t starts from the tile's bias.
    auto mma_chunk = [&](float (&acc)[64], bool first, int t) {
        mbar_wait(&sm.c_full[g.slot], g.phase);
        if (first) {
            // a no-op (at most the previous tile's last chunk is in flight)
            // that shows ptxas that acc's last MMAs are done (see the
            // resident kernel)
            wgmma_wait<1>();
            fill_bias(acc, sm.bias, sm.b_full, sm.b_empty, gt + uint32_t(t), lane);
        }
        wgmma_fence();
        const uint32_t a_addr = smem_u32(sm.slot(g.slot)) + uint32_t(w * 64 * kChunkBytes);
        const uint32_t b_addr = smem_u32(sm.slot(g.slot) + kXTileBytes);
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
            Wgmma<T>::run(acc, sw128_desc(a_addr, kk * 32), sw128_desc(b_addr, kk * 32), true);
        }
        wgmma_commit();
    };
    auto release_before = [&](uint32_t upto) {
        release_slot_before<CL>(released, upto, sm.c_empty, S, lane);
    };
    auto fold_tile = [&](float (&acc)[64], int t) {
        fence_acc(acc);
        best.fold_acc(reinterpret_cast<const float(&)[1][16][4]>(acc), t * kBN, lane);
    };
    // Tile t into acc; once its first chunk is issued, the previous tile
    // (in prev) is complete and is folded while that chunk runs.
    auto mma_tile = [&](float (&acc)[64], float (&prev)[64], int t) {
        mma_chunk(acc, true, t);
        wgmma_wait<1>();
        release_before(g.count);
        g.next(S);
        if (t > 0) {
            fold_tile(prev, t - 1);
        }
        for (int c = 1; c < C; ++c, g.next(S)) {
            mma_chunk(acc, false, t);
            wgmma_wait<1>();
            release_before(g.count);
        }
    };

    for (int64_t q = blockIdx.x / CL; q < p.groups; q += gridDim.x / CL) {
        int64_t b, m0;
        row_tile<CL>(p, q, rank, b, m0);
        best.init();
        // tiles in pairs so each accumulator set is named at compile time
        for (int t = 0;; t += 2) {
            mma_tile(acc0, acc1, t);
            if (t + 1 == n_tiles) {
                wgmma_wait<0>();
                release_before(g.count);
                fold_tile(acc0, t);
                break;
            }
            mma_tile(acc1, acc0, t + 1);
            if (t + 2 == n_tiles) {
                wgmma_wait<0>();
                release_before(g.count);
                fold_tile(acc1, t + 1);
                break;
            }
        }
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
