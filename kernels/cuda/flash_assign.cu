// FlashAssign (CUDA): labels[i] = argmin_j ||x_i - c_j||^2 (L2) or
// argmax_j x_i.c_j (IP), ties to the lowest j, and optionally the distance,
// without ever storing the n x k matrix of scores.
//
// What it computes: per point, the best centroid under the score of
// flash_assign_epilogue.cuh, and `||x||^2 + min(||c||^2 - 2 x.c)` clamped at 0
// (L2) or the largest inner product (IP).
//
// Memory traffic (tiled kernel): x is read once (n d elements), the centroids
// once per tile of BM points ((n / BM) k d elements, served from L2: k d is
// small), labels and distances written once: O(nd + (n/BM) kd + n) instead of
// the O(nk) of a distance matrix. Shared-memory traffic is what bounds the
// mainloop: per centroid tile a block reads BN d elements of centroids and,
// unless x is resident, BM d elements of x.
//
// Why it is shaped this way (the scheduler, the mainloop, the epilogue):
// - Scheduler: one block owns BM = 128 points of one problem (grid.x over
//   point tiles, grid.y over the batch) and streams every centroid through
//   shared memory in tiles of BN = 128, so the running (best, argbest) of each
//   row stays in registers for the whole pass and is written once at the end.
// - Mainloop (flash_assign_mainloop.cuh): d is cut into chunks of 64 bytes
//   (32 fp16/bf16 or 16 fp32 values), zero-padded past d, so any d works; the
//   flattened sequence of (centroid tile, d-chunk) steps runs through a
//   STAGES-deep cp.async ring (loads of step s + STAGES - 1 overlap the MMAs of
//   step s). When the block's whole x tile fits in shared memory without
//   costing occupancy (d <= 192 for fp16 on an H100: 2 blocks per SM) it is
//   loaded once and stays resident, halving the L2 -> shared traffic (the
//   centroids alone then stream through the ring). 8 warps (4 x 2) each
//   compute a 32 x 64 block
//   with mma.sync: m16n8k16 (fp16/bf16 via ldmatrix) or m16n8k8 TF32 for fp32
//   input, either as 3xTF32 (Precision::Exact: big/small split of both
//   operands, fp32-level inner products) or one TF32 product (Precision::TF32).
//   Accumulation is always fp32.
// - Epilogue (flash_assign_epilogue.cuh): after the last d-chunk of a tile the
//   64 accumulators of a thread become scores (one add of the column bias) and
//   are folded into the running argmax; the block reduces rows across quads
//   and warps only once, at the end.
//
// The reference kernel beside it (one thread per point, in-order fp32 FMA
// over d, every centroid) is what the tests check the tiled kernel against on
// the device; it is slow and obviously right.
#include "tuning_variant.h"
#include "cuda_check.h"
#include "cuda_kernels.h"
#include "dtype.cuh"
#include "flash_assign_epilogue.cuh"
#include "flash_assign_mainloop.cuh"
#include "flash_assign_sm90.h"

#include <cuda_runtime.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

