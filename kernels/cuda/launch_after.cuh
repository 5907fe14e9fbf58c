// Programmatic dependent launch (sm_90+): a kernel launched with
// launch_after() may be scheduled while the kernel before it in the stream
// is still finishing, so its launch and block set-up overlap that kernel's
// tail instead of following it (the chain of small kernels after the
// assignment: a few microseconds each). The kernel must call
// wait_for_previous_grid() before it touches any memory (the previous
// kernel's results become visible there); allow_next_grid() lets the kernel
// after it start early in the same way. Both are no-ops when the launch had
// no such dependency, on older GPUs, or with the variant pdl = "0" (A/B timing),
// where launch_after() is a plain launch.
#pragma once

#include "cuda_check.h"

#include <flashkmeans/variants.h>

#include <cuda_runtime.h>

#include <cstring>

namespace flashkmeans {
namespace cuda {

__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_next_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// Whether launch_after() asks for the early start: compute capability 9+
/// of the current device, unless the default variants say pdl = "0".
inline bool early_launch_allowed() {
    if (std::strcmp(kernels::default_variants().pdl, "0") == 0) {
        return false;
    }
    int device = 0, major = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    return major >= 9;
}

/// kernel<<<grid, block, smem, stream>>>(args...), allowed to start before
/// the previous kernel in the stream has finished (see above); checked.
template <typename... Params, typename... Args>
void launch_after(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                  cudaStream_t stream, Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attr;
    cfg.numAttrs = early_launch_allowed() ? 1 : 0;
    FK_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, Params(args)...));
}

} // namespace cuda
} // namespace flashkmeans
