// CUDA side of device_memory.h: plain cudaMalloc (never managed memory) and
// stream-ordered copies; out-of-memory becomes a FaissException naming sizes.
#include <flashkmeans/kernels.h>

#include <faiss/impl/FaissAssert.h>

#include <cuda_runtime.h>

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

} // namespace

void* alloc(const Place& place, size_t bytes) {
    check(cudaSetDevice(place.device), "cudaSetDevice");
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        FAISS_THROW_FMT(
                "CUDA out of memory: allocating %.3f GiB on device %d (free %.3f GiB of %.3f GiB); "
                "reduce the number of points, subsample, or use a smaller dtype",
                bytes / 1073741824.0, place.device, free_b / 1073741824.0,
                total_b / 1073741824.0);
    }
    check(err, "cudaMalloc");
    return p;
}

void free(const Place& place, void* ptr) {
    cudaSetDevice(place.device);
    cudaFree(ptr); // never throws: called from destructors
}

void copy(const Place& place, void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_of(place)), "cudaMemcpyAsync");
    // host buffers passed in may be freed right after: finish before returning
    check(cudaStreamSynchronize(stream_of(place)), "cudaStreamSynchronize");
}

void* host_alloc(const Place& place, size_t bytes) {
    check(cudaSetDevice(place.device), "cudaSetDevice");
    void* p = nullptr;
    check(cudaMallocHost(&p, bytes), "cudaMallocHost");
    return p;
}

void host_free(void* ptr) {
    cudaFreeHost(ptr); // never throws: called from destructors
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