namespace flashkmeans {
namespace cuda {

namespace {

// ------------------------------------------------------------- reference

template <typename T>
__global__ void flash_assign_reference_kernel(const T* __restrict__ x, int64_t n, int64_t d,
                                              const T* __restrict__ c,
                                              const float* __restrict__ c_norms, int64_t k,
                                              int64_t batch, bool l2,
                                              const float* __restrict__ x_norms,
                                              int32_t* __restrict__ labels,
                                              float* __restrict__ distances) {
    const int64_t gi = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (gi >= n * batch) {
        return;
    }
    const int64_t b = gi / n;
    const T* xi = x + gi * d;
    const T* cb = c + b * k * d;
    float best = __int_as_float(0x7f800000);  // +inf
    int32_t arg = 0;
    for (int64_t j = 0; j < k; ++j) {
        const T* cj = cb + j * d;
        float ip = 0.0f;
        for (int64_t t = 0; t < d; ++t) {
            ip = fmaf(to_float(xi[t]), to_float(cj[t]), ip);
        }
        const float s = l2 ? c_norms[b * k + j] - 2.0f * ip : -ip;
        if (s < best) {
            best = s;
            arg = int32_t(j);
        }
    }
    labels[gi] = arg;
    if (distances != nullptr) {
        if (l2) {
            const float dis = x_norms[gi] + best;
            distances[gi] = dis < 0.0f ? 0.0f : dis;
        } else {
            distances[gi] = -best;
        }
    }
}

// ------------------------------------------------------------- tiled

struct TiledParams {
    const void* x;
    const void* c;
    const float* c_norms;  // null for IP
    const float* x_norms;  // null unless L2 distances are wanted
    int32_t* labels;
    float* distances;
    int64_t n;
    int64_t d;
    int k;
    int64_t batch;
    int chunks;       // d-chunks per centroid tile
    bool l2;
    bool vec;         // rows 16-byte aligned: cp.async path
    bool x_resident;  // the x tile stays in smem for every d-chunk
};

/// Tile shape of one kernel instantiation (template parameters so the lead
/// can tune them on the GPU; only the configurations below are compiled).
/// CB: bytes of one d-chunk (64 or 128); BIAS: the per-column score bias
/// (-||c||^2 / 2, 0, or -inf past k) is computed once per tile into smem by
/// the producer instead of once per column by every warp in the epilogue.
template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_,
          int CB_ = fa::kChunkBytes, bool BIAS_ = false>
struct TileConfig {
    static constexpr int BM = BM_, BN = BN_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
    static constexpr int STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr int CB = CB_;
    static constexpr bool BIAS = BIAS_;
    static constexpr int ROWB = fa::ChunkShape<CB>::kRowBytes;
    static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
    static constexpr int MT = WM / 16, NT = WN / 8;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile must be a multiple of 16 x 16");
    static_assert(BN <= THREADS, "one thread loads each centroid norm of a tile");
    static_assert(STAGES >= 2, "the ring needs two stages at least");

