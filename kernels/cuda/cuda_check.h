// Error checking for the CUDA kernels: one macro for every CUDA call and every
// kernel launch, so a failure anywhere becomes a flashkmeans::KernelError that
// names the call, the file and line, and CUDA's own message.
//
//   FK_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
//   my_kernel<<<grid, block, smem, stream>>>(...);
//   FK_CUDA_CHECK(cudaGetLastError());   // after every launch
//
// Out-of-memory errors get a message a user can act on (bytes asked, free and
// total memory of the device); device_alloc() is the one allocation path of
// the kernels and names the size it asked for.
//
// This header is plain C++ (no device code) so host-only sources and the tests
// can include it too.
#pragma once

#include <flashkmeans/kernels.h>

#include <cuda_runtime_api.h>

#include <cstddef>

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

/// Stream-ordered device allocation (cudaMallocAsync) of `bytes` on the current
/// device; throws KernelError "CUDA out of memory allocating N bytes on device
/// D (free F of T)" when it cannot. Returns nullptr for 0 bytes.
void* device_alloc(size_t bytes, cudaStream_t stream);
/// Stream-ordered free; never throws (used on unwinding paths).
void device_free(void* ptr, cudaStream_t stream) noexcept;

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

/// Scratch memory owned for one call: allocated on `stream`, freed on it when
/// the scope ends (also when an exception unwinds it).
class ScopedDeviceBuffer {
public:
    ScopedDeviceBuffer(size_t bytes, cudaStream_t stream)
            : ptr_(device_alloc(bytes, stream)), stream_(stream) {}
    ~ScopedDeviceBuffer() { device_free(ptr_, stream_); }
    ScopedDeviceBuffer(ScopedDeviceBuffer&& o) noexcept : ptr_(o.ptr_), stream_(o.stream_) {
        o.ptr_ = nullptr;
    }
    ScopedDeviceBuffer(const ScopedDeviceBuffer&) = delete;
    ScopedDeviceBuffer& operator=(const ScopedDeviceBuffer&) = delete;
    void* get() const { return ptr_; }

private:
    void* ptr_;
    cudaStream_t stream_;
};

inline cudaStream_t stream_of(const Place& p) { return static_cast<cudaStream_t>(p.stream); }

} // namespace cuda
} // namespace flashkmeans

/// The one checking macro: wrap every CUDA runtime call, and call it on
/// cudaGetLastError() right after every kernel launch.
#define FK_CUDA_CHECK(expr) ::flashkmeans::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
