// The Hopper FlashAssign's sizes, what every kernel is passed (Params) and how
// a block's shared memory is cut (Layout): shared by the host side (launch,
// heuristics) and the three mainloops.
#pragma once

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

constexpr int kBM = 128;           // points per row tile (2 consumer warpgroups x 64)
constexpr int kBN = 128;           // centroids per tile (one wgmma N)
constexpr int kChunkBytes = 128;   // bytes of one row of one d-chunk = swizzle width
constexpr int kMaxResidentChunks = 4;  // beyond: the streamed kernel
constexpr int kExactMaxD = 128;        // fp32 3xTF32: 4 chunks, points split into 128 registers
constexpr int kBiasSlots = 4;      // centroid tiles whose bias is staged ahead
constexpr int kMaxStages = 12;
/// Whether the resident kernel's ring has a power-of-two number of slots, so
/// that a ring position is a mask and a shift (PipelineState::slot_at): a
/// division by a run-time slot count cost ~20 instructions per centroid tile
/// in the consumers' loop, and they are issue-bound (the division made the
/// kernel 8% slower at 1M x 8192 x 128 fp16 and at k = 65536 on the H200).
/// Not with 3 chunks: 8 slots would leave room for one points buffer only, 4
/// are too few.
constexpr bool resident_ring_pow2(int chunks) { return chunks != 3; }
constexpr int kThreads = 384;      // producer + 2 consumer warpgroups
constexpr int kConsumerThreads = kThreads - 128;
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

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