    /// smem bytes: centroid ring + x (ring or resident) + norm ring; the
    /// final row reduction reuses the centroid ring
    static size_t smem_bytes(int chunks, bool x_resident) {
        static_assert(size_t(WARPS_N) * BM * sizeof(float2) <= size_t(STAGES) * BN * ROWB,
                      "the row reduction must fit in the centroid ring");
        return size_t(STAGES) * BN * ROWB + size_t(x_resident ? chunks : STAGES) * BM * ROWB +
               size_t(STAGES) * BN * sizeof(float);
    }
};

template <class Op, class Cfg>
__global__ void __launch_bounds__(Cfg::THREADS, Cfg::MIN_BLOCKS)
        flash_assign_tiled_kernel(const TiledParams p) {
    using T = typename Op::T;
    constexpr int BM = Cfg::BM, BN = Cfg::BN, STAGES = Cfg::STAGES, THREADS = Cfg::THREADS;
    constexpr int MT = Cfg::MT, NT = Cfg::NT;
    constexpr int CB = Cfg::CB;
    constexpr int BK = CB / int(sizeof(T));  // elements per d-chunk
    constexpr int ROWB = Cfg::ROWB;

    extern __shared__ __align__(16) char smem[];
    const int C = p.chunks;
    char* const b_smem = smem;
    char* const a_smem = b_smem + STAGES * BN * ROWB;
    float* const norm_smem =
            reinterpret_cast<float*>(a_smem + (p.x_resident ? C : STAGES) * BM * ROWB);
    float2* const red = reinterpret_cast<float2*>(smem);  // after the mainloop only

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int warp_m = warp % Cfg::WARPS_M, warp_n = warp / Cfg::WARPS_M;
    const int64_t m0 = int64_t(blockIdx.x) * BM;
    const int nrows = int(p.n - m0 < BM ? p.n - m0 : BM);
    const int n_tiles = (p.k + BN - 1) / BN;
    const int total = n_tiles * C;  // host checked it fits in int

    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const T* xb = static_cast<const T*>(p.x) + (b * p.n + m0) * p.d;
        const T* cb = static_cast<const T*>(p.c) + b * p.k * p.d;
        const float* nb = p.l2 ? p.c_norms + b * p.k : nullptr;

        // --- producer: issue the loads of the next (tile, chunk) step
        int ld_step = 0, ld_tile = 0, ld_chunk = 0;
        // BIAS: the bias of a tile is loaded into a register by issue() and
        // stored to smem by put_bias() after the step's MMAs (its load latency
        // hides behind them); the fold that reads it runs at least one
        // __syncthreads later, and the slot's previous tile was folded at
        // least one __syncthreads earlier (STAGES >= 2).
        float pend_bias = 0.0f;
        int pend_slot = -1;
        auto put_bias = [&]() {
            if constexpr (Cfg::BIAS) {
                if (pend_slot >= 0) {
                    norm_smem[pend_slot] = pend_bias;
                    pend_slot = -1;
                }
            }
        };
        auto issue = [&]() {
            if (ld_step < total) {
                const int stage = ld_step % STAGES;
                if (!p.x_resident || ld_tile == 0) {
                    const int slot = p.x_resident ? ld_chunk : stage;
                    fa::load_chunk<T, BM, THREADS, CB>(a_smem + slot * BM * ROWB, xb, nrows, p.d,
                                                   int64_t(ld_chunk) * BK, p.vec, tid);
                }
                const int n0 = ld_tile * BN;
                fa::load_chunk<T, BN, THREADS, CB>(b_smem + stage * BN * ROWB, cb + int64_t(n0) * p.d,
                                               p.k - n0 < BN ? p.k - n0 : BN, p.d,
                                               int64_t(ld_chunk) * BK, p.vec, tid);
                if constexpr (Cfg::BIAS) {
                    if (ld_chunk == 0 && tid < BN) {
                        const int col = n0 + tid;
                        // the very expression of fa::RowArgMax::fold
                        pend_bias = col < p.k ? (nb != nullptr ? -0.5f * __ldg(nb + col) : 0.0f)
                                              : fa::neg_inf();
                        pend_slot = (ld_tile % STAGES) * BN + tid;
                    }
                } else if (ld_chunk == 0 && nb != nullptr && tid < BN) {
                    const int col = n0 + tid;
                    const bool ok = col < p.k;
                    fa::cp_async4(fa::smem_addr(norm_smem + (ld_tile % STAGES) * BN + tid),
                                  ok ? nb + col : nb, ok ? 4 : 0);
                }
                if (++ld_chunk == C) {
                    ld_chunk = 0;
                    ++ld_tile;
                }
            }
            ++ld_step;
            fa::cp_async_commit();  // possibly empty: keeps the group count uniform
        };

#pragma unroll 1
        for (int s = 0; s < STAGES - 1; ++s) {
            issue();
            put_bias();
        }

        fa::RowArgMax<MT, NT> best;
        best.init();
        float acc[MT][NT][4];
#pragma unroll
        for (int mi = 0; mi < MT; ++mi)
#pragma unroll
            for (int ni = 0; ni < NT; ++ni)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;

        // --- mainloop over (centroid tile, d-chunk) steps
        int tile = 0, chunk = 0;
#pragma unroll 1
        for (int step = 0; step < total; ++step) {
            fa::cp_async_wait<STAGES - 2>();  // step's group has landed
            __syncthreads();                  // ... for every thread; slot step-1 is free
            issue();
            const int stage = step % STAGES;
            const char* a_tile = a_smem + (p.x_resident ? chunk : stage) * BM * ROWB +
                                 warp_m * Cfg::WM * ROWB;
            const char* b_tile = b_smem + stage * BN * ROWB + warp_n * Cfg::WN * ROWB;
            Op::template chunk<MT, NT, CB>(acc, a_tile, b_tile, lane);
            put_bias();
            if (++chunk == C) {
                // --- epilogue of a centroid tile
                const int col0 = tile * BN + warp_n * Cfg::WN;
                const float* tile_norms = norm_smem + (tile % STAGES) * BN + warp_n * Cfg::WN;
                if constexpr (Cfg::BIAS) {
                    best.fold_bias(acc, tile_norms, col0, lane);
                } else {
                    best.fold(acc, tile_norms, col0, p.k, p.l2, lane);
                }
#pragma unroll
                for (int mi = 0; mi < MT; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NT; ++ni)
#pragma unroll
                        for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;
                chunk = 0;
                ++tile;
            }
        }
        fa::cp_async_wait<0>();
        __syncthreads();  // every warp is done with the ring: `red` reuses it

        const int64_t row0 = b * p.n + m0;
        fa::store_rows<BM, Cfg::WARPS_N>(best, red, warp_m, warp_n, lane, tid, THREADS, nrows,
                                        p.l2, p.x_norms ? p.x_norms + row0 : nullptr,
                                        p.labels + row0, p.distances ? p.distances + row0 : nullptr);
        __syncthreads();  // smem is refilled by the next problem of the batch
    }
}

// The compiled configurations (one per operand type), chosen by a sweep of
// every variant below on an H200 (bench/sweep.sh): 4 warps of 64 x 64 with
// -||c||^2/2 staged in shared memory beat 8 warps of 32 x 64 by 27% in fp16
// (128-byte d-chunks: half the barriers) and by 31% in 3xTF32, with
// bitwise-identical results. Registers: 218 (fp16/bf16), 238 (3xTF32), no
// spills; 2 blocks per SM. TF32 keeps the 8-warp shape (not swept).
using CfgHalf = TileConfig<128, 128, 2, 2, 4, 2, 128, true>;
using CfgTF32 = TileConfig<128, 128, 4, 2, 3, 2>;
using CfgExact = TileConfig<128, 128, 2, 2, 3, 2, 64, true>;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

/// x resident in smem: the variant fa_resident = "0" turns it off, "1" forces
/// it whenever it fits; "" = when MIN_BLOCKS blocks still fit on one SM.
int resident_override(const kernels::AssignArgs& a) {
    const char* v = kernels::variants_or_default(a.variants).fa_resident;
    if (*v == '\0') {
        return -1;
    }
    if (std::strcmp(v, "0") != 0 && std::strcmp(v, "1") != 0) {
        throw KernelError(std::string("flashkmeans: variant fa_resident = \"") + v +
                          "\" is not one of: 0 1");
    }
    return *v - '0';
}

template <class Op, class Cfg>
void launch_tiled(const kernels::AssignArgs& a, cudaStream_t stream) {
    using T = typename Op::T;
    constexpr int BK = Cfg::CB / int(sizeof(T));
    const int64_t chunks = (a.d + BK - 1) / BK;
    const int64_t n_tiles = (a.k + Cfg::BN - 1) / Cfg::BN;
    if (chunks * n_tiles > INT_MAX) {
        throw KernelError("flashkmeans: flash_assign: k * d = " + std::to_string(a.k * a.d) +
                          " is too large for one call; split the centroids");
    }
    int device = 0, smem_optin = 0, smem_sm = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&smem_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));

