// Step 4 of the update (sort_inverse_update.cu): the segmented reduce of each
// piece of L sorted points, one group of lanes per (piece, column block).
// Reads each x row once (gathered by sorted id) and the sorted keys and ids
// once; writes the sums of the clusters wholly inside a piece, and at most 2
// partial rows per piece for clusters cut by its boundaries.
// Included by segment_reduce_{f32,f16,bf16}.cu, one dtype each, so that the
// instantiations build in parallel.
#pragma once

#include "row_io.cuh"
#include "update_kernels.cuh"

#include "../launch_after.cuh"

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

/// Step 4: one group of G lanes (a warp, or a half-warp for the v8 update
/// variants) per (piece, column block blockIdx.y); ROWS rows in flight.
/// Whatever G, VEC and ROWS, every column adds the same rows in the same
/// (sorted) order: the sums are bitwise those of the default configuration.
///
/// Why the loop looks like this: the step is bound by memory-level
/// parallelism, so the registers per thread decide how many rows are in
/// flight per SM, and the instructions per row decide whether the warps keep
/// up (a first version shuffled each row's key, weight and flag and did
/// 64-bit address math per row: 122 registers, 2 blocks per SM, 0.4
/// instructions issued per cycle, 2.9 TB/s against 4.15 for a bare gather of
/// the same rows, ncu at 1M x 128 fp16). Now the run boundaries of a batch of
/// G keys come from one ballot, each row costs one shuffle (its point
/// id, -1 when it is not summed) and a run that goes through the whole
/// batch adds its rows with no per-row test.
///
/// ONCE: x rows through load_once16 (16-byte loads, fp16/bf16 v8 or fp32
/// VEC 4). It is faster with 16 rows in flight (pieces shortened, n ~ 1M;
/// H200: 0.143 vs 0.162 ms at 1M x 128 fp16, 0.205 vs 0.212 fp32) and slower
/// with 8 rows at 3 blocks per SM (the longest pieces: 0.743 vs 0.723 ms at
/// 8M, 0.444 vs 0.432 at 4M x 4096), so only the 16-row shapes use it.
template <typename T, int VEC, int G, int ROWS, int MINB, bool WEIGHTED, bool ONCE>
__global__ void __launch_bounds__(kReduceWarps * 32, MINB)
        segment_reduce_kernel(const ReduceParams p) {
    static_assert(G == 32 || G == 16, "a warp or a half-warp per piece");
    static_assert(ROWS <= G && G % ROWS == 0, "rows in flight come from one batch of G keys");
    wait_for_previous_grid();  // launched with launch_after
    allow_next_grid();
    constexpr int kGroups = kReduceWarps * 32 / G;  // pieces per block
    const int lane = threadIdx.x & (G - 1);
    // the group's lanes: shuffles and ballots name only them (the other
    // half-warp may be on another piece, or done)
    const int shift = G == 32 ? 0 : (threadIdx.x & 16);
    const unsigned gmask = G == 32 ? 0xffffffffu : (0xffffu << shift);
    const int64_t Q = int64_t(blockIdx.x) * kGroups + (threadIdx.x / G);
    if (Q >= p.n_pieces) {
        return;
    }
    const int32_t col = int32_t(blockIdx.y) * G * VEC + lane * VEC;
    const bool col_ok = col < p.d;  // VEC = 4 only when d % 4 == 0
    const bool first_cols = blockIdx.y == 0 && lane == 0;
    const T* xcol = static_cast<const T*>(p.x) + (col_ok ? col : 0);
    const int32_t d32 = int32_t(p.d);  // d < 2^31: the host checks the column blocks

    // sorted positions of a pass are below 2^31 (make_plan): 32-bit
    // positions keep the registers for rows in flight
    const int32_t p0 = int32_t(p.pieces.begin(Q));
    const int32_t p1 = int32_t(p.pieces.end(Q));
    if (p0 >= p1) {
        return;  // n == 0
    }
    // does the first run continue from the previous piece, the last into the
    // next? (keys of different problems always differ)
    const bool head_cont = p0 > 0 && p.sorted.key(p0 - 1) == p.sorted.key(p0);
    const bool tail_cont = p1 < p.m && p.sorted.key(p1) == p.sorted.key(p1 - 1);

    uint32_t cur = p.sorted.key(p0);
    int32_t run_start = p0;
    float acc[VEC];
    float wacc = 0.0f;
#pragma unroll
    for (int e = 0; e < VEC; ++e) acc[e] = 0.0f;

    auto flush = [&](uint32_t key, int32_t rs, int32_t re) {
        if (!p.ks.summed(key)) {
            return;
        }
        const bool complete = (rs > p0 || !head_cont) && (re < p1 || !tail_cont);
        if (complete) {
            const int64_t row = p.ks.row(key);
            if (col_ok) {
                store_vec<VEC>(p.sums + row * p.d + col, acc);
            }
            if (WEIGHTED && first_cols) {
                p.weight_sums[row] = wacc;
            }
        } else {
            // a cut cluster: the first run of the piece (slot 0) or the last (slot 1)
            const int64_t slot = Q * 2 + (rs == p0 ? 0 : 1);
            if (col_ok) {
                store_vec<VEC>(p.part + slot * p.dround + col, acc);
            }
            if (first_cols) {
                p.part_w[slot] = wacc;
                if (rs == p0 && head_cont && (re < p1 || !tail_cont)) {
                    // the cluster ends here: this piece finishes it (list
                    // order is irrelevant: each entry is summed on its own)
                    const int32_t s = p.seg_start[key];
                    Finisher fin;
                    fin.q_last = int32_t(Q);
                    fin.key = key;
                    fin.q_first = int32_t(p.pieces.of(p.ks.problem(key), s));
                    // the cluster is the last run (slot 1) of its first piece
                    // unless it starts exactly there
                    fin.first_slot = fin.q_first * 2 + (s > p.pieces.begin(fin.q_first) ? 1 : 0);
                    const int list = Q - fin.q_first + 1 <= kShortPieces ? 0 : 1;
                    const int32_t at = atomicAdd(p.finishers + list, 1);
                    finisher_list(p.finishers)[list * p.list_cap + at] = fin;
                }
            }
        }
    };
    // acc (and wacc) += row u of the chunk, in order
    auto add = [&](const uint4 raw, const Vec<VEC>& v, float w) {
        Vec<VEC> xv;
        if constexpr (VEC == 8) {
            xv = unpack8<T>(raw);
        } else {
            xv = v;
        }
        if constexpr (WEIGHTED) {
#pragma unroll
            for (int e = 0; e < VEC; ++e) {
                acc[e] = __fadd_rn(acc[e], __fmul_rn(xv.v[e], w));  // c += x * w
            }
            wacc = __fadd_rn(wacc, w);
        } else {
#pragma unroll
            for (int e = 0; e < VEC; ++e) acc[e] += xv.v[e];
        }
    };

    // keys and ids of the first batch of G sorted positions (lane l: base + l);
    // each later batch's are loaded while the one before it is added, so the
    // x rows of a batch never wait behind their ids
    uint32_t next_key = 0u;
    int32_t next_id = 0;
    if (lane < p1 - p0) {
        p.sorted.get(p0 + lane, next_key, next_id);
    }
    for (int32_t base = p0; base < p1; base += G) {
        const int cnt = int(p1 - base < G ? p1 - base : G);
        const uint32_t my_key = next_key;
        const bool in = lane < cnt;
        const bool my_use = in && p.ks.summed(my_key);
        // the lane's point, -1: not summed (reads as +0.0)
        const int32_t my_row = my_use ? next_id : -1;
        float my_w = 1.0f;
        if constexpr (WEIGHTED) {
            my_w = my_use ? p.weights[next_id] : 1.0f;
        }
        // bit j: position base + j starts a run (its key differs from the
        // one before it, the key of the run going on at lane 0)
        const uint32_t prev = __shfl_up_sync(gmask, my_key, 1, G);
        const bool starts = in && my_key != (lane == 0 ? cur : prev);
        const uint32_t bounds = __ballot_sync(gmask, starts) >> shift;
        for (int j0 = 0; j0 < cnt; j0 += ROWS) {
            // issue the loads of up to ROWS rows first (memory-level parallelism) ...
            Vec<VEC> v[VEC == 8 ? 1 : ROWS];
            uint4 raw[VEC == 8 ? ROWS : 1];  // VEC 8: packed fp16/bf16 rows
#pragma unroll
            for (int u = 0; u < ROWS; ++u) {
                const int32_t row = __shfl_sync(gmask, my_row, (j0 + u) & (G - 1), G);
                const bool use = row >= 0 && col_ok;  // row = -1 past cnt too
                const int64_t off = int64_t(row) * d32;
                if constexpr (VEC == 8 && ONCE) {
                    raw[u] = load_once16(xcol + off, use);  // not used: +0.0 x 8
                } else if constexpr (VEC == 8) {
                    raw[u] = use ? *reinterpret_cast<const uint4*>(xcol + off)
                                 : make_uint4(0, 0, 0, 0);
                } else if constexpr (VEC == 4 && sizeof(T) == 4 && ONCE) {
                    const uint4 w = load_once16(xcol + off, use);
                    v[u].v[0] = __uint_as_float(w.x);
                    v[u].v[1] = __uint_as_float(w.y);
                    v[u].v[2] = __uint_as_float(w.z);
                    v[u].v[3] = __uint_as_float(w.w);
                } else if (use) {
                    v[u] = load_vec<T, VEC>(xcol + off);
                } else {
#pragma unroll
                    for (int e = 0; e < VEC; ++e) v[u].v[e] = 0.0f;
                }
            }
            if (j0 == 0 && base + G < p1) {
                // ... the next batch's keys and ids behind them ...
                const int32_t at = base + G + lane;
                next_key = 0u;
                next_id = 0;
                if (at < p1) {
                    p.sorted.get(at, next_key, next_id);
                }
            }
            // ... then add them in sorted order (the order fixes the rounding)
            const uint32_t chunk_bounds = (bounds >> j0) & ((1u << ROWS) - 1u);
            if (chunk_bounds == 0 && j0 + ROWS <= cnt) {
                // the run going on covers the whole chunk
#pragma unroll
                for (int u = 0; u < ROWS; ++u) {
                    const float w = WEIGHTED ? __shfl_sync(gmask, my_w, j0 + u, G) : 1.0f;
                    add(raw[VEC == 8 ? u : 0], v[VEC == 8 ? 0 : u], w);
                }
            } else {
#pragma unroll
                for (int u = 0; u < ROWS; ++u) {
                    if (j0 + u < cnt) {  // uniform across the group
                        if ((chunk_bounds >> u) & 1u) {
                            flush(cur, run_start, base + j0 + u);
                            cur = __shfl_sync(gmask, my_key, j0 + u, G);
                            run_start = base + j0 + u;
#pragma unroll
                            for (int e = 0; e < VEC; ++e) acc[e] = 0.0f;
                            wacc = 0.0f;
                        }
                        const float w = WEIGHTED ? __shfl_sync(gmask, my_w, j0 + u, G) : 1.0f;
                        add(raw[VEC == 8 ? u : 0], v[VEC == 8 ? 0 : u], w);
                    }
                }
            }
        }
    }
    flush(cur, run_start, p1);
}

