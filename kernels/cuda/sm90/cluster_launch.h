// Launches in thread-block clusters (CTA pairs): the launch configuration and
// how many clusters fit on the device at once.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// A launch of `grid` blocks of kThreads in clusters of `cl` (1D).
struct ClusterLaunch {
    cudaLaunchConfig_t cfg{};
    cudaLaunchAttribute attr{};
    ClusterLaunch(unsigned grid, int cl, size_t smem, cudaStream_t stream);
    ClusterLaunch(const ClusterLaunch&) = delete;  // cfg points at attr
};

/// Clusters of CL CTAs of `kernel` that fit on the device at once (cached:
/// the occupancy query is not free and its answer does not change).
int max_active_clusters(const void* kernel, int cl, size_t smem, int sms);

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