    const size_t smem_ring = Cfg::smem_bytes(int(chunks), false);
    const size_t smem_res = Cfg::smem_bytes(int(chunks), true);
    const int ovr = resident_override(a);
    // (the runtime reserves 1 KiB of shared memory per block)
    const bool fits_occupancy = (smem_res + 1024) * Cfg::MIN_BLOCKS <= size_t(smem_sm);
    const bool resident = smem_res <= size_t(smem_optin) &&
                          (ovr == 1 || (ovr != 0 && fits_occupancy));
    const size_t smem = resident ? smem_res : smem_ring;
    if (smem > size_t(smem_optin)) {
        throw KernelError("flashkmeans: flash_assign needs " + std::to_string(smem) +
                          " bytes of shared memory per block; the device allows " +
                          std::to_string(smem_optin));
    }

    TiledParams p;
    p.x = a.x;
    p.c = a.centroids;
    p.l2 = a.metric == Metric::L2;
    p.c_norms = p.l2 ? a.centroid_norms : nullptr;
    p.x_norms = (p.l2 && a.distances) ? a.x_norms : nullptr;
    p.labels = a.labels;
    p.distances = a.distances;
    p.n = a.n;
    p.d = a.d;
    p.k = int(a.k);
    p.batch = a.batch;
    p.chunks = int(chunks);
    p.vec = (a.d * int64_t(sizeof(T))) % 16 == 0 && aligned16(a.x) && aligned16(a.centroids);
    p.x_resident = resident;

