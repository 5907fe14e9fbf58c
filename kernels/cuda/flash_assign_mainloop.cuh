// FlashAssign, part 1: the GEMM mainloop pieces (tile loads and tensor-core
// MMAs). Everything here is about producing, for one d-chunk, the BM x BN block
// of partial inner products x_i . c_j in fp32 registers; the argmin epilogue
// (flash_assign_epilogue.cuh) and the scheduler (flash_assign.cu) use it.
//
// Shared-memory tiles: every operand tile holds ROWS rows of one d-chunk of 64
// bytes (32 fp16/bf16 values or 16 fp32 values; 128 bytes with a row stride of
// 144 in the CB = 128 tuning variants, see ChunkShape), stored with a row stride of
// 80 bytes. 80 = 20 words, so 8 consecutive rows start in 8 different
// 4-word bank groups: ldmatrix (fp16/bf16) and the per-lane 32-bit loads of
// the TF32 fragments (row g, column t: word 20g + t) are conflict-free with no
// swizzle. Tiles are filled with 16-byte cp.async (zero-filled outside the
// matrix, so any n, k, d work: zeros add nothing to a dot product); when rows
// are not 16-byte aligned (d not a multiple of 16 bytes) a plain
// element-by-element path fills the same layout.
#pragma once

#include "dtype.cuh"

#include <cstdint>
#include <type_traits>

namespace flashkmeans {
namespace cuda {
namespace fa {

constexpr int kChunkBytes = 64;    ///< bytes of one row of one d-chunk (default)
constexpr int kSmemRowBytes = 80;  ///< padded smem row stride (conflict-free)

/// Padded smem row stride of a chunk of CB bytes (CB = 64 or 128): CB + 16,
/// i.e. 20 or 36 words; either way 8 consecutive rows start in 8 different
/// 4-word bank groups (ldmatrix and the TF32 loads stay conflict-free).
template <int CB>
struct ChunkShape {
    static_assert(CB == 64 || CB == 128, "d-chunks of 64 or 128 bytes");
    static constexpr int kBytes = CB;
    static constexpr int kRowBytes = CB + 16;
};

// ---------------------------------------------------------------- PTX wrappers

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// 16-byte async copy global -> shared; copies `src_bytes` (0 or 16) and
/// zero-fills the rest.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
/// 4-byte async copy (through L1), zero-filled when src_bytes == 0.
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// fp32 -> tf32, round to nearest (ties away), as the TF32 mma expects.
__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}
/// x = big + small, both tf32; |x - big - small| <= 2^-22 |x|.
__device__ __forceinline__ void split_tf32(float x, uint32_t& big, uint32_t& small) {
    big = to_tf32(x);
    small = to_tf32(__fsub_rn(x, __uint_as_float(big)));
}

// ---------------------------------------------------------------- tile loads

/// Copies one d-chunk of ROWS rows into a padded smem tile:
/// smem row r, bytes [0, 64) = elements [k0, k0 + 64/sizeof(T)) of row r of
/// `rows` (a row-major matrix with `d` columns), zero outside rows < nrows and
/// columns < d. `vec` says rows are 16-byte aligned (d * sizeof(T) % 16 == 0
/// and an aligned base), which allows cp.async; otherwise elements are copied
/// one by one (synchronously; the __syncthreads of the pipeline publishes
/// them).
template <typename T, int ROWS, int THREADS, int CB = kChunkBytes>
__device__ __forceinline__ void load_chunk(char* smem, const T* rows, int nrows, int64_t d,
                                           int64_t k0, bool vec, int tid) {
    constexpr int kVec = 16 / int(sizeof(T));     // elements per 16-byte piece
    constexpr int kRowPieces = CB / 16;           // 16-byte pieces per row (4 or 8)
    constexpr int kRowShift = CB == 64 ? 2 : 3;   // log2(kRowPieces)
    constexpr int kRowB = ChunkShape<CB>::kRowBytes;
    constexpr int kPieces = ROWS * kRowPieces;    // 16-byte pieces in the tile
    static_assert(kPieces % THREADS == 0, "tile pieces must divide evenly among threads");
    if (vec) {
#pragma unroll
        for (int i = 0; i < kPieces / THREADS; ++i) {
            const int p = tid + i * THREADS;
            const int r = p >> kRowShift, c = p & (kRowPieces - 1);
            const int64_t col = k0 + c * kVec;
            const bool ok = r < nrows && col < d;
            const T* src = ok ? rows + int64_t(r) * d + col : rows;
            cp_async16(smem_addr(smem + r * kRowB + c * 16), src, ok ? 16 : 0);
        }
    } else {
#pragma unroll 1
        for (int i = 0; i < kPieces / THREADS; ++i) {
            const int p = tid + i * THREADS;
            const int r = p >> kRowShift, c = p & (kRowPieces - 1);
            const int64_t col = k0 + c * kVec;
            union {
                uint4 u;
                T e[kVec];
            } piece;
            piece.u = make_uint4(0, 0, 0, 0);
            if (r < nrows) {
                const T* src = rows + int64_t(r) * d;
#pragma unroll
                for (int e = 0; e < kVec; ++e) {
                    if (col + e < d) {
                        piece.e[e] = src[col + e];
                    }
                }
            }
            *reinterpret_cast<uint4*>(smem + r * kRowB + c * 16) = piece.u;
        }
    }
}

// ---------------------------------------------------------------- MMA operands
//
// One "Op" per way of multiplying: it names the stored element type and
// computes one d-chunk of a warp's WM x WN block of inner products:
// acc[mi][ni] is the m16n8 accumulator fragment of rows mi*16.., columns ni*8..
// (fragment layout of mma.sync: c0,c1 row g, cols 2t,2t+1; c2,c3 row g+8).

/// fp16 or bf16 inputs, fp32 accumulation: m16n8k16 with ldmatrix fragments.
template <bool kBF16>
struct OpHalf {
    using T = typename std::conditional<kBF16, __nv_bfloat16, __half>::type;

