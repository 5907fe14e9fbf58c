// Device discovery and error reporting of the CUDA kernels (see
// cuda_check.h); memory.cu holds the allocation path.
//
// device_count() must be safe on machines without a GPU or without a driver:
// the test binaries and the library's Backend::Auto call it to decide whether
// to run on the GPU at all, so "no device" and "no driver" answer 0 instead of
// throwing.
#include "cuda_check.h"
#include "cuda_kernels.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <string>

namespace flashkmeans {
namespace cuda {

namespace {

std::string gib(size_t bytes) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.2f GiB", double(bytes) / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

} // namespace

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line,
                      size_t bytes) {
    // Clear the last-error state (non-sticky errors such as out-of-memory) so
    // the next launch check does not report this one again.
    cudaGetLastError();
    std::string where = std::string(expr) + " at " + file + ":" + std::to_string(line);
    if (err == cudaErrorMemoryAllocation) {
        int device = -1;
        cudaGetDevice(&device);
        size_t free_b = 0, total_b = 0;
        const bool have_info = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
        cudaGetLastError();
        std::string msg = "flashkmeans: CUDA out of memory";
        if (bytes > 0) {
            msg += " allocating " + std::to_string(bytes) + " bytes (" + gib(bytes) + ")";
        }
        msg += " on device " + std::to_string(device);
        if (have_info) {
            msg += " (free " + gib(free_b) + " of " + gib(total_b) + ")";
        }
        msg += " in " + where +
               "; use fewer points per call, subsample, a smaller dtype, or a device with more "
               "memory";
        throw OutOfMemoryError(msg);
    }
    throw KernelError("flashkmeans: CUDA error in " + where + ": " + cudaGetErrorString(err) +
                      " (" + cudaGetErrorName(err) + ")");
}

DeviceGuard::DeviceGuard(int device) {
    FK_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
        FK_CUDA_CHECK(cudaSetDevice(device));
    }
}

DeviceGuard::~DeviceGuard() {
    int now = -1;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0) {
        cudaSetDevice(previous_);
    }
}

int device_count() {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    switch (err) {
        case cudaSuccess:
            return n;
        // no GPU, no driver, or a driver that cannot run this build: the
        // caller should simply not use the CUDA backend
        case cudaErrorNoDevice:
        case cudaErrorInsufficientDriver:
        case cudaErrorInitializationError:
        case cudaErrorSystemDriverMismatch:
        case cudaErrorCompatNotSupportedOnDevice:
        case cudaErrorDevicesUnavailable:
        case cudaErrorNotSupported:
        case cudaErrorSystemNotReady:
            cudaGetLastError();
            return 0;
        default:
            FK_CUDA_CHECK(err);
    }
    return 0;
}

} // namespace cuda
} // namespace flashkmeans