    auto kernel = flash_assign_tiled_kernel<Op, Cfg>;
    FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(smem)));
    const dim3 grid(unsigned((a.n + Cfg::BM - 1) / Cfg::BM),
                    unsigned(a.batch < 65535 ? a.batch : 65535));
    kernel<<<grid, Cfg::THREADS, smem, stream>>>(p);
    FK_CUDA_CHECK(cudaGetLastError());
}

// ------------------------------------------------------------- variants
//
// Alternative tile configurations for tuning sweeps on the GPU
// (bench/sweep.sh), picked by the variant fa_config; compiled only with
// -DFLASHKMEANS_TUNING=ON, so a user's binary carries the defaults above
// alone. A variant replaces the fp16 kernel and/or the fp32 exact (3xTF32)
// kernel; bf16 and TF32 always run the default configuration, as does any
// dtype a variant leaves out. Every variant computes each score with the same
// sequence of MMAs over d and the same epilogue arithmetic, so its labels and
// distances are bitwise those of the default. To make a variant the default,
// change the `using CfgHalf` / `using CfgExact` lines above to its TileConfig.
using Launch = void (*)(const kernels::AssignArgs&, cudaStream_t);

struct Variant {
    const char* name;
    Launch half;   // fp16; null = default
    Launch exact;  // fp32 Precision::Exact; null = default
};

#ifdef FLASHKMEANS_TUNING
//   name     fp16 (BM, BN, warps MxN, stages, min blocks, chunk bytes, bias)
//            fp32 exact
using HalfS3 = TileConfig<128, 128, 4, 2, 3, 2>;
using HalfS5 = TileConfig<128, 128, 4, 2, 5, 2>;
using HalfBias = TileConfig<128, 128, 4, 2, 4, 2, 64, true>;
using ExactBias = TileConfig<128, 128, 4, 2, 3, 1, 64, true>;
using HalfK64 = TileConfig<128, 128, 4, 2, 4, 2, 128>;  // 64 fp16 / 32 fp32 per chunk
using HalfK64S3 = TileConfig<128, 128, 4, 2, 3, 2, 128>;
using HalfK64Bias = TileConfig<128, 128, 4, 2, 4, 2, 128, true>;
using ExactK64Bias = TileConfig<128, 128, 4, 2, 3, 1, 128, true>;
using HalfW4 = TileConfig<128, 128, 2, 2, 4, 2, 64, true>;  // 4 warps of 64 x 64
using HalfW4K64 = TileConfig<128, 128, 2, 2, 4, 2, 128, true>;
using ExactW4 = TileConfig<128, 128, 2, 2, 3, 2, 64, true>;
using HalfM256 = TileConfig<256, 128, 4, 2, 3, 1, 64, true>;  // 8 warps of 64 x 64
using ExactM256 = TileConfig<256, 128, 4, 2, 3, 1, 64, true>;
using HalfN256 = TileConfig<128, 256, 2, 4, 3, 1, 64, true>;  // 8 warps of 64 x 64
using ExactN256 = TileConfig<128, 256, 2, 4, 3, 1, 64, true>;
using ExactE2 = TileConfig<128, 128, 4, 2, 3, 2, 64, true>;  // 3xTF32 at 2 blocks/SM

