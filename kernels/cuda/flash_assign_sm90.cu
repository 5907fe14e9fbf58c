// FlashAssign on Hopper (sm_90a): TMA + wgmma, one producer warpgroup and two
// consumer warpgroups, persistent over tiles of 128 points. Same contract and
// epilogue arithmetic as the sm_80 kernel of flash_assign.cu (scores
// x.c - ||c||^2 / 2 folded into a running (best, lowest index) per row); it
// differs in how the inner products are produced.
//
// Why it is shaped this way:
// - The sm_80 kernel's mma.sync mainloop tops out near 300 TFLOP/s in fp16:
//   every warp moves its operands shared -> registers (ldmatrix) and the
//   epilogue stalls the tensor cores. wgmma reads both operands straight from
//   shared memory and runs asynchronously, so a consumer warpgroup folds the
//   scores of centroid tile j while the tensor cores compute tile j + 1 into a
//   second accumulator set (acc0 / acc1).
// - Producer warpgroup: TMA brings the block's 128 x d points once per row
//   tile (double-buffered where shared memory allows, so the next row tile
//   loads under the current one) and streams the centroids in chunks of 128 x 128 bytes through a ring of
//   `stages` slots; it also writes each centroid tile's score bias
//   (-||c||^2 / 2, 0 for IP, -inf past k) into a small ring. The consumers
//   of the fp16/bf16/TF32 kernels load it as the tile's accumulator start
//   (the MMAs add x.c to it), so the fold is a compare and two selects per
//   score with no add: 2% less time per Lloyd iteration at the power cap, 4%
//   at k = 65536 (see fill_bias). From k = 32768 the resident kernel folds
//   max-first (a tree of maxima, the column searched only when a row
//   improves): 3% at k = 65536 (MaxFirstVariant). All rings are
//   mbarrier-synchronised: "full" barriers complete on TMA bytes (or the bias
//   writes), "empty" barriers on one arrival from each of the 256 consumer
//   threads.
// - Consumers: warpgroup w owns rows [64 w, 64 w + 64) of the row tile; each
//   wgmma is m64 n128 k(32 bytes), operands in the 128-byte swizzle TMA
//   writes, so shared-memory reads are conflict-free with no padding.
//   fp16/bf16 with d <= 128: each consumer copies its rows of points into
//   registers once per row tile (ldmatrix) and passes them as wgmma's A
//   operand, so the tensor cores read only the centroids from shared memory
//   (+3% at 1M x 8192 x 128 on the H200, bitwise the same scores).
// - The overlap of the fold with the next tile's MMAs exists only if ptxas
//   keeps the wgmmas asynchronous: with two folds in one kernel (one writing
//   the accumulators) it serialised every wgmma (ptxas info C7511/C7515,
//   "Potential Performance Loss") and the kernel lost 20-30% (H200). One
//   fold per kernel; tests/check_wgmma_pipelined.cmake (CTest) fails
//   if ptxas reports a serialised wgmma again.
// - Persistent grid (one block per SM, row tiles strided by the grid): block
//   start-up (barrier init, first loads) is paid once per SM, not once per
//   128 points.
// - CTA pairs (clusters of 2, ClusterVariant): two SMs take two row tiles
//   against the same centroid tiles and each loads half of every centroid
//   chunk into both (TMA multicast). No faster in short bursts, but long runs
//   sit at the H200's power cap, where halving the centroids' L2 traffic is
//   clock: 1-4% per Lloyd iteration.
// - d beyond 4 chunks (256 fp16/bf16, 128 fp32): the block's points no
//   longer fit in shared memory beside a ring deep enough to keep the tensor
//   cores fed, so a second kernel streams them: each ring slot carries one
//   d-chunk of the points *and* of the centroids (x is re-read from L2 once
//   per centroid tile: 64 FLOP per byte loaded, which L2 sustains), slots
//   are released chunk by chunk, and the fold of tile t runs under the first
//   chunks of tile t + 1.
// - fp32 exact (3xTF32) is a third kernel, flash_assign_sm90_exact_kernel:
//   points split into tf32 high/low parts in registers, centroids split once
//   per call, three MMAs per product (2.3x the sm_80 3xTF32 on the H200).
// Limits (the caller falls back to the sm_80 kernel outside them): rows of
// 16-byte multiples and 16-byte aligned bases (TMA), batch * n and batch * k
// below 2^31 (TMA coordinates are int32), fp32 exact d <= 128.
//
// Where the parts are (sm90/, by role as in flash-attention 3's hopper/):
// ptx.cuh (one wrapper per PTX instruction), params.cuh (sizes, Params,
// shared-memory Layout), smem.cuh, pipeline.cuh (the chunk ring:
// PipelineState, slot loads and releases), bias.cuh (the bias ring), block.cuh
// (barriers, warpgroup roles, row tiles), epilogue.cuh (labels and distances),
// the three mainloops (mainloop_resident.cuh, mainloop_streamed.cuh,
// mainloop_exact.cuh), launch_template.cuh (shared memory, Params, TMA maps
// from tma.cu, the launch) instantiated per kernel in instantiations/,
// heuristics.cu (which configuration runs, and why), and device_probe.cu. This
// file checks that a call can run and dispatches it.
#include "flash_assign_sm90.h"

