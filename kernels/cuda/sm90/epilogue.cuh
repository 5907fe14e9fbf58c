// The end of a row tile in the Hopper kernels: each warp's running (best,
// index) per row (fa::RowArgMax, the sm_80 kernel's fold) becomes a label and
// a distance. Unlike the sm_80 epilogue (flash_assign_epilogue.cuh's
// store_rows) no cross-warp reduction is needed: a consumer warp owns whole
// rows, since wgmma's N covers the full centroid tile.
#pragma once

#include "../flash_assign_epilogue.cuh"
#include "params.cuh"
#include "ptx.cuh"

#include <climits>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

#if FK_SM90A
/// The end of a row tile for one warp: reduce each row's (best, index) over
/// the 4 lanes of a quad, then one lane writes label and distance. `row0` is
/// the warp's first row within problem `b`.
__device__ __forceinline__ void store_rows(const fa::RowArgMax<1, 16>& best, const Params& p,
                                           int64_t b, int64_t row0, int lane) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float v = best.best[0][h];
        int i = best.idx[0][h];
        fa::quad_best(v, i);
        const int64_t row = row0 + h * 8 + (lane >> 2);
        if ((lane & 3) == 0 && row < p.n) {
            const int64_t gi = b * p.n + row;
            p.labels[gi] = i == INT_MAX ? 0 : i;  // all NaN: label 0 like the CPU
            if (p.distances != nullptr) {
                if (p.l2) {
                    const float dis = p.x_norms[gi] + (-2.0f * v);
                    p.distances[gi] = dis < 0.0f ? 0.0f : dis;
                } else {
                    p.distances[gi] = v;
                }
            }
        }
    }
}
#endif

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
