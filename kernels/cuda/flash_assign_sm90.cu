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
#include "flash_assign_sm90.h"

#include "cuda_check.h"
#include "dtype.cuh"
#include "flash_assign_epilogue.cuh"
#include "flash_assign_mainloop.cuh"
#include "sm90_ptx.cuh"
#include "tuning_variant.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>

namespace flashkmeans {
namespace cuda {

namespace {

constexpr int kBM = 128;           // points per row tile (2 consumer warpgroups x 64)
constexpr int kBN = 128;           // centroids per tile (one wgmma N)
constexpr int kChunkBytes = 128;   // bytes of one row of one d-chunk = swizzle width
constexpr int kMaxResidentChunks = 4;  // beyond: the streamed kernel
constexpr int kExactMaxD = 128;        // fp32 3xTF32: 4 chunks, points split into 128 registers
constexpr int kBiasSlots = 4;      // centroid tiles whose bias is staged ahead
constexpr int kMaxStages = 12;
/// Whether the resident kernel's ring has a power-of-two number of slots, so
/// that a ring position is a mask and a shift: a division by a run-time slot
/// count cost ~20 instructions per centroid tile in the consumers' loop, and
/// they are issue-bound (H200, one call, same binary pair: 1M x 8192 x 128
/// fp16 3.57 vs 3.89 ms, 1M x 65536 31.7 vs 34.3). Not with 3 chunks: 8
/// slots would leave room for one points buffer only, 4 are too few.
constexpr bool resident_ring_pow2(int chunks) { return chunks != 3; }
constexpr int kThreads = 384;      // producer + 2 consumer warpgroups
constexpr int kXTileBytes = kBM * kChunkBytes;  // one d-chunk of a row tile
constexpr int kCTileBytes = kBN * kChunkBytes;  // one d-chunk of a centroid tile
[[maybe_unused]] constexpr int kKSteps = kChunkBytes / 32;       // wgmmas per d-chunk

struct Params {
    int chunks;  // d-chunks of 128 bytes
    int32_t* labels;
    float* distances;      // null: labels only
    const float* x_norms;  // L2 distances only
    const float* c_norms;  // L2 only
    int64_t n;
    int k;
    int stages;
    int x_buffers;  // 2: the next row tile's points load under this one; 1 when smem is short
    bool l2;
    int64_t tiles_per_problem;  // row tiles of one problem
    int64_t row_tiles;          // over the whole batch
    // resident and streamed kernels: row tiles go to a cluster of CL CTAs CL
    // at a time, all of one problem (so that they share the centroid tiles)
    int64_t groups_per_problem;  // ceil(tiles_per_problem / CL)
    int64_t groups;              // over the whole batch
    int lo_row;                 // exact kernel: first row of the low parts in c_map (batch * k)
    int stage_shift;            // resident_ring_pow2: stages == 1 << stage_shift
};

/// Shared-memory layout, from a 1024-byte aligned base: resident points
/// (x_buffers x chunks; none when streamed), the ring (a slot holds
/// slot_tiles 16 KB tiles: one centroid chunk; when streamed a points chunk
/// followed by a centroid chunk; in the exact kernel a chunk of the
/// centroids' tf32 high parts followed by the same chunk of their low parts),
/// the bias ring, the barriers.
struct Layout {
    int chunks, stages, x_buffers, slot_tiles;
    __host__ __device__ int x_bytes() const { return x_buffers * chunks * kXTileBytes; }
    __host__ __device__ int slot_bytes() const { return slot_tiles * kCTileBytes; }
    __host__ __device__ int c_offset() const { return x_bytes(); }
    __host__ __device__ int bias_offset() const { return c_offset() + stages * slot_bytes(); }
    __host__ __device__ int bar_offset() const { return bias_offset() + kBiasSlots * kBN * 4; }
    __host__ __device__ int bytes() const {
        return bar_offset() + (4 + 2 * stages + 2 * kBiasSlots) * 8;
    }
};

// Device-side pieces of the two kernels (compiled for sm_90a only, like the
// kernels' bodies).
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

/// Producer side of the bias ring: thread `tid` (of 128) writes column tid of
/// centroid tile t's bias into the next slot, the very expression of
/// fa::RowArgMax::fold (-||c||^2 / 2 for L2, 0 for IP, -inf past k).
__device__ __forceinline__ void put_bias(float* bias, uint64_t* b_full, uint64_t* b_empty,
                                         const Params& p, int64_t b, int t, uint32_t gt, int tid) {
    using namespace sm90;
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
    using namespace sm90;
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
/// after; scores are bias + x.c summed inside the tensor core instead of
/// fl(x.c) + bias, a rounding difference of the size of the inner product's
/// own: on 1M fp16 points at k = 1024 to 65536 the labels equal the plain
/// reference kernel's (fp32 FMA, then + bias) to the 4th decimal of a percent
/// and differ from the sm_80 kernel's on 0-5 points (bench_kernels' agree
/// columns, bench/results/2026-11-22-h200-session16 at 91e0225); the float64 tests'
/// near-tie rule holds (CudaFlashAssign.Hopper*). H200,
/// same binary, alternating: 1M x 8192 x 128 fp16 4.09-4.11 vs 4.19-4.21 ms
/// per Lloyd iteration (40 iterations, at the 700 W cap), 4M x 4096 8.47-8.48
/// vs 8.60; FlashAssign at 1M x 65536 29.6-29.7 vs 30.9 ms; 8M and 1M x 1024
/// within 1%; streamed d = 768 10.87 vs 11.11-11.13 ms per iteration (but
/// 4-5% slower in short bursts: the fill delays a tile's first MMAs), TF32
/// the same.
__device__ __forceinline__ void fill_bias(float (&acc)[64], const float* bias, uint64_t* b_full,
                                          uint64_t* b_empty, uint32_t gt, int lane) {
    using namespace sm90;
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

constexpr int kConsumerThreads = kThreads - 128;

/// The block's shared memory cut by a Layout, and its mbarriers: "full"
/// barriers complete on TMA bytes (one arrival with expect_tx) or, for the
/// bias ring, on the 128 producer threads' writes; "empty" barriers on one
/// arrival from each consumer thread.
struct Smem {
    char* x_buf;  // resident points (unused when streamed)
    char* ring;   // the chunk ring
    int slot_bytes;
    float* bias;
    uint64_t *x_full, *x_empty, *c_full, *c_empty, *b_full, *b_empty;

    __device__ Smem(char* raw, const Layout& L) {
        // 1024-byte aligned for the 128B swizzle; pointer arithmetic on raw
        // (not an integer round trip) keeps the compiler aware that this is
        // shared memory, so bias reads are LDS, not generic loads
        char* const base = raw + ((1024u - (sm90::smem_u32(raw) & 1023u)) & 1023u);
        x_buf = base;
        ring = base + L.c_offset();
        slot_bytes = L.slot_bytes();
        bias = reinterpret_cast<float*>(base + L.bias_offset());
        x_full = reinterpret_cast<uint64_t*>(base + L.bar_offset());
        x_empty = x_full + 2;
        c_full = x_empty + 2;
        c_empty = c_full + L.stages;
        b_full = c_empty + L.stages;
        b_empty = b_full + kBiasSlots;
    }
    /// Ring slot i (of the `stages`).
    __device__ char* slot(uint32_t i) const { return ring + int(i) * slot_bytes; }
    /// c_empty_count: arrivals that free a ring slot (every consumer thread,
    /// or one per consumer warp of each CTA of a cluster sharing the ring).
    __device__ void init_barriers(int stages, int c_empty_count) const {
#if FK_SM90A
        using namespace sm90;
        for (int i = 0; i < 2; ++i) {
            mbar_init(&x_full[i], 1);
            mbar_init(&x_empty[i], kConsumerThreads);
        }
        for (int s = 0; s < stages; ++s) {
            mbar_init(&c_full[s], 1);
            mbar_init(&c_empty[s], c_empty_count);
        }
        for (int s = 0; s < kBiasSlots; ++s) {
            mbar_init(&b_full[s], 128);
            mbar_init(&b_empty[s], kConsumerThreads);
        }
        mbar_init_fence();
#endif
    }
};
#endif

/// The streamed and exact kernels' walk through a ring of a run-time number
/// of slots, one slot at a time: a count, the slot and its phase parity,
/// carried instead of derived (`g % S`, `g / S` by a run-time S cost ~20
/// instructions each, and the consumers are issue-bound).
struct RingCounter {
    uint32_t count = 0, slot = 0, phase = 0;
    __device__ __forceinline__ void next(uint32_t slots) {
        ++count;
        if (++slot == slots) {
            slot = 0;
            phase ^= 1u;
        }
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
                sm90::mbar_arrive_cluster(empty, uint32_t(cta));
            }
        }
    } else {
        sm90::mbar_arrive(empty);
    }
}
/// The streamed and exact consumers, after a wgmma wait that leaves at most
/// the newest chunk's MMAs in flight: frees the ring slot before `upto` if it
/// is still held. Each wait is followed by one such call, so one slot at most
/// is ever held besides the newest (an `if`, not a loop).
template <int CL = 1>
__device__ __forceinline__ void release_slot_before(RingCounter& released, uint32_t upto,
                                                    uint64_t* c_empty, uint32_t slots, int lane) {
    if (released.count < upto) {
        release_slot<CL>(&c_empty[released.slot], lane);
        released.next(slots);
    }
}
/// The row tile of CTA `rank` in its cluster's group q of CL row tiles: row
/// m0 of problem b (past the problem's end when CL does not divide its
/// tiles: computed, not stored).
template <int CL>
__device__ __forceinline__ void row_tile(const Params& p, int64_t q, int rank, int64_t& b,
                                         int64_t& m0) {
    b = q / p.groups_per_problem;
    m0 = ((q % p.groups_per_problem) * CL + rank) * kBM;
}
/// The producer's load of one d-chunk (column col) of the centroid tile
/// starting at row `row` into `dst`: alone, the whole chunk; in a cluster,
/// this CTA's share of its rows, multicast into every CTA.
template <int CL>
__device__ __forceinline__ void load_centroid_chunk(char* dst, const CUtensorMap* c_map, int col,
                                                    int row, uint64_t* full, int rank) {
    if constexpr (CL > 1) {
        constexpr int kPart = kBN / CL;
        sm90::tma_load_2d_multicast(dst + rank * kPart * kChunkBytes, c_map, col,
                                    row + rank * kPart, full, uint16_t((1u << CL) - 1u));
    } else {
        sm90::tma_load_2d(dst, c_map, col, row, full);
    }
}
/// Byte offset of byte `byte` of row `row` in a TMA tile written with the
/// 128-byte swizzle (rows of 128 bytes, 1024-byte aligned): 16-byte unit u of
/// row r sits at u ^ (r % 8).
__device__ __forceinline__ int sw128_offset(int row, int byte) {
    return row * kChunkBytes + (((byte >> 4) ^ (row & 7)) << 4) + (byte & 15);
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
        sm90::cluster_sync();
    } else {
        __syncthreads();
    }
}
/// The producer warpgroup's start: give registers to the consumers, warm the
/// tensor-map cache.
__device__ __forceinline__ void producer_start(const CUtensorMap* x_map, const CUtensorMap* c_map) {
    sm90::setmaxnreg_dec<40>();
    if (threadIdx.x == 0) {
        sm90::tma_prefetch_map(x_map);
        sm90::tma_prefetch_map(c_map);
    }
}
#endif

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
/// GHz) the kernel is energy-bound (see ClusterVariant). A ring slot is
/// then free only once the consumer warps of both CTAs have released it.
/// MAXF: the fold of many centroid tiles (fa::RowArgMax::fold_acc_max_first,
/// see MaxFirstVariant); one fold per kernel, as ptxas needs.
template <typename T, int CHUNKS, bool AREGS, int CL, bool MAXF = false>
__global__ void __launch_bounds__(kThreads, 1)
        flash_assign_sm90_kernel(const __grid_constant__ CUtensorMap x_map,
                                 const __grid_constant__ CUtensorMap c_map, const Params p) {
#if FK_SM90A
    using namespace sm90;
    extern __shared__ char smem_raw[];
    constexpr int C = CHUNKS;
    const Layout L{C, p.stages, p.x_buffers, 1};
    const Smem sm(smem_raw, L);
    const int XB = p.x_buffers;
    const int S = p.stages;
    // ring position of chunk g (see resident_ring_pow2)
    constexpr bool kPow2 = resident_ring_pow2(C);
    auto slot_of = [&](uint32_t g) { return kPow2 ? g & uint32_t(S - 1) : g % uint32_t(S); };
    auto phase_of = [&](uint32_t g) { return (kPow2 ? g >> p.stage_shift : g / uint32_t(S)) & 1u; };
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
    using namespace sm90;
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
        RingCounter g;
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
    RingCounter g, released;  // the next chunk's slot; the first slot not yet released
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
    using namespace sm90;
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
        RingCounter g;
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
    RingCounter g, released;  // the next chunk's slot; the first slot not yet released
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

/// The exact kernel's centroid split: hi[i] + lo[i] == c[i] to 2^-22 |c[i]|,
/// both tf32 values (low 13 mantissa bits zero) stored as fp32.
__global__ void split_tf32_kernel(const float* __restrict__ c, int64_t count, float* hi, float* lo) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        uint32_t h, l;
        fa::split_tf32(__ldg(c + i), h, l);
        hi[i] = __uint_as_float(h);
        lo[i] = __uint_as_float(l);
    }
}

/// 1 when this build holds sm_90a code for the current device.
__global__ void sm90a_probe_kernel(int* out) { *out = FK_SM90A; }

bool device_runs_sm90a(int device) {
    static std::mutex mu;
    static int known[64];  // 0 unknown, 1 yes, 2 no
    std::lock_guard<std::mutex> lock(mu);
    if (device < 0 || device >= 64) {
        return false;
    }
    if (known[device] == 0) {
        int major = 0;
        FK_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
        int ok = 0;
        if (major == 9) {
            ScopedDeviceBuffer buf(sizeof(int), nullptr);  // once per device
            int* d = static_cast<int*>(buf.get());
            FK_CUDA_CHECK(cudaMemset(d, 0, sizeof(int)));
            sm90a_probe_kernel<<<1, 1>>>(d);
            FK_CUDA_CHECK(cudaGetLastError());
            FK_CUDA_CHECK(cudaMemcpy(&ok, d, sizeof(int), cudaMemcpyDeviceToHost));
        }
        known[device] = ok == 1 ? 1 : 2;
    }
    return known[device] == 1;
}

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        FK_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                       cudaEnableDefault, &q));
        if (q != cudaDriverEntryPointSuccess || f == nullptr) {
            throw KernelError("flashkmeans: the CUDA driver has no cuTensorMapEncodeTiled");
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    }();
    return fn;
}

