// FlashAssign, part 2: the argmin epilogue. What happens to the accumulator
// after the mainloop has produced a BM x BN block of inner products.
//
// Scores are kept as "larger is better" so L2 and IP share one comparison:
//   L2: v = x.c - ||c||^2 / 2     (argmax v == argmin ||c||^2 - 2 x.c)
//   IP: v = x.c
// Scaling by -2 is exact in floating point, so -2 * fl(x.c - ||c||^2/2) ==
// fl(||c||^2 - 2 x.c) bit for bit: given the same inner product this ranks and
// ties exactly like the CPU kernel and FAISS. The per-column bias (-||c||^2/2,
// 0, or -inf for columns past k) costs one add per score (none in the Hopper
// fp16/bf16/TF32 kernels, whose MMAs start from it: fold_acc), and masked
// columns can never win. Each thread folds its scores into a running (best, index) per
// row in registers, scanning its columns in increasing order with a strict >,
// so the lowest index wins ties; every cross-thread reduction then compares
// (score, index) lexicographically, which keeps that rule whatever the order.
#pragma once

#include <climits>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace fa {

__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }

/// (v, i) beats (bv, bi): larger score, or the same score and a lower index.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
    return v > bv || (v == bv && i < bi);
}

/// (v, i) becomes the best of the 4 lanes of its quad (the lanes holding one
/// row), the same in each.
__device__ __forceinline__ void quad_best(float& v, int& i) {
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, off);
        const int oi = __shfl_xor_sync(0xffffffffu, i, off);
        if (better(ov, oi, v, i)) {
            v = ov;
            i = oi;
        }
    }
}

/// The running (best, argbest) of the rows a thread owns: for each m16
/// fragment, row g and row g + 8 (g = lane / 4).
template <int MT, int NT>
struct RowArgMax {
    float best[MT][2];
    int idx[MT][2];

    __device__ __forceinline__ void init() {
#pragma unroll
        for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                best[mi][h] = neg_inf();
                idx[mi][h] = INT_MAX;
            }
        }
    }

    /// Folds one tile of scores. `norms` is the smem copy of ||c||^2 for the
    /// tile's BN columns (indexed from the warp's first column `col0`, a
    /// global centroid index); `k` masks columns past the end.
    __device__ __forceinline__ void fold(const float (&acc)[MT][NT][4], const float* norms,
                                         int col0, int k, bool l2, int lane) {
        const int t = lane & 3;
#pragma unroll
        for (int ni = 0; ni < NT; ++ni) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int c = ni * 8 + 2 * t + e;
                const int col = col0 + c;
                const float bias = col < k ? (l2 ? -0.5f * norms[c] : 0.0f) : neg_inf();
#pragma unroll
                for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        const float v = acc[mi][ni][2 * h + e] + bias;
                        if (v > best[mi][h]) {
                            best[mi][h] = v;
                            idx[mi][h] = col;
                        }
                    }
                }
            }
        }
    }

    /// fold() with the column bias precomputed in smem (`bias[c]` =
    /// -||c||^2 / 2, 0 for IP, -inf past k: the same values fold() derives,
    /// so the scores are bitwise the same): one 8-byte load per column pair
    /// instead of a load, a multiply and two selects per column.
    __device__ __forceinline__ void fold_bias(const float (&acc)[MT][NT][4], const float* bias,
                                              int col0, int lane) {
        fold_scores<true>(acc, bias, col0, lane);
    }
    /// fold_bias() of scores that already hold their bias (the Hopper
    /// fp16/bf16/TF32 kernels start each tile's MMAs from it): the same
    /// compares and selects in the same order, without the add.
    __device__ __forceinline__ void fold_acc(const float (&acc)[MT][NT][4], int col0, int lane) {
        fold_scores<false>(acc, nullptr, col0, lane);
    }

    /// fold_acc() for many centroid tiles: each thread's maximum over its
    /// columns first (a tree of FMNMX; fmaxf returns one of its operands and
    /// skips NaN), and the search for its column only when the maximum beats
    /// the row's best in some lane of the warp. A new best at tile t of a row
    /// has probability ~1/t, so at k = 65536 (512 tiles) most tiles skip the
    /// search; at few tiles nearly every one searches and the longer chain
    /// loses to fold_acc (MaxFirstVariant says where the switch is). The
    /// search keeps the lowest column holding the maximum, the 4 lanes of a
    /// quad agree on it (lexicographic (score, index) as everywhere), and a
    /// later tile must be strictly greater: the same (best, index) as
    /// fold_acc, kept equal in the quad's lanes.
    __device__ __forceinline__ void fold_acc_max_first(const float (&acc)[MT][NT][4], int col0,
                                                       int lane) {
        static_assert(MT == 1 && NT == 16, "one m16 fragment, 16 column pairs");
        float m[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float r[8];  // written out: a loop-built tree went to local memory
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                r[i] = fmaxf(fmaxf(acc[0][i][2 * h], acc[0][i][2 * h + 1]),
                             fmaxf(acc[0][i + 8][2 * h], acc[0][i + 8][2 * h + 1]));
            }
            m[h] = fmaxf(fmaxf(fmaxf(r[0], r[4]), fmaxf(r[1], r[5])),
                         fmaxf(fmaxf(r[2], r[6]), fmaxf(r[3], r[7])));
        }
        if (!__any_sync(0xffffffffu, m[0] > best[0][0] || m[1] > best[0][1])) {
            return;
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            // the lowest column holding m, less 2 t; none (only NaN): stays
            // above every real column once 2 t is added
            int c = INT_MAX - 8;
#pragma unroll
            for (int ni = NT - 1; ni >= 0; --ni) {
#pragma unroll
                for (int e = 1; e >= 0; --e) {
                    if (acc[0][ni][2 * h + e] == m[h]) {
                        c = ni * 8 + e;  // an immediate: 2 t is added once
                    }
                }
            }
            c += 2 * (lane & 3);
            float v = m[h] == m[h] ? m[h] : neg_inf();  // a lane of NaN only: no winner
            quad_best(v, c);
            if (v > best[0][h]) {
                best[0][h] = v;
                idx[0][h] = col0 + c;
            }
        }
    }

    /// fold_bias (ADD_BIAS) and fold_acc. The winning column is first kept
    /// relative to the thread's first column (a constant per element, so the
    /// select takes an immediate and no column arithmetic runs per score) and
    /// made global once per tile; same comparisons in the same order as
    /// fold(), so the same (best, index).
    template <bool ADD_BIAS>
    __device__ __forceinline__ void fold_scores(const float (&acc)[MT][NT][4], const float* bias,
                                                int col0, int lane) {
        const int t = lane & 3;
        int won[MT][2];  // column of the tile's winner - (col0 + 2 t); -1: none
#pragma unroll
        for (int mi = 0; mi < MT; ++mi) {
            won[mi][0] = won[mi][1] = -1;
        }
#pragma unroll
        for (int ni = 0; ni < NT; ++ni) {
            float2 b2 = make_float2(0.0f, 0.0f);
            if constexpr (ADD_BIAS) {
                b2 = *reinterpret_cast<const float2*>(bias + ni * 8 + 2 * t);
            }
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const float b = e == 0 ? b2.x : b2.y;
#pragma unroll
                for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        const float v = ADD_BIAS ? acc[mi][ni][2 * h + e] + b
                                                 : acc[mi][ni][2 * h + e];
                        if (v > best[mi][h]) {
                            best[mi][h] = v;
                            won[mi][h] = ni * 8 + e;
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                if (won[mi][h] >= 0) {
                    idx[mi][h] = col0 + 2 * t + won[mi][h];
                }
            }
        }
    }
};

