// The caching device pools and the pinned-buffer cache of memory.h.
#include "memory.h"

#include "cuda_check.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>

namespace flashkmeans {
namespace cuda {

namespace {

struct Pools {
    std::mutex mutex;
    std::map<int, cudaMemPool_t> device;  // absent: not probed yet; nullptr: no pools
    std::multimap<size_t, void*> pinned;  // free pinned blocks by size
    std::map<void*, size_t> pinned_size;  // every pinned block handed out
    size_t pinned_bytes = 0;              // in `pinned`
};

Pools& pools() {
    static Pools* p = new Pools();  // never destroyed: frees may come at exit
    return *p;
}

/// The device's pool, created on first use; nullptr without pool support
/// (some virtualised setups): then plain cudaMalloc / cudaFree, slower calls,
/// same results.
cudaMemPool_t pool_of(int device) {
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    auto it = ps.device.find(device);
    if (it != ps.device.end()) {
        return it->second;
    }
    int supported = 0;
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess &&
        supported) {
        cudaMemPoolProps props{};
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = device;
        uint64_t keep = UINT64_MAX;
        if (cudaMemPoolCreate(&pool, &props) != cudaSuccess) {
            pool = nullptr;
        } else if (cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) !=
                   cudaSuccess) {
            cudaMemPoolDestroy(pool);
            pool = nullptr;
        }
    }
    cudaGetLastError();  // a failed probe leaves no sticky error behind
    ps.device[device] = pool;
    return pool;
}

bool capturing(cudaStream_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    FK_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
    return status != cudaStreamCaptureStatusNone;
}

} // namespace

void* device_alloc(size_t bytes, cudaStream_t stream) {
    if (bytes == 0) {
        return nullptr;
    }
    void* p = nullptr;
    if (capturing(stream)) {
        // a memory node of the graph being recorded, freed inside it too
        const cudaError_t err = cudaMallocAsync(&p, bytes, stream);
        if (err != cudaSuccess) {
            throw_cuda_error(err, "cudaMallocAsync", __FILE__, __LINE__, bytes);
        }
        return p;
    }
    int device = 0;
    FK_CUDA_CHECK(cudaGetDevice(&device));
    cudaMemPool_t pool = pool_of(device);
    if (pool == nullptr) {
        const cudaError_t err = cudaMalloc(&p, bytes);
        if (err != cudaSuccess) {
            throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__, bytes);
        }
        return p;
    }
    cudaError_t err = cudaMallocFromPoolAsync(&p, bytes, pool, stream);
    if (err == cudaErrorMemoryAllocation) {
        // memory the pool keeps for later calls goes back first, then retry
        cudaGetLastError();
        FK_CUDA_CHECK(cudaDeviceSynchronize());
        FK_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
        err = cudaMallocFromPoolAsync(&p, bytes, pool, stream);
    }
    if (err != cudaSuccess) {
        throw_cuda_error(err, "cudaMallocFromPoolAsync", __FILE__, __LINE__, bytes);
    }
    return p;
}

void device_free(void* ptr, cudaStream_t stream) noexcept {
    if (ptr == nullptr) {
        return;
    }
    // cudaFreeAsync returns pool and graph memory alike; without pools the
    // memory came from cudaMalloc
    int device = 0;
    bool pooled = true;
    if (cudaGetDevice(&device) == cudaSuccess) {
        Pools& ps = pools();
        std::lock_guard<std::mutex> lock(ps.mutex);
        auto it = ps.device.find(device);
        pooled = it == ps.device.end() || it->second != nullptr;
    }
    const cudaError_t err = pooled ? cudaFreeAsync(ptr, stream) : cudaFree(ptr);
    if (err != cudaSuccess) {
        cudaGetLastError();  // never throw from here (unwinding paths)
    }
}

void* pinned_alloc(size_t bytes) {
    Pools& ps = pools();
    {
        std::lock_guard<std::mutex> lock(ps.mutex);
        auto it = ps.pinned.find(bytes);
        if (it != ps.pinned.end()) {
            void* p = it->second;
            ps.pinned.erase(it);
            ps.pinned_bytes -= bytes;
            return p;
        }
    }
    void* p = nullptr;
    const cudaError_t err = cudaMallocHost(&p, bytes);
    if (err != cudaSuccess) {
        throw_cuda_error(err, "cudaMallocHost", __FILE__, __LINE__, bytes);
    }
    std::lock_guard<std::mutex> lock(ps.mutex);
    ps.pinned_size[p] = bytes;
    return p;
}

void pinned_free(void* ptr) noexcept {
    if (ptr == nullptr) {
        return;
    }
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    const size_t bytes = ps.pinned_size[ptr];
    if (ps.pinned_bytes + bytes <= kMaxCachedPinnedBytes) {
        ps.pinned.emplace(bytes, ptr);
        ps.pinned_bytes += bytes;
        return;
    }
    ps.pinned_size.erase(ptr);
    cudaFreeHost(ptr);
}

void release_cached_memory() {
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    int current = 0;
    cudaGetDevice(&current);
    for (auto& [device, pool] : ps.device) {
        if (pool != nullptr) {
            cudaSetDevice(device);
            cudaDeviceSynchronize();
            cudaMemPoolTrimTo(pool, 0);
        }
    }
    cudaSetDevice(current);
    for (auto& [bytes, p] : ps.pinned) {
        ps.pinned_size.erase(p);
        cudaFreeHost(p);
    }
    ps.pinned.clear();
    ps.pinned_bytes = 0;
    cudaGetLastError();
}

size_t cached_memory_bytes() {
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    size_t total = ps.pinned_bytes;
    for (auto& [device, pool] : ps.device) {
        if (pool != nullptr) {
            uint64_t reserved = 0, used = 0;
            cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
            cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used);
            total += size_t(reserved - used);
        }
    }
    return total;
}

} // namespace cuda
} // namespace flashkmeans
