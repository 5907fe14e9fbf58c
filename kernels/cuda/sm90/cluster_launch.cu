// Launches in thread-block clusters: see cluster_launch.h.
#include "cluster_launch.h"

#include "../cuda_check.h"
#include "params.cuh"

#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

ClusterLaunch::ClusterLaunch(unsigned grid, int cl, size_t smem, cudaStream_t stream) {
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(kThreads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = unsigned(cl);
    attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
}

int max_active_clusters(const void* kernel, int cl, size_t smem, int sms) {
    static std::mutex mu;
    static std::map<std::pair<const void*, size_t>, int> known;
    std::lock_guard<std::mutex> lock(mu);
    auto it = known.find({kernel, smem});
    if (it == known.end()) {
        const ClusterLaunch l(unsigned(sms / cl * cl), cl, smem, nullptr);
        int n = 0;
        FK_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, kernel, &l.cfg));
        if (n < 1) {
            throw KernelError("flashkmeans: flash_assign (sm_90a): no cluster of " +
                              std::to_string(cl) + " CTAs fits on this device");
        }
        it = known.emplace(std::make_pair(kernel, smem), n).first;
    }
    return it->second;
}

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
