// CUDA side of device_memory.h: device memory from a caching pool (never
// managed memory) and stream-ordered copies; out-of-memory becomes a
// FaissException naming sizes.
#include <flashkmeans/kernels.h>

#include <faiss/impl/FaissAssert.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>

namespace flashkmeans {
namespace cuda_memory {

namespace {

cudaStream_t stream_of(const Place& place) {
    return static_cast<cudaStream_t>(place.stream);
}

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) {
        cudaGetLastError(); // clear the sticky-free error state
        FAISS_THROW_FMT("CUDA error in %s: %s", what, cudaGetErrorString(err));
    }
}

// Device buffers come from one memory pool per device that keeps freed
// memory for the next call (release threshold: never), so a call of a shape
// seen before makes no cudaMalloc and no cudaFree (which also waits for the
// whole device). Allocation and free are stream-ordered; the pool only reuses
// a block once its free has completed. The pool gives its memory back when an
// allocation would otherwise fail, and on release_cached() (empty_cache()).
// Pinned host buffers (the per-iteration statistics) are kept the same way,
// a few small ones at most.
struct Pools {
    std::mutex mutex;
    std::map<int, cudaMemPool_t> device;     // absent: the device has no pools
    std::multimap<size_t, void*> pinned;     // free pinned blocks by size
    std::map<void*, size_t> pinned_size;     // every pinned block handed out
    size_t pinned_bytes = 0;                 // in `pinned`
};
Pools& pools() {
    static Pools* p = new Pools(); // never destroyed: frees may come at exit
    return *p;
}
constexpr size_t kMaxCachedPinnedBytes = size_t(16) << 20;

/// The device's pool, created on first use; nullptr without pool support.
cudaMemPool_t pool_of(int device) {
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    auto it = ps.device.find(device);
    if (it != ps.device.end()) {
        return it->second;
    }
    // Without pool support (or if the pool cannot be made) the engine falls
    // back to plain cudaMalloc / cudaFree: slower calls, same results.
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
        } else if (cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) {
            cudaMemPoolDestroy(pool);
            pool = nullptr;
        }
    }
    cudaGetLastError(); // a failed probe leaves no sticky error behind
    ps.device[device] = pool;
    return pool;
}

/// The device's pool if it was created (frees never create or throw).
cudaMemPool_t existing_pool(int device) noexcept {
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    auto it = ps.device.find(device);
    return it == ps.device.end() ? nullptr : it->second;
}

[[noreturn]] void throw_out_of_memory(const Place& place, size_t bytes) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    FAISS_THROW_FMT(
            "CUDA out of memory: allocating %.3f GiB on device %d (free %.3f GiB of %.3f GiB); "
            "reduce the number of points, subsample, or use a smaller dtype",
            bytes / 1073741824.0, place.device, free_b / 1073741824.0, total_b / 1073741824.0);
}

} // namespace

void* alloc(const Place& place, size_t bytes) {
    check(cudaSetDevice(place.device), "cudaSetDevice");
    void* p = nullptr;
    cudaMemPool_t pool = pool_of(place.device);
    if (pool == nullptr) {
        cudaError_t err = cudaMalloc(&p, bytes);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            throw_out_of_memory(place, bytes);
        }
        check(err, "cudaMalloc");
        return p;
    }
    cudaError_t err = cudaMallocFromPoolAsync(&p, bytes, pool, stream_of(place));
    if (err == cudaErrorMemoryAllocation) {
        // memory the pool keeps for later calls goes back first, then retry
        cudaGetLastError();
        check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        check(cudaMemPoolTrimTo(pool, 0), "cudaMemPoolTrimTo");
        err = cudaMallocFromPoolAsync(&p, bytes, pool, stream_of(place));
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            throw_out_of_memory(place, bytes);
        }
    }
    check(err, "cudaMallocFromPoolAsync");
    return p;
}

void free(const Place& place, void* ptr) {
    cudaSetDevice(place.device);
    // never throws: called from destructors
    if (existing_pool(place.device) != nullptr) {
        cudaFreeAsync(ptr, stream_of(place));
    } else {
        cudaFree(ptr);
    }
}

void copy(const Place& place, void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_of(place)), "cudaMemcpyAsync");
    // host buffers passed in may be freed right after: finish before returning
    check(cudaStreamSynchronize(stream_of(place)), "cudaStreamSynchronize");
}

void zero_async(const Place& place, void* ptr, size_t bytes) {
    check(cudaMemsetAsync(ptr, 0, bytes, stream_of(place)), "cudaMemsetAsync");
}

void copy_2d(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
             size_t rows, size_t row_bytes) {
    check(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, cudaMemcpyDefault,
                            stream_of(place)),
          "cudaMemcpy2DAsync");
    // host buffers passed in may be freed right after: finish before returning
    check(cudaStreamSynchronize(stream_of(place)), "cudaStreamSynchronize");
}