/// The end of a block: reduce each row's (best, index) over the 4 lanes of a
/// quad (shuffles) and the WARPS_N warps sharing the row (shared memory
/// `red`, WARPS_N * BM pairs), then write label and distance for the block's
/// rows [m0, m0 + nrows).
template <int BM, int WARPS_N, int MT, int NT>
__device__ __forceinline__ void store_rows(RowArgMax<MT, NT>& r, float2* red, int warp_m,
                                           int warp_n, int lane, int tid, int threads,
                                           int nrows, bool l2, const float* x_norms,
                                           int32_t* labels, float* distances) {
    constexpr int WM = MT * 16;
#pragma unroll
    for (int mi = 0; mi < MT; ++mi) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float v = r.best[mi][h];
            int i = r.idx[mi][h];
            quad_best(v, i);
            if ((lane & 3) == 0) {
                const int row = warp_m * WM + mi * 16 + h * 8 + (lane >> 2);
                red[warp_n * BM + row] = make_float2(v, __int_as_float(i));
            }
        }
    }
    __syncthreads();
    for (int row = tid; row < nrows; row += threads) {
        float v = red[row].x;
        int i = __float_as_int(red[row].y);
#pragma unroll
        for (int w = 1; w < WARPS_N; ++w) {
            const float2 o = red[w * BM + row];
            if (better(o.x, __float_as_int(o.y), v, i)) {
                v = o.x;
                i = __float_as_int(o.y);
            }
        }
        if (i == INT_MAX) {
            i = 0;  // every score was NaN: label 0 like the CPU kernel
        }
        labels[row] = i;
        if (distances != nullptr) {
            // -2 v == ||c||^2 - 2 x.c exactly; clamp round-off negatives
            if (l2) {
                const float dis = x_norms[row] + (-2.0f * v);
                distances[row] = dis < 0.0f ? 0.0f : dis;
            } else {
                distances[row] = v;
            }
        }
    }
}

} // namespace fa
} // namespace cuda
} // namespace flashkmeans
