// Error checking for the CUDA kernels: one macro for every CUDA call and every
// kernel launch, so a failure anywhere becomes a flashkmeans::KernelError that
// names the call, the file and line, and CUDA's own message.
//
//   FK_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
//   my_kernel<<<grid, block, smem, stream>>>(...);
//   FK_CUDA_CHECK(cudaGetLastError());   // after every launch
//
// Out-of-memory errors are an OutOfMemoryError with a message a user can act
// on (bytes asked, free and total memory of the device); memory.h holds the
// one allocation path, which names the size it asked for.
//
// This header is plain C++ (no device code) so host-only sources and the tests
// can include it too.
#pragma once

#include <flashkmeans/kernels.h>

#include "memory.h"

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace flashkmeans {
namespace cuda {

/// Throws KernelError for `err` (never returns). Clears CUDA's last-error
/// state first so later launch checks do not report this error again.
/// `bytes` > 0 means the call was an allocation of that size.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line,
                                   size_t bytes = 0);

inline void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
    if (err != cudaSuccess) {
        throw_cuda_error(err, expr, file, line);
    }
}

/// Makes `device` current for the lifetime of the guard and restores the
/// previous device afterwards.
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = -1;
};

inline cudaStream_t stream_of(const Place& p) { return static_cast<cudaStream_t>(p.stream); }

/// Blocks for a grid-stride loop over `items`, `per_block` at a time: at
/// least one, at most 2^20 (the loop covers the rest).
inline unsigned blocks_for(int64_t items, int per_block) {
    const int64_t b = (items + per_block - 1) / per_block;
    return unsigned(b < (int64_t(1) << 20) ? (b > 0 ? b : 1) : (int64_t(1) << 20));
}

} // namespace cuda
} // namespace flashkmeans

/// The one checking macro: wrap every CUDA runtime call, and call it on
/// cudaGetLastError() right after every kernel launch.
#define FK_CUDA_CHECK(expr) ::flashkmeans::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