void* host_alloc(const Place& place, size_t bytes) {
    {
        Pools& ps = pools();
        std::lock_guard<std::mutex> lock(ps.mutex);
        auto it = ps.pinned.find(bytes);
        if (it != ps.pinned.end()) {
            void* p = it->second;
            ps.pinned.erase(it);
            ps.pinned_bytes -= bytes;
            return p;
        }
    }
    check(cudaSetDevice(place.device), "cudaSetDevice");
    void* p = nullptr;
    check(cudaMallocHost(&p, bytes), "cudaMallocHost");
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    ps.pinned_size[p] = bytes;
    return p;
}

void host_free(void* ptr) {
    Pools& ps = pools();
    {
        std::lock_guard<std::mutex> lock(ps.mutex);
        const size_t bytes = ps.pinned_size[ptr];
        if (ps.pinned_bytes + bytes <= kMaxCachedPinnedBytes) {
            ps.pinned.emplace(bytes, ptr);
            ps.pinned_bytes += bytes;
            return;
        }
    }
    std::lock_guard<std::mutex> lock(ps.mutex);
    ps.pinned_size.erase(ptr);
    cudaFreeHost(ptr); // never throws: called from destructors
}

void release_cached() {
    Pools& ps = pools();
    std::lock_guard<std::mutex> lock(ps.mutex);
    for (auto& [device, pool] : ps.device) {
        if (pool != nullptr) {
            cudaSetDevice(device);
            cudaDeviceSynchronize();
            cudaMemPoolTrimTo(pool, 0);
        }
    }
    for (auto& [bytes, p] : ps.pinned) {
        ps.pinned_size.erase(p);
        cudaFreeHost(p);
    }
    ps.pinned.clear();
    ps.pinned_bytes = 0;
}

size_t cached_bytes() {
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

void copy_async(const Place& place, void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_of(place)), "cudaMemcpyAsync");
}

void sync(const Place& place) {
    check(cudaStreamSynchronize(stream_of(place)), "cudaStreamSynchronize");
}

bool is_device_pointer(const void* ptr) {
    cudaPointerAttributes attr{};
    cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

void* event_create(const Place& place) {
    check(cudaSetDevice(place.device), "cudaSetDevice");
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "cudaEventCreate");
    return e;
}

void event_record(const Place& place, void* event) {
    // While a graph is being recorded the record must be External to become
    // a node that records the event when the graph runs (a plain one only
    // orders the recording); outside a recording External is refused
    const cudaStream_t s = stream_of(place);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(s, &status), "cudaStreamIsCapturing");
    check(cudaEventRecordWithFlags(static_cast<cudaEvent_t>(event), s,
                                   status == cudaStreamCaptureStatusActive ? cudaEventRecordExternal
                                                                           : cudaEventRecordDefault),
          "cudaEventRecordWithFlags");
}

double event_elapsed_ms(void* start, void* stop) {
    check(cudaEventSynchronize(static_cast<cudaEvent_t>(stop)), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(stop)),
          "cudaEventElapsedTime");
    return ms;
}

void event_destroy(void* event) {
    cudaEventDestroy(static_cast<cudaEvent_t>(event)); // never throws: called from destructors
}

void* stream_create(const Place& place) {
    check(cudaSetDevice(place.device), "cudaSetDevice");
    cudaStream_t s = nullptr;
    check(cudaStreamCreate(&s), "cudaStreamCreate"); // blocking: ordered with the default stream
    return s;
}

void stream_destroy(const Place& place, void* stream) {
    cudaSetDevice(place.device);
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
    cudaStreamDestroy(static_cast<cudaStream_t>(stream)); // never throws: called from destructors
}

void* graph_record(const Place& place, void* work, void (*call)(void*)) {
    const cudaStream_t s = stream_of(place);
    // thread-local: a call that cannot be recorded (a synchronous copy, a
    // cudaMalloc) fails here instead of silently running outside the graph
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t graph = nullptr;
    try {
        call(work);
    } catch (...) {
        cudaStreamEndCapture(s, &graph); // leaves the stream usable again
        if (graph != nullptr) {
            cudaGraphDestroy(graph);
        }
        cudaGetLastError();
        throw;
    }
    check(cudaStreamEndCapture(s, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(err, "cudaGraphInstantiate");
    return exec;
}

void graph_launch(const Place& place, void* exec) {
    check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), stream_of(place)), "cudaGraphLaunch");
}

void graph_destroy(void* exec) {
    cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)); // never throws: called from destructors
}

} // namespace cuda_memory
} // namespace flashkmeans
