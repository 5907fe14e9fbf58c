// The definitions of launch() and launch_regs() (launch.h): shared memory and
// ring depth for the device, the kernel's Params, the TMA maps, then one
// persistent launch (one block per SM, or as many CTA pairs as fit). Included
// only by the files of instantiations/, each of which instantiates them for
// its kernels (FK_SM90_LAUNCH, FK_SM90_LAUNCH_REGS below).
#pragma once

#include "../cuda_check.h"
#include "cluster_launch.h"
#include "heuristics.cuh"
#include "launch.h"
#include "mainloop_exact.cuh"
#include "mainloop_resident.cuh"
#include "mainloop_streamed.cuh"
#include "params.cuh"
#include "tma.h"

#include <cuda.h>
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

template <typename T, Mainloop MAIN, int CHUNKS, bool AREGS, int CL, bool MAXF>
void launch(const kernels::AssignArgs& a, int chunks, cudaStream_t stream) {
    constexpr bool streamed = MAIN == Mainloop::Streamed;
    constexpr bool exact = MAIN == Mainloop::Exact3xTF32;
    static_assert(!exact || std::is_same<T, float>::value, "3xTF32 takes fp32");
    int device = 0, smem_optin = 0, sms = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));

    constexpr bool pow2 = MAIN == Mainloop::Resident && resident_ring_pow2(CHUNKS);
    const int min_stages = min_ring_stages(MAIN, chunks);
    const Layout L = ring_layout(MAIN, chunks, pow2, smem_optin);
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
        split_tf32(static_cast<const float*>(a.centroids), count, hi, hi + count, sms, stream);
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

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans

/// One explicit instantiation of launch() and so of its kernel, for the files
/// of instantiations/: FK_SM90_LAUNCH(T, MAIN, CHUNKS[, AREGS, CL, MAXF]),
/// MAIN a Mainloop enumerator.
#define FK_SM90_LAUNCH(T, MAIN, ...)                                                           \
    template void ::flashkmeans::cuda::sm90::launch<                                          \
            T, ::flashkmeans::cuda::sm90::Mainloop::MAIN, __VA_ARGS__>(                       \
            const ::flashkmeans::kernels::AssignArgs&, int, cudaStream_t)
/// The same for launch_regs<T, CHUNKS> and its four kernels.
#define FK_SM90_LAUNCH_REGS(T, CHUNKS)                                                         \
    template void ::flashkmeans::cuda::sm90::launch_regs<T, CHUNKS>(                          \
            const ::flashkmeans::kernels::AssignArgs&, bool, bool, cudaStream_t)
