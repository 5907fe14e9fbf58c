// Whether a device can run the Hopper kernels: asked of the device itself, by
// a kernel that reports whether it was compiled as sm_90a code (a compute
// capability 9.0 GPU may run a build's PTX or another arch's code instead).
#include "device_probe.h"

#include "../cuda_check.h"
#include "ptx.cuh"

#include <cuda_runtime.h>

#include <mutex>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

namespace {
/// 1 when this build holds sm_90a code for the current device.
__global__ void sm90a_probe_kernel(int* out) { *out = FK_SM90A; }
} // namespace

bool device_runs_sm90a(int device) {
    static std::mutex mu;
    static int known[64];  // 0 unknown, 1 yes, 2 no
    std::lock_guard<std::mutex> lock(mu);
    if (device < 0 || device >= 64) {
        return false;
    }
    if (known[device] == 0) {
        int major = 0;
        FK_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
        int ok = 0;
        if (major == 9) {
            ScopedDeviceBuffer buf(sizeof(int), nullptr);  // once per device
            int* d = static_cast<int*>(buf.get());
            FK_CUDA_CHECK(cudaMemset(d, 0, sizeof(int)));
            sm90a_probe_kernel<<<1, 1>>>(d);
            FK_CUDA_CHECK(cudaGetLastError());
            FK_CUDA_CHECK(cudaMemcpy(&ok, d, sizeof(int), cudaMemcpyDeviceToHost));
        }
        known[device] = ok == 1 ? 1 : 2;
    }
    return known[device] == 1;
}

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