template <typename T, int VEC, int G, int ROWS, int MINB, bool ONCE>
void launch_reduce(dim3 grid, const ReduceParams& rp, cudaStream_t stream) {
    if (rp.weights != nullptr) {
        launch_after(segment_reduce_kernel<T, VEC, G, ROWS, MINB, true, ONCE>, grid,
                     kReduceWarps * 32, 0, stream, rp);
    } else {
        launch_after(segment_reduce_kernel<T, VEC, G, ROWS, MINB, false, ONCE>, grid,
                     kReduceWarps * 32, 0, stream, rp);
    }
}

template <typename T>
void segment_reduce(dim3 grid, const ReduceParams& rp, bool v8, bool vec4, int rows,
                    cudaStream_t stream) {
    // 16 rows in flight at 2 blocks per SM, or 8 at 3 (reduce_rows); the
    // 16-row shapes read x with load_once16 (see the kernel)
    const bool r8 = rows == 8;
    if (v8) {
        if constexpr (sizeof(T) == 2) {
            if (r8) {
                launch_reduce<T, 8, 16, 8, 3, false>(grid, rp, stream);
            } else {
                launch_reduce<T, 8, 16, 16, 2, true>(grid, rp, stream);
            }
        }
    } else if (vec4) {
        if (r8) {
            launch_reduce<T, 4, 32, 8, 3, false>(grid, rp, stream);
        } else {
            launch_reduce<T, 4, 32, 16, 2, true>(grid, rp, stream);
        }
    } else {
        launch_reduce<T, 1, 32, 16, 2, false>(grid, rp, stream);
    }
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