    template <int MT, int NT, int CB = kChunkBytes>
    __device__ __forceinline__ static void chunk(float (&acc)[MT][NT][4], const char* a_tile,
                                                 const char* b_tile, int lane) {
        static_assert(NT % 2 == 0, "ldmatrix.x4 loads two n8 fragments at a time");
        constexpr int kSmemRowBytes = ChunkShape<CB>::kRowBytes;
#pragma unroll
        for (int kk = 0; kk < CB / 32; ++kk) {  // k16 steps (32 bytes each) per chunk
            uint32_t a[MT][4];
#pragma unroll
            for (int mi = 0; mi < MT; ++mi) {
                // matrices: rows 0-7 / 8-15 x k 0-7 / 8-15 -> a0..a3
                const char* p = a_tile + (mi * 16 + (lane & 15)) * kSmemRowBytes +
                                (kk * 16 + (lane >> 4) * 8) * 2;
                ldmatrix_x4(a[mi], smem_addr(p));
            }
#pragma unroll
            for (int ni = 0; ni < NT; ni += 2) {
                // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
                // (n 8-15, k 8-15) -> b0, b1 of fragment ni, b0, b1 of ni+1
                uint32_t b[4];
                const char* p = b_tile + (ni * 8 + (lane & 7) + ((lane >> 4) << 3)) * kSmemRowBytes +
                                (kk * 16 + ((lane >> 3) & 1) * 8) * 2;
                ldmatrix_x4(b, smem_addr(p));
#pragma unroll
                for (int mi = 0; mi < MT; ++mi) {
                    if (kBF16) {
                        mma_bf16(acc[mi][ni], a[mi], b[0], b[1]);
                        mma_bf16(acc[mi][ni + 1], a[mi], b[2], b[3]);
                    } else {
                        mma_f16(acc[mi][ni], a[mi], b[0], b[1]);
                        mma_f16(acc[mi][ni + 1], a[mi], b[2], b[3]);
                    }
                }
            }
        }
    }
};

/// fp32 inputs on TF32 tensor cores (m16n8k8). kSplit = true is the exact
/// mode, 3xTF32: each operand is split into big + small tf32 parts and
/// a.b ~= a_big.b_big + a_big.b_small + a_small.b_big (the dropped
/// small.small term is below 2^-22 relative), which gives fp32-level inner
/// products on tensor cores. kSplit = false is plain TF32 (opt-in).
template <bool kSplit>
struct OpF32 {
    using T = float;

    template <int MT, int NT, int CB = kChunkBytes>
    __device__ __forceinline__ static void chunk(float (&acc)[MT][NT][4], const char* a_tile,
                                                 const char* b_tile, int lane) {
        constexpr int kRowFloats = ChunkShape<CB>::kRowBytes / 4;
        const float* A = reinterpret_cast<const float*>(a_tile);
        const float* B = reinterpret_cast<const float*>(b_tile);
        const int g = lane >> 2, t = lane & 3;
#pragma unroll
        for (int kk = 0; kk < CB / 32; ++kk) {  // k8 steps (32 bytes each) per chunk
            uint32_t a_big[MT][4], a_small[MT][4];
#pragma unroll
            for (int mi = 0; mi < MT; ++mi) {
                const float* r0 = A + (mi * 16 + g) * kRowFloats + kk * 8 + t;
                const float* r1 = r0 + 8 * kRowFloats;
                const float v[4] = {r0[0], r1[0], r0[4], r1[4]};  // a0..a3
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    if (kSplit) {
                        split_tf32(v[e], a_big[mi][e], a_small[mi][e]);
                    } else {
                        a_big[mi][e] = to_tf32(v[e]);
                    }
                }
            }
#pragma unroll
            for (int ni = 0; ni < NT; ++ni) {
                const float* rb = B + (ni * 8 + g) * kRowFloats + kk * 8 + t;
                const float b0 = rb[0], b1 = rb[4];
                if (kSplit) {
                    uint32_t b0_big, b0_small, b1_big, b1_small;
                    split_tf32(b0, b0_big, b0_small);
                    split_tf32(b1, b1_big, b1_small);
#pragma unroll
                    for (int mi = 0; mi < MT; ++mi) {
                        // small terms first, so they are not lost against the big one
                        mma_tf32(acc[mi][ni], a_small[mi], b0_big, b1_big);
                        mma_tf32(acc[mi][ni], a_big[mi], b0_small, b1_small);
                        mma_tf32(acc[mi][ni], a_big[mi], b0_big, b1_big);
                    }
                } else {
                    const uint32_t b0_t = to_tf32(b0), b1_t = to_tf32(b1);
#pragma unroll
                    for (int mi = 0; mi < MT; ++mi) {
                        mma_tf32(acc[mi][ni], a_big[mi], b0_t, b1_t);
                    }
                }
            }
        }
    }
};

} // namespace fa
} // namespace cuda
} // namespace flashkmeans
