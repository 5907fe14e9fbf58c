// Hopper (sm_90a) building blocks as thin PTX wrappers: mbarriers, the bulk
// tensor copy engine (TMA) and warpgroup MMAs (wgmma). Used by the Hopper
// FlashAssign (this folder) only; each wrapper is one instruction, named after
// it, so the kernel reads as the protocol it implements.
//
// Everything here must only be compiled for sm_90a (the kernel guards its body
// with FK_SM90A); on other targets the wrappers are never instantiated.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FK_SM90A 1
#else
#define FK_SM90A 0
#endif

namespace flashkmeans {
namespace cuda {
namespace sm90 {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---------------------------------------------------------------- mbarrier

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count));
}
/// Makes the initialised barriers visible to the async proxy (TMA) too.
__device__ __forceinline__ void mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
/// Arrives and tells the barrier to also wait for `bytes` of TMA traffic.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)),
                 "r"(bytes)
                 : "memory");
}
/// Waits until the phase of parity `parity` has completed. A fresh barrier
/// is in phase 0, so waiting on parity 1 returns at once (the producer's
/// first pass over empty slots).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#ifdef FK_SM90_WATCHDOG
    // debugging aid (-DFK_SM90_WATCHDOG): a wait that never ends traps and
    // says which barrier it was, instead of hanging the GPU
    for (long long i = 0;; ++i) {
        uint32_t done;
        asm volatile(
                "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                "selp.u32 %0, 1, 0, p;\n}\n"
                : "=r"(done)
                : "r"(smem_u32(bar)), "r"(parity)
                : "memory");
        if (done) {
            return;
        }
        if (i == (1ll << 24)) {
            printf("mbar_wait stuck: block %d thread %d barrier smem 0x%x parity %u\n", blockIdx.x,
                   threadIdx.x, smem_u32(bar), parity);
            __trap();
        }
    }
#endif
    asm volatile(
            "{\n"
            ".reg .pred done;\n"
            "WAIT_%=:\n"
            "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
            "@!done bra WAIT_%=;\n"
            "}\n" ::"r"(smem_u32(bar)),
            "r"(parity)
            : "memory");
}

// ---------------------------------------------------------------- TMA

/// 2D tile load global -> shared through the tensor map `map` (a
/// __grid_constant__ kernel parameter); completes on `bar` as tx bytes.
/// (col, row) is the tile's first element; outside the tensor it is zeros.
__device__ __forceinline__ void tma_load_2d(void* dst, const void* map, int col, int row,
                                            uint64_t* bar) {
    asm volatile(
            "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
            " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_u32(dst)),
            "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(row), "r"(smem_u32(bar))
            : "memory");
}
__device__ __forceinline__ void tma_prefetch_map(const void* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}
/// tma_load_2d into the same shared-memory offset of every CTA of the
/// cluster whose bit is set in `cta_mask`, each completing on its own
/// barrier at `bar`'s offset.
__device__ __forceinline__ void tma_load_2d_multicast(void* dst, const void* map, int col, int row,
                                                      uint64_t* bar, uint16_t cta_mask) {
    asm volatile(
            "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
            ".multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(smem_u32(dst)),
            "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(row), "r"(smem_u32(bar)),
            "h"(cta_mask)
            : "memory");
}

// ---------------------------------------------------------------- clusters

__device__ __forceinline__ uint32_t cluster_ctarank() {
    uint32_t r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}
/// Every thread of every CTA of the cluster meets here (shared-memory writes
/// before it, barrier initialisation included, are visible to the cluster
/// after it).
__device__ __forceinline__ void cluster_sync() {
    __syncwarp();  // the barrier is .aligned: the warp arrives converged
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::
                         : "memory");
}
/// mbar_arrive on the barrier at `bar`'s offset in CTA `cta` of the cluster.
/// Default .release.cta semantics: what it orders is the warp's completed
/// wgmma reads of a ring slot (a .release.cluster arrive costs a fence per
/// call and made the kernel 2x slower on the H200).
__device__ __forceinline__ void mbar_arrive_cluster(uint64_t* bar, uint32_t cta) {
    asm volatile(
            "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
            "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(smem_u32(bar)),
            "r"(cta)
            : "memory");
}

// ---------------------------------------------------------------- registers

/// Warpgroup register re-allocation: the producer gives registers back, the
/// consumers take them (needs __launch_bounds__(threads, 1)).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

// ---------------------------------------------------------------- wgmma