/// Tensor map of a rows x d row-major matrix, read in boxes of box_rows rows
/// by 128 bytes, written to shared memory in the 128-byte swizzle.
template <typename T>
CUtensorMap make_map(const void* base, int64_t rows, int64_t d, int box_rows) {
    CUtensorMapDataType type = std::is_same<T, float>::value
                                       ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                       : (std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                                         : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
    CUtensorMap map;
    const cuuint64_t dims[2] = {cuuint64_t(d), cuuint64_t(rows)};
    const cuuint64_t strides[1] = {cuuint64_t(d) * sizeof(T)};
    const cuuint32_t box[2] = {cuuint32_t(kChunkBytes / sizeof(T)), cuuint32_t(box_rows)};
    const cuuint32_t elem_strides[2] = {1, 1};
    const CUresult res = encode_fn()(&map, type, 2, const_cast<void*>(base), dims, strides, box,
                                     elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                     CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (res != CUDA_SUCCESS) {
        throw KernelError("flashkmeans: flash_assign (sm_90a): cuTensorMapEncodeTiled failed with "
                          "error " + std::to_string(int(res)));
    }
    return map;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

/// Which kernel a launch runs.
enum class Mainloop { Resident, Streamed, Exact3xTF32 };

/// A launch of `grid` blocks of kThreads in clusters of `cl` (1D).
struct ClusterLaunch {
    cudaLaunchConfig_t cfg{};
    cudaLaunchAttribute attr{};
    ClusterLaunch(unsigned grid, int cl, size_t smem, cudaStream_t stream) {
        cfg.gridDim = dim3(grid);
        cfg.blockDim = dim3(kThreads);
        cfg.dynamicSmemBytes = smem;
        cfg.stream = stream;
        attr.id = cudaLaunchAttributeClusterDimension;
        attr.val.clusterDim.x = unsigned(cl);
        attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
        cfg.attrs = &attr;
        cfg.numAttrs = 1;
    }
    ClusterLaunch(const ClusterLaunch&) = delete;  // cfg points at attr
};

/// Clusters of CL CTAs of `kernel` that fit on the device at once (cached:
/// the occupancy query is not free and its answer does not change).
int max_active_clusters(const void* kernel, int cl, size_t smem, int sms) {
    static std::mutex mu;
    static std::map<std::pair<const void*, size_t>, int> known;
    std::lock_guard<std::mutex> lock(mu);
    auto it = known.find({kernel, smem});
    if (it == known.end()) {
        const ClusterLaunch l(unsigned(sms / cl * cl), cl, smem, nullptr);
        int n = 0;
        FK_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, kernel, &l.cfg));
        if (n < 1) {
            throw KernelError("flashkmeans: flash_assign (sm_90a): no cluster of " +
                              std::to_string(cl) + " CTAs fits on this device");
        }
        it = known.emplace(std::make_pair(kernel, smem), n).first;
    }
    return it->second;
}

/// MAIN with CHUNKS chunks of d (CHUNKS is unused by the streamed kernel);
/// the resident kernel in clusters of CL CTAs, with the max-first fold if MAXF.
template <typename T, Mainloop MAIN, int CHUNKS, bool AREGS = false, int CL = 1, bool MAXF = false>
void launch(const kernels::AssignArgs& a, int chunks, cudaStream_t stream) {
    constexpr bool streamed = MAIN == Mainloop::Streamed;
    constexpr bool exact = MAIN == Mainloop::Exact3xTF32;
    static_assert(!exact || std::is_same<T, float>::value, "3xTF32 takes fp32");
    int device = 0, smem_optin = 0, sms = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));

    // Resident: a consumer holds the chunks of tile t while it waits for
    // those of tile t + 1, so the ring needs 2 * chunks slots at least; with
    // d of 4 chunks that leaves room for one points buffer only. Streamed and
    // exact: a consumer holds one slot, so 2 slots is the least that runs.
    // The exact kernel copies the points to registers as soon as they land:
    // one buffer is enough, the rest of shared memory goes to the ring.
    constexpr bool pow2 = MAIN == Mainloop::Resident && resident_ring_pow2(CHUNKS);
    const int min_stages = MAIN == Mainloop::Resident ? 2 * chunks : 2;
    auto fit = [&](int x_buffers) {
        Layout L{chunks, kMaxStages, x_buffers, MAIN == Mainloop::Resident ? 1 : 2};
        while (L.stages > 1 && L.bytes() + 1024 > smem_optin) {
            --L.stages;
        }
        while (pow2 && (L.stages & (L.stages - 1)) != 0) {
            --L.stages;
        }
        return L;
    };
    Layout L = fit(streamed ? 0 : exact ? 1 : 2);
    if (MAIN == Mainloop::Resident && L.stages < min_stages) {
        L = fit(1);
    }
    const size_t smem = size_t(L.bytes()) + 1024;  // + alignment slack
    if (smem > size_t(smem_optin) || L.stages < min_stages) {
        throw KernelError("flashkmeans: flash_assign (sm_90a) needs " +
                          std::to_string(Layout{L.chunks, min_stages, L.x_buffers, L.slot_tiles}.bytes() + 1024) +
                          " bytes of shared memory per block; the device allows " +
                          std::to_string(smem_optin));
    }
    int stage_shift = 0;
    while ((1 << stage_shift) < L.stages) {
        ++stage_shift;
    }
    Params p;
    p.chunks = chunks;
    p.l2 = a.metric == Metric::L2;
    p.labels = a.labels;
    p.distances = a.distances;
    p.x_norms = (p.l2 && a.distances) ? a.x_norms : nullptr;
    p.c_norms = p.l2 ? a.centroid_norms : nullptr;
    p.n = a.n;
    p.k = int(a.k);
    p.stages = L.stages;
    p.x_buffers = L.x_buffers;
    p.tiles_per_problem = (a.n + kBM - 1) / kBM;
    p.row_tiles = p.tiles_per_problem * a.batch;
    p.groups_per_problem = (p.tiles_per_problem + CL - 1) / CL;
    p.groups = p.groups_per_problem * a.batch;
    p.lo_row = int(a.k * a.batch);
    p.stage_shift = stage_shift;

    const CUtensorMap x_map = make_map<T>(a.x, a.n * a.batch, a.d, kBM);
    // exact: the centroids' tf32 high parts, then their low parts, in one map
    ScopedDeviceBuffer split(exact ? size_t(2 * a.k * a.batch * a.d) * sizeof(float) : 0, stream);
    const void* c_base = a.centroids;
    if (exact) {
        const int64_t count = a.k * a.batch * a.d;
        float* hi = static_cast<float*>(split.get());
        const int64_t blocks = (count + 255) / 256;
        split_tf32_kernel<<<unsigned(blocks < 4 * sms ? blocks : 4 * sms), 256, 0, stream>>>(
                static_cast<const float*>(a.centroids), count, hi, hi + count);
        FK_CUDA_CHECK(cudaGetLastError());
        c_base = hi;
    }
    // in a cluster each CTA loads its share of a centroid tile's rows
    const CUtensorMap c_map = make_map<T>(c_base, a.k * a.batch * (exact ? 2 : 1), a.d, kBN / CL);
    const auto kernel = [] {
        if constexpr (streamed) {
            return flash_assign_sm90_streamed_kernel<T, CL>;
        } else if constexpr (exact) {
            return flash_assign_sm90_exact_kernel<CHUNKS>;
        } else {
            return flash_assign_sm90_kernel<T, CHUNKS, AREGS, CL, MAXF>;
        }
    }();
    FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    if constexpr (CL > 1) {
        static_assert(!exact, "clusters: the resident and streamed kernels");
        // persistent: as many clusters as fit at once, groups strided over them
        const int64_t fit = max_active_clusters(reinterpret_cast<const void*>(kernel), CL, smem, sms);
        const int64_t clusters = p.groups < fit ? p.groups : fit;
        const ClusterLaunch l(unsigned(clusters * CL), CL, smem, stream);
        FK_CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, kernel, x_map, c_map, p));
    } else {
        const int64_t grid = p.row_tiles < sms ? p.row_tiles : sms;
        kernel<<<unsigned(grid), kThreads, smem, stream>>>(x_map, c_map, p);
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

/// The resident kernel with the points in registers, CHUNKS (1 or 2) chunks of
/// d, in CTA pairs or not, with the max-first fold or not.
template <typename T, int CHUNKS>
void launch_regs(const kernels::AssignArgs& a, bool pair, bool maxf, cudaStream_t stream) {
    constexpr Mainloop kRes = Mainloop::Resident;
    if (pair) {
        maxf ? launch<T, kRes, CHUNKS, true, 2, true>(a, CHUNKS, stream)
             : launch<T, kRes, CHUNKS, true, 2, false>(a, CHUNKS, stream);
    } else {
        maxf ? launch<T, kRes, CHUNKS, true, 1, true>(a, CHUNKS, stream)
             : launch<T, kRes, CHUNKS, true, 1, false>(a, CHUNKS, stream);
    }
}

/// Which kernel takes d of at most kMaxResidentChunks chunks (beyond, only the
/// streamed one can). "auto": the resident one for at most 2 chunks (fp16/bf16
/// d <= 128, the points in registers; fp32 TF32 d <= 64), the streamed one
/// above. H200, 2026-11-22, 1M points, alternating in one call
/// (bench/results/2026-11-22-h200-session14/call10_streamed_ab at 91e0225), streamed vs
/// resident ms: TF32 d = 128 0.866 vs 0.948-0.956 at k = 1024, 3.285 vs
/// 3.653-3.664 at 4096, 6.85-7.18 vs 7.36-7.54 at 8192; TF32 d = 96
/// 0.697-0.701 vs 0.765-0.769; fp16 d = 256 0.907-0.910 vs 0.954-0.966 (k =
/// 1024), 3.462-3.466 vs 3.670-3.805 (4096); fp16 d = 192 0.731 vs
/// 0.769-0.771. With the points in registers the resident one wins (4M x
/// 4096 x 128 fp16: 7.25-8.13 vs 8.36-9.52). The variant sm90_x = resident
/// or streamed forces one, for tests and tuning.
struct XVariant {
    const char* name;
    int max_resident_chunks;  // more chunks than this: the streamed kernel
};
constexpr XVariant kXVariants[] = {
        {"auto", 2}, {"resident", kMaxResidentChunks}, {"streamed", 0}};

/// Where wgmma reads the points from in the resident kernel for fp16/bf16 with
/// d <= 128 (elsewhere always shared memory): registers by default,
/// sm90_a = smem for A/B runs and the bitwise test.
struct AVariant {
    const char* name;
    bool regs;
};
constexpr AVariant kAVariants[] = {{"regs", true}, {"smem", false}};

/// When the Hopper kernels run in CTA pairs (see flash_assign_sm90_kernel).
/// "auto": the resident kernel with the points in registers (fp16/bf16,
/// d <= 128) always, the streamed one from 8 chunks of d (fp16/bf16 d >= 512,
/// TF32 d >= 256). "1" never, "2" always: for A/B runs and the bitwise test.
/// H200, 2026-11-22 (bench/results/2026-11-22-h200-session15 at 91e0225): the session-7
/// version of the resident change ran as fast as its base in short bursts
/// (1M x 8192 x 128: 4.05 vs 4.05 ms) and 2.8% faster after 300 back-to-back
/// launches, at the 700 W cap (4.45 vs 4.58 ms; 8M x 1024: 4.86-4.89 vs
/// 4.96); bench_lloyd (call 5), pairs vs single: 1-2.5% less per iteration on
/// every fp16 row. Streamed (call 7): 1M x 4096 x 768 end to end 11.12-11.35
/// vs 11.72-11.75 ms, but TF32 1M x 1024 x 128 (4 chunks) 1.138-1.143 vs
/// 1.124-1.126 and fp16 d = 256 0.971 vs 0.963-0.966 in bursts: with few
/// chunks per tile the pair's lock step costs more than the traffic saves.
struct ClusterVariant {
    const char* name;
    int resident_ctas;
    int streamed_pair_chunks;  // the streamed kernel in pairs from this many chunks
};
constexpr ClusterVariant kClusterVariants[] = {
        {"auto", 2, 8}, {"1", 1, INT_MAX}, {"2", 2, 0}};

/// Which fold the resident kernel with the points in registers (fp16/bf16,
/// d <= 128) uses: fold_acc (a compare and two selects per score) or
/// fold_acc_max_first (a tree of maxima, the column searched only when a row
/// improves). "auto": max-first from k = 32768. H200, 2026-11-22, 1M x k x
/// 128 fp16, two passes in alternating order, scan vs max-first ms
/// (bench/results/2026-11-22-h200-session18 at 91e0225): k = 1024 0.542-0.548 vs
/// 0.601-0.603, 8192 3.68-3.72 vs 3.81-3.84, 16384 7.58-7.84 vs 7.55-7.84,
/// 32768 15.55-15.76 vs 15.27-15.29, 65536 31.27-31.30 vs 30.04. "scan" /
/// "max" force one, for tests and A/B runs.
struct MaxFirstVariant {
    const char* name;
    int64_t from_k;  // max-first for k >= from_k
};
constexpr MaxFirstVariant kMaxFirstVariants[] = {
        {"auto", 32768}, {"scan", INT64_MAX}, {"max", 0}};

} // namespace

std::string flash_assign_sm90_unsupported(const kernels::AssignArgs& a) {
    if (std::strcmp(kernels::variants_or_default(a.variants).sm90, "0") == 0) {
        return "switched off by the variant sm90 = \"0\"";
    }
    int device = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    if (!device_runs_sm90a(device)) {
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
    const int chunks = int((a.d * int64_t(dtype_size(a.dtype)) + kChunkBytes - 1) / kChunkBytes);
    const kernels::Variants& var = kernels::variants_or_default(a.variants);
    const bool streamed =
            chunks > variant_by_name("sm90_x", var.sm90_x, kXVariants).max_resident_chunks;
    const bool a_regs = variant_by_name("sm90_a", var.sm90_a, kAVariants).regs;
    const ClusterVariant& cv = variant_by_name("sm90_cluster", var.sm90_cluster, kClusterVariants);
    const bool pair = cv.resident_ctas == 2, streamed_pair = chunks >= cv.streamed_pair_chunks;
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
                const bool maxf =
                        a.k >= variant_by_name("sm90_fold", var.sm90_fold, kMaxFirstVariants).from_k;
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
