// The exact mainloop (flash_assign_sm90_exact_kernel): fp32 Precision::Exact
// as 3xTF32 for d <= 128, the points split into tf32 high and low parts in
// registers, the centroids split once per call (split_tf32.cu). Memory
// traffic per row tile: its points once, both parts of every centroid once.
#pragma once

#include "../flash_assign_epilogue.cuh"
#include "../flash_assign_mainloop.cuh"
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

/// fp32 Precision::Exact as 3xTF32 for d of at most 4 chunks (128 fp32):
/// x.c = x_hi.c_hi + x_lo.c_hi + x_hi.c_lo with x = x_hi + x_lo and c = c_hi
/// + c_lo split into tf32 parts (round to nearest, fa::split_tf32), the
/// dropped x_lo.c_lo below 2^-22 |x||c|: fp32-level inner products, as the
/// sm_80 kernel's 3xTF32. The centroids are split once per call into `c_map`
/// (high parts in rows [0, lo_row), low parts in rows [lo_row, 2 lo_row)); a
/// ring slot carries one d-chunk of both parts of a centroid tile. Each
/// consumer splits its 64 rows of points into registers once per row tile
/// (wgmma's A operand; the points buffer is released at once), which is 128
/// registers at d = 128: one accumulator set, not two. So the consumer folds
/// tile t after its MMAs and before tile t + 1's; the other warpgroup's MMAs
/// keep the tensor cores busy meanwhile, and the MMAs of a tile are three
/// times those of one TF32 product, so the fold is a small share. Slots are
/// released chunk by chunk (one commit group per chunk), as in the streamed
/// kernel, so the ring needs only 2 slots.
template <int CHUNKS>
__global__ void __launch_bounds__(kThreads, 1)
        flash_assign_sm90_exact_kernel(const __grid_constant__ CUtensorMap x_map,
                                       const __grid_constant__ CUtensorMap c_map, const Params p) {
#if FK_SM90A
    extern __shared__ char smem_raw[];
    constexpr int C = CHUNKS;
    constexpr int kCols = kChunkBytes / 4;  // fp32 values in one chunk of a row
    const Layout L{C, p.stages, p.x_buffers, 2};
    const Smem sm(smem_raw, L);
    const int XB = p.x_buffers;
    const uint32_t S = uint32_t(p.stages);
    const int tid = threadIdx.x;
    init_block(sm, p.stages);
    const int n_tiles = (p.k + kBN - 1) / kBN;

    if (tid < 128) {
        // ------------------------------------------------------ producer
        producer_start(&x_map, &c_map);
        PipelineState g;
        uint32_t gt = 0;  // bias-slot counter
        int64_t local = 0;
        for (int64_t r = blockIdx.x; r < p.row_tiles; r += gridDim.x, ++local) {
            const int64_t b = r / p.tiles_per_problem;
            const int64_t m0 = (r % p.tiles_per_problem) * kBM;
            const int xb = int(local % XB);
            if (tid == 0) {
                mbar_wait(&sm.x_empty[xb], uint32_t((local / XB) & 1) ^ 1u);
                mbar_arrive_expect_tx(&sm.x_full[xb], uint32_t(C * kXTileBytes));
                for (int c = 0; c < C; ++c) {
                    tma_load_2d(sm.x_buf + (xb * C + c) * kXTileBytes, &x_map, c * kCols,
                                int(b * p.n + m0), &sm.x_full[xb]);
                }
            }
            for (int t = 0; t < n_tiles; ++t, ++gt) {
                put_bias(sm.bias, sm.b_full, sm.b_empty, p, b, t, gt, tid);
                if (tid == 0) {
                    const int row = int(b * p.k + t * kBN);
                    for (int c = 0; c < C; ++c, g.next(S)) {
                        mbar_wait(&sm.c_empty[g.slot], g.phase ^ 1u);
                        mbar_arrive_expect_tx(&sm.c_full[g.slot], uint32_t(2 * kCTileBytes));
                        tma_load_2d(sm.slot(g.slot), &c_map, c * kCols, row, &sm.c_full[g.slot]);
                        tma_load_2d(sm.slot(g.slot) + kCTileBytes, &c_map, c * kCols,
                                    p.lo_row + row, &sm.c_full[g.slot]);
                    }
                }
            }
        }
        return;
    }

    // ---------------------------------------------------------- consumers
    setmaxnreg_inc<232>();
    const int w = consumer_group();  // rows [64 w, 64 w + 64)
    const int lane = tid & 31, warp = (tid >> 5) & 3;
    float acc[64];
    uint32_t a_hi[C][kKSteps][4], a_lo[C][kKSteps][4];  // the warp's 16 rows of points
    PipelineState g, released;  // the next chunk's slot; the first slot not yet released
    uint32_t gt = 0;          // bias slots
    int64_t local = 0;
    fa::RowArgMax<1, 16> best;

    auto release_before = [&](uint32_t upto) {
        release_slot_before(released, upto, sm.c_empty, S, lane);
    };

    for (int64_t r = blockIdx.x; r < p.row_tiles; r += gridDim.x, ++local) {
        const int64_t b = r / p.tiles_per_problem;
        const int64_t m0 = (r % p.tiles_per_problem) * kBM;
        const int xb = int(local % XB);
        mbar_wait(&sm.x_full[xb], uint32_t((local / XB) & 1));
        // register i of k-step kk: row g + 8 (i & 1), column 8 kk + t + 4 (i >> 1)
        // (g = lane / 4, t = lane % 4); through the swizzle the 32 lanes hit
        // 32 banks
#pragma unroll
        for (int c = 0; c < C; ++c) {
            const char* chunk = sm.x_buf + (xb * C + c) * kXTileBytes;
#pragma unroll
            for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int row = w * 64 + warp * 16 + (lane >> 2) + 8 * (i & 1);
                    const int byte = (kk * 8 + (lane & 3) + 4 * (i >> 1)) * 4;
                    const float v =
                            *reinterpret_cast<const float*>(chunk + sw128_offset(row, byte));
                    fa::split_tf32(v, a_hi[c][kk][i], a_lo[c][kk][i]);
                }
            }
        }
        mbar_arrive(&sm.x_empty[xb]);  // the points are in registers now
        best.init();

        for (int t = 0; t < n_tiles; ++t) {
#pragma unroll
            for (int c = 0; c < C; ++c) {
                mbar_wait(&sm.c_full[g.slot], g.phase);
                wgmma_fence();
                const uint32_t hi = smem_u32(sm.slot(g.slot));
                const uint32_t lo = hi + uint32_t(kCTileBytes);
#pragma unroll
                for (int kk = 0; kk < kKSteps; ++kk) {
                    // small products first, into the accumulator the large one joins
                    WgmmaRegA<float>::run(acc, a_lo[c][kk], sw128_desc(hi, kk * 32), (c | kk) != 0);
                    WgmmaRegA<float>::run(acc, a_hi[c][kk], sw128_desc(lo, kk * 32), 1);
                    WgmmaRegA<float>::run(acc, a_hi[c][kk], sw128_desc(hi, kk * 32), 1);
                }
                wgmma_commit();
                g.next(S);
                wgmma_wait<1>();
                release_before(g.count - 1);
            }
            wgmma_wait<0>();
            release_before(g.count);
            fence_acc(acc);
            fold_with_bias(best, acc, sm.bias, sm.b_full, sm.b_empty, t, gt + uint32_t(t), lane);
        }
        gt += uint32_t(n_tiles);
        store_rows(best, p, b, m0 + w * 64 + warp * 16, lane);
    }
#endif
}

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