/// Shared-memory matrix descriptor of a K-major tile in the 128-byte swizzle
/// (rows of 128 bytes, 8-row groups 1024 bytes apart; the tile base 1024-byte
/// aligned, which is how TMA's SWIZZLE_128B writes it), advanced `k_bytes`
/// along K inside the 128-byte row (a plain offset of the start address).
/// Built as two 32-bit words with the offset added last, so the K steps of
/// one tile cost one add each, not a rebuild (shared addresses are below
/// 2^18: the 14-bit start field cannot carry into its neighbours).
__device__ __forceinline__ uint64_t sw128_desc(uint32_t tile_addr, uint32_t k_bytes) {
    const uint32_t lo = (((tile_addr & 0x3FFFF) >> 4)  // start address
                         | (1u << 16))                 // leading offset (unused here)
                        + (k_bytes >> 4);
    const uint32_t hi = (1024u >> 4)  // stride: one 8-row group
                        | (1u << 30); // layout: 128-byte swizzle (bit 62)
    return (uint64_t(hi) << 32) | lo;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

/// Keeps the compiler from moving reads/writes of the accumulators across
/// the asynchronous MMA boundary (fence, commit, wait).
__device__ __forceinline__ void fence_acc(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) {
        asm volatile("" : "+f"(d[i])::"memory");
    }
}

#define FK_ACC8(i)                                                                       \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]),         \
            "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define FK_ACC64                                                                         \
    FK_ACC8(0), FK_ACC8(8), FK_ACC8(16), FK_ACC8(24), FK_ACC8(32), FK_ACC8(40), FK_ACC8(48), \
            FK_ACC8(56)
#define FK_ACC64_REGS                                                                    \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "          \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

/// d (64 x 128 fp32 per warpgroup) {=, +=} A (64 x K) . B (128 x K)^T with
/// both operands K-major in shared memory; K = 32 bytes of the element type
/// (16 fp16/bf16, 8 tf32). `accumulate` = 0 overwrites d (no zeroing needed).
/// Register i of a thread holds row 16 w + lane/4 + 8 ((i/2) & 1), column
/// 8 (i/4) + 2 (lane%4) + (i & 1), w = warp in the warpgroup: the layout of
/// mma.sync's m16n8 fragments, so RowArgMax<1, 16> folds it unchanged.
template <typename T>
struct Wgmma;

// One specialisation per operand type; `ptx` is the instruction's shape and
// types, `tail` its immediates after scale-d (scale-a, scale-b and, for 16-bit
// types, the two transposes: none, both operands are K-major).
#define FK_WGMMA(T, ptx, tail)                                                                \
    template <>                                                                             \
    struct Wgmma<T> {                                                                       \
        __device__ __forceinline__ static void run(float (&d)[64], uint64_t a, uint64_t b,  \
                                                   int accumulate) {                        \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                       \
                         "wgmma.mma_async.sync.aligned." ptx " " FK_ACC64_REGS              \
                         ", %64, %65, p, " tail ";\n}\n"                                     \
                         : FK_ACC64                                                         \
                         : "l"(a), "l"(b), "r"(accumulate));                                \
        }                                                                                   \
    };
FK_WGMMA(__half, "m64n128k16.f32.f16.f16", "1, 1, 0, 0")
FK_WGMMA(__nv_bfloat16, "m64n128k16.f32.bf16.bf16", "1, 1, 0, 0")
/// fp32 operands are read as TF32 (the low 13 mantissa bits are ignored).
FK_WGMMA(float, "m64n128k8.f32.tf32.tf32", "1, 1")
#undef FK_WGMMA

/// Wgmma with A in registers: 4 .b32 per thread in the layout of mma.sync's
/// A fragment (m16n8k16 for fp16/bf16, what ldmatrix.x4 gives, see
/// ldmatrix_x4; m16n8k8 for tf32: rows g, g + 8 by columns t, t + 4, g =
/// lane / 4, t = lane % 4), warp w of the warpgroup holding rows 16 w .. 16 w
/// + 15. The registers must stay unchanged until the MMA has completed.
template <typename T>
struct WgmmaRegA;
#define FK_WGMMA_RS(T, ptx, tail)                                                             \
    template <>                                                                             \
    struct WgmmaRegA<T> {                                                                   \
        __device__ __forceinline__ static void run(float (&d)[64], const uint32_t (&a)[4],  \
                                                   uint64_t b, int accumulate) {            \
            asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                       \
                         "wgmma.mma_async.sync.aligned." ptx " " FK_ACC64_REGS              \
                         ", {%64, %65, %66, %67}, %68, p, " tail ";\n}\n"                   \
                         : FK_ACC64                                                         \
                         : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b),             \
                           "r"(accumulate));                                                \
        }                                                                                   \
    };
FK_WGMMA_RS(__half, "m64n128k16.f32.f16.f16", "1, 1, 0")
FK_WGMMA_RS(__nv_bfloat16, "m64n128k16.f32.bf16.bf16", "1, 1, 0")
/// tf32 bit patterns (cvt.rna.tf32.f32), K = 8.
FK_WGMMA_RS(float, "m64n128k8.f32.tf32.tf32", "1, 1")
#undef FK_WGMMA_RS

/// Four 8 x 8 b16 matrices from shared memory; lane l gives the address of
/// row l % 8 of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem_addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr));
}

#undef FK_ACC8
#undef FK_ACC64
#undef FK_ACC64_REGS

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