const Variant kVariants[] = {
        {"default", nullptr, nullptr},
        {"s3", launch_tiled<fa::OpHalf<false>, HalfS3>, nullptr},
        {"s5", launch_tiled<fa::OpHalf<false>, HalfS5>, nullptr},
        {"bias", launch_tiled<fa::OpHalf<false>, HalfBias>, launch_tiled<fa::OpF32<true>, ExactBias>},
        {"k64", launch_tiled<fa::OpHalf<false>, HalfK64>, nullptr},
        {"k64s3", launch_tiled<fa::OpHalf<false>, HalfK64S3>, nullptr},
        {"k64bias", launch_tiled<fa::OpHalf<false>, HalfK64Bias>,
         launch_tiled<fa::OpF32<true>, ExactK64Bias>},
        {"w4", launch_tiled<fa::OpHalf<false>, HalfW4>, launch_tiled<fa::OpF32<true>, ExactW4>},
        {"w4k64", launch_tiled<fa::OpHalf<false>, HalfW4K64>, nullptr},
        {"m256", launch_tiled<fa::OpHalf<false>, HalfM256>, launch_tiled<fa::OpF32<true>, ExactM256>},
        {"n256", launch_tiled<fa::OpHalf<false>, HalfN256>, launch_tiled<fa::OpF32<true>, ExactN256>},
        {"e2", nullptr, launch_tiled<fa::OpF32<true>, ExactE2>},
};
#else
const Variant kVariants[] = {{"default", nullptr, nullptr}};
#endif

template <typename T>
void launch_reference(const kernels::AssignArgs& a, cudaStream_t stream) {
    const bool l2 = a.metric == Metric::L2;
    const int64_t rows = a.n * a.batch;
    constexpr int kThreads = 128;
    flash_assign_reference_kernel<T><<<unsigned((rows + kThreads - 1) / kThreads), kThreads, 0,
                                       stream>>>(
            static_cast<const T*>(a.x), a.n, a.d, static_cast<const T*>(a.centroids),
            a.centroid_norms, a.k, a.batch, l2, a.x_norms, a.labels, a.distances);
    FK_CUDA_CHECK(cudaGetLastError());
}

} // namespace

void flash_assign(const Place& place, const kernels::AssignArgs& a) {
    DeviceGuard guard(place.device);
    const cudaStream_t stream = stream_of(place);
    if (a.kernel == kernels::AssignKernel::Reference) {
        dispatch_dtype(a.dtype, [&](auto tag) { launch_reference<decltype(tag)>(a, stream); });
        return;
    }
    if (a.kernel == kernels::AssignKernel::Hopper ||
        (a.kernel == kernels::AssignKernel::Auto && flash_assign_sm90_unsupported(a).empty())) {
        flash_assign_sm90(a, stream);  // throws, saying why, where it cannot run
        return;
    }
    const Variant& v =
            variant_by_name("fa_config", kernels::variants_or_default(a.variants).fa_config, kVariants);
    switch (a.dtype) {
        case DType::Float16:
            if (v.half != nullptr) {
                v.half(a, stream);
                return;
            }
            launch_tiled<fa::OpHalf<false>, CfgHalf>(a, stream);
            return;
        case DType::BFloat16:
            launch_tiled<fa::OpHalf<true>, CfgHalf>(a, stream);
            return;
        case DType::Float32:
            if (a.precision == Precision::TF32) {
                launch_tiled<fa::OpF32<false>, CfgTF32>(a, stream);
            } else if (v.exact != nullptr) {
                v.exact(a, stream);
            } else {
                launch_tiled<fa::OpF32<true>, CfgExact>(a, stream);
            }
            return;
    }
    throw KernelError("flashkmeans: flash_assign: unknown dtype");
}

} // namespace cuda
} // namespace flashkmeans
