// A block's shared memory as the Hopper kernels see it: the Layout's regions
// as pointers, the mbarriers of the rings, and where TMA's 128-byte swizzle
// puts a byte of a tile.
#pragma once

#include "params.cuh"
#include "ptx.cuh"

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

// Device-side pieces of the kernels (compiled for sm_90a only, like the
// kernels' bodies).
#if FK_SM90A
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
        char* const base = raw + ((1024u - (smem_u32(raw) & 1023u)) & 1023u);
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

/// Byte offset of byte `byte` of row `row` in a TMA tile written with the
/// 128-byte swizzle (rows of 128 bytes, 1024-byte aligned): 16-byte unit u of
/// row r sits at u ^ (r % 8).
__device__ __forceinline__ int sw128_offset(int row, int byte) {
    return row * kChunkBytes + (((byte >> 4) ^ (row & 7)) << 4) + (byte & 15);
}
#endif

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