#include "cuda_check.h"
#include "dtype.cuh"
#include "sm90/device_probe.h"
#include "sm90/heuristics.cuh"
#include "sm90/launch.h"
#include "sm90/params.cuh"

#include <flashkmeans/variants.h>

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace flashkmeans {
namespace cuda {

namespace {

using sm90::Mainloop;
using sm90::launch;
using sm90::launch_regs;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

} // namespace

std::string flash_assign_sm90_unsupported(const kernels::AssignArgs& a) {
    using sm90::kBM;
    using sm90::kExactMaxD;
    if (std::strcmp(kernels::variants_or_default(a.variants).sm90, "0") == 0) {
        return "switched off by the variant sm90 = \"0\"";
    }
    int device = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    if (!sm90::device_runs_sm90a(device)) {
        return "needs a compute capability 9.0 GPU and a build with sm_90a code";
    }
    const bool exact = a.dtype == DType::Float32 && a.precision != Precision::TF32;
    if (exact && a.d > kExactMaxD) {
        return "fp32 exact mode (3xTF32) takes d <= " + std::to_string(kExactMaxD) +
               " on the Hopper kernel; the sm_80 kernel runs larger d";
    }
    const int64_t esz = int64_t(dtype_size(a.dtype));
    if ((a.d * esz) % 16 != 0 || !aligned16(a.x) || !aligned16(a.centroids)) {
        return "rows must be a multiple of 16 bytes and 16-byte aligned";
    }
    // (TMA coordinates are int32; a cluster's spare row tile reads up to 128
    // rows past the end)
    if (a.n * a.batch > INT_MAX - 2 * kBM || a.k * a.batch * (exact ? 2 : 1) > INT_MAX) {
        return exact ? "batch * n (+ 256) and 2 * batch * k (exact mode) must be below 2^31"
                     : "batch * n (+ 256) and batch * k must be below 2^31";
    }
    return "";
}

void flash_assign_sm90(const kernels::AssignArgs& a, cudaStream_t stream) {
    const std::string why = flash_assign_sm90_unsupported(a);
    if (!why.empty()) {
        throw KernelError("flashkmeans: flash_assign: the Hopper kernel cannot run this call: " + why);
    }
    const int chunks =
            int((a.d * int64_t(dtype_size(a.dtype)) + sm90::kChunkBytes - 1) / sm90::kChunkBytes);
    const kernels::Variants& var = kernels::variants_or_default(a.variants);
    const bool streamed = sm90::use_streamed(chunks, var);
    const bool a_regs = sm90::use_points_in_registers(var);
    const bool pair = sm90::use_resident_pairs(var);
    const bool streamed_pair = sm90::use_streamed_pairs(chunks, var);
    constexpr Mainloop kRes = Mainloop::Resident;
    dispatch_dtype(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same<T, float>::value) {
            if (a.precision != Precision::TF32) {
                constexpr Mainloop kEx = Mainloop::Exact3xTF32;
                switch (chunks) {  // at most kExactMaxD, checked above
                    case 1: launch<T, kEx, 1>(a, chunks, stream); return;
                    case 2: launch<T, kEx, 2>(a, chunks, stream); return;
                    case 3: launch<T, kEx, 3>(a, chunks, stream); return;
                    default: launch<T, kEx, 4>(a, chunks, stream); return;
                }
            }
        } else {
            if (a_regs && !streamed && chunks <= 2) {
                const bool maxf = sm90::use_max_first_fold(a.k, var);
                chunks == 1 ? launch_regs<T, 1>(a, pair, maxf, stream)
                            : launch_regs<T, 2>(a, pair, maxf, stream);
                return;
            }
        }
        switch (streamed ? 0 : chunks) {
            case 0:
                streamed_pair ? launch<T, Mainloop::Streamed, 0, false, 2>(a, chunks, stream)
                              : launch<T, Mainloop::Streamed, 0, false, 1>(a, chunks, stream);
                return;
            case 1: launch<T, kRes, 1>(a, chunks, stream); return;
            case 2: launch<T, kRes, 2>(a, chunks, stream); return;
            case 3: launch<T, kRes, 3>(a, chunks, stream); return;
            default: launch<T, kRes, 4>(a, chunks, stream); return;
        }
    });
}

} // namespace cuda
} // namespace flashkmeans
