// CUDA side of device_memory.h: engine buffers from the kernels' caching
// pools (kernels/cuda/memory.h, never managed memory), stream-ordered copies,
// events, streams and graphs. Every failure is a KernelError naming the call
// (FK_CUDA_CHECK); out of memory an OutOfMemoryError naming sizes.
#include "cuda_memory.h"

#include "cuda/cuda_check.h"
#include "cuda/memory.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cuda_memory {

namespace {

cudaStream_t stream_of(const Place& place) {
    return static_cast<cudaStream_t>(place.stream);
}

} // namespace

void* alloc(const Place& place, size_t bytes) {
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    return cuda::device_alloc(bytes, stream_of(place));
}

void free(const Place& place, void* ptr) {
    cudaSetDevice(place.device);  // never throws: called from destructors
    cuda::device_free(ptr, stream_of(place));
}

void copy(const Place& place, void* dst, const void* src, size_t bytes) {
    FK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_of(place)));
    // host buffers passed in may be freed right after: finish before returning
    FK_CUDA_CHECK(cudaStreamSynchronize(stream_of(place)));
}

void copy_2d_async(const Place& place, void* dst, size_t dst_pitch, const void* src,
                   size_t src_pitch, size_t rows, size_t row_bytes) {
    FK_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows,
                                    cudaMemcpyDefault, stream_of(place)));
}

size_t free_bytes(const Place& place) {
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    size_t free = 0, total = 0;
    FK_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return free;
}

bool is_pinned_host_pointer(const void* ptr) {
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return attr.type == cudaMemoryTypeHost;
}

void zero_async(const Place& place, void* ptr, size_t bytes) {
    FK_CUDA_CHECK(cudaMemsetAsync(ptr, 0, bytes, stream_of(place)));
}

void copy_2d(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
             size_t rows, size_t row_bytes) {
    FK_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, cudaMemcpyDefault,
                            stream_of(place)));
    // host buffers passed in may be freed right after: finish before returning
    FK_CUDA_CHECK(cudaStreamSynchronize(stream_of(place)));
}

void upload_2d(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
               size_t rows, size_t row_bytes, const int64_t* ids) {
    // Small copies: the driver's own staging is as fast. Large ones, and
    // every gather: pinned buffers of up to kStageBytes (kept by the pinned
    // cache between calls), filled by all host threads while the other one
    // is on the bus.
    constexpr size_t kStageBytes = size_t(8) << 20;
    const size_t chunk_rows = std::min(rows, std::max<size_t>(1, kStageBytes / row_bytes));
    if (rows <= chunk_rows && ids == nullptr) {
        copy_2d(place, dst, dst_pitch, src, src_pitch, rows, row_bytes);
        return;
    }
    const cudaStream_t s = stream_of(place);
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    struct Stage {
        void* buf = nullptr;
        cudaEvent_t done = nullptr;
    } stage[2];
    auto release = [&] {
        for (Stage& st : stage) {
            if (st.done != nullptr) {
                cudaEventSynchronize(st.done);
                cudaEventDestroy(st.done);
            }
            cuda::pinned_free(st.buf);
        }
    };
    try {
        for (Stage& st : stage) {
            st.buf = cuda::pinned_alloc(chunk_rows * row_bytes);
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&st.done, cudaEventDisableTiming));
        }
        for (size_t r0 = 0, c = 0; r0 < rows; r0 += chunk_rows, c++) {
            Stage& st = stage[c % 2];
            const size_t m = std::min(chunk_rows, rows - r0);
            FK_CUDA_CHECK(cudaEventSynchronize(st.done));  // its last chunk has left
            const char* in = static_cast<const char*>(src);
            char* out = static_cast<char*>(st.buf);
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < int64_t(m); r++) {
                const size_t row = ids ? size_t(ids[r0 + size_t(r)]) : r0 + size_t(r);
                std::memcpy(out + size_t(r) * row_bytes, in + row * src_pitch, row_bytes);
            }
            FK_CUDA_CHECK(cudaMemcpy2DAsync(static_cast<char*>(dst) + r0 * dst_pitch, dst_pitch,
                                            st.buf, row_bytes, row_bytes, m,
                                            cudaMemcpyHostToDevice, s));
            FK_CUDA_CHECK(cudaEventRecord(st.done, s));
        }
        FK_CUDA_CHECK(cudaStreamSynchronize(s));
    } catch (...) {
        release();
        throw;
    }
    release();
}

void* host_alloc(const Place& place, size_t bytes) {
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    return cuda::pinned_alloc(bytes);
}

void host_free(void* ptr) { cuda::pinned_free(ptr); }

void release_cached() { cuda::release_cached_memory(); }

size_t cached_bytes() { return cuda::cached_memory_bytes(); }

void copy_async(const Place& place, void* dst, const void* src, size_t bytes) {
    FK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_of(place)));
}

void sync(const Place& place) {
    FK_CUDA_CHECK(cudaStreamSynchronize(stream_of(place)));
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

namespace {

/// CUDA handles (streams, events) kept for the next call, a few per device,
/// so a call's fixed cost has no creation and destruction in it: the one
/// given back last is taken first.
template <typename Handle, size_t kMax>
class KeptHandles {
   public:
    static KeptHandles& get() {
        static KeptHandles* k = new KeptHandles(); // never destroyed: handles may come back at exit
        return *k;
    }
    /// A kept handle of `device`, or null
    Handle take(int device) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<Handle>& v = by_device_[device];
        if (v.empty()) {
            return nullptr;
        }
        Handle h = v.back();
        v.pop_back();
        return h;
    }
    /// Keeps h unless kMax are kept already (false: the caller destroys it)
    bool give(int device, Handle h) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<Handle>& v = by_device_[device];
        if (v.size() >= kMax) {
            return false;
        }
        v.push_back(h);
        return true;
    }

   private:
    std::mutex mutex_;
    std::map<int, std::vector<Handle>> by_device_;
};
using KeptEvents = KeptHandles<cudaEvent_t, 16>;
using KeptStreams = KeptHandles<cudaStream_t, 8>;

} // namespace

void* event_create(const Place& place) {
    if (cudaEvent_t kept = KeptEvents::get().take(place.device)) {
        return kept;
    }
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    cudaEvent_t e = nullptr;
    FK_CUDA_CHECK(cudaEventCreate(&e));
    return e;
}

void event_release(const Place& place, void* event) {
    // never throws: called from destructors
    if (!KeptEvents::get().give(place.device, static_cast<cudaEvent_t>(event))) {
        cudaEventDestroy(static_cast<cudaEvent_t>(event));
    }
}

void event_record(const Place& place, void* event) {
    // While a graph is being recorded the record must be External to become
    // a node that records the event when the graph runs (a plain one only
    // orders the recording); outside a recording External is refused
    const cudaStream_t s = stream_of(place);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    FK_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
    FK_CUDA_CHECK(cudaEventRecordWithFlags(static_cast<cudaEvent_t>(event), s,
                                   status == cudaStreamCaptureStatusActive ? cudaEventRecordExternal
                                                                           : cudaEventRecordDefault));
}

double event_elapsed_ms(void* start, void* stop) {
    FK_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop)));
    float ms = 0;
    FK_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(stop)));
    return ms;
}

void event_destroy(void* event) {
    cudaEventDestroy(static_cast<cudaEvent_t>(event)); // never throws: called from destructors
}

void* sync_event_create(const Place& place) {
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    cudaEvent_t e = nullptr;
    FK_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
}

void event_wait(const Place& place, void* event) {
    FK_CUDA_CHECK(cudaStreamWaitEvent(stream_of(place), static_cast<cudaEvent_t>(event), 0));
}

void event_sync(void* event) {
    FK_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
}

void* stream_create(const Place& place) {
    if (cudaStream_t kept = KeptStreams::get().take(place.device)) {
        return kept;
    }
    FK_CUDA_CHECK(cudaSetDevice(place.device));
    cudaStream_t s = nullptr;
    FK_CUDA_CHECK(cudaStreamCreate(&s)); // blocking: ordered with the legacy default stream
    return s;
}

void stream_destroy(const Place& place, void* stream) {
    // never throws: called from destructors. The call's work is finished
    // before the stream goes back (the call returns with its results done)
    cudaSetDevice(place.device);
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    const bool ok = cudaStreamSynchronize(s) == cudaSuccess;
    cudaGetLastError();
    if (!ok || !KeptStreams::get().give(place.device, s)) {
        cudaStreamDestroy(s);
    }
}

void* graph_capture(const Place& place, void* work, void (*call)(void*)) {
    const cudaStream_t s = stream_of(place);
    // thread-local: a call that cannot be recorded (a synchronous copy, a
    // cudaMalloc) fails here instead of silently running outside the graph
    FK_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
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
    FK_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    return graph;
}

void* graph_instantiate(void* graph) {
    cudaGraphExec_t exec = nullptr;
    FK_CUDA_CHECK(cudaGraphInstantiate(&exec, static_cast<cudaGraph_t>(graph), 0));
    return exec;
}

namespace {

const char* update_result_name(cudaGraphExecUpdateResult r) {
    switch (r) {
        case cudaGraphExecUpdateErrorTopologyChanged:
            return "topology changed";
        case cudaGraphExecUpdateErrorNodeTypeChanged:
            return "node type changed";
        case cudaGraphExecUpdateErrorFunctionChanged:
            return "kernel changed";
        case cudaGraphExecUpdateErrorParametersChanged:
            return "parameters changed";
        case cudaGraphExecUpdateErrorNotSupported:
            return "not supported";
        case cudaGraphExecUpdateErrorUnsupportedFunctionChange:
            return "unsupported kernel change";
        case cudaGraphExecUpdateErrorAttributesChanged:
            return "attributes changed";
        default:
            return "refused";
    }
}

/// "kernel:name", "memcpy", ... for one node; never throws
std::string describe_node(cudaGraphNode_t node) {
    cudaGraphNodeType type;
    if (cudaGraphNodeGetType(node, &type) != cudaSuccess) {
        cudaGetLastError();
        return "?";
    }
    switch (type) {
        case cudaGraphNodeTypeKernel: {
            cudaKernelNodeParams p{};
            const char* name = nullptr;
            if (cudaGraphKernelNodeGetParams(node, &p) == cudaSuccess &&
                cudaFuncGetName(&name, p.func) == cudaSuccess && name != nullptr) {
                return std::string("kernel:") + name;
            }
            cudaGetLastError();
            return "kernel";
        }
        case cudaGraphNodeTypeMemcpy:
            return "memcpy";
        case cudaGraphNodeTypeMemset:
            return "memset";
        case cudaGraphNodeTypeHost:
            return "host";
        case cudaGraphNodeTypeGraph:
            return "graph";
        case cudaGraphNodeTypeEmpty:
            return "empty";
        case cudaGraphNodeTypeWaitEvent:
            return "wait-event";
        case cudaGraphNodeTypeEventRecord:
            return "event-record";
        case cudaGraphNodeTypeMemAlloc:
            return "mem-alloc";
        case cudaGraphNodeTypeMemFree:
            return "mem-free";
        default:
            return "type" + std::to_string(int(type));
    }
}

} // namespace

std::string graph_update(void* exec, void* graph) {
    cudaGraphExecUpdateResultInfo info{};
    const cudaError_t err = cudaGraphExecUpdate(static_cast<cudaGraphExec_t>(exec),
                                                static_cast<cudaGraph_t>(graph), &info);
    cudaGetLastError();  // a refused update is an answer, not an error
    if (err == cudaSuccess) {
        return {};
    }
    std::string why = info.result != cudaGraphExecUpdateSuccess ? update_result_name(info.result)
                                                                : cudaGetErrorString(err);
    if (info.errorNode != nullptr) {
        why += " at " + describe_node(info.errorNode);
    }
    return why;
}

std::string graph_signature(void* graph) {
    size_t count = 0;
    const cudaGraph_t g = static_cast<cudaGraph_t>(graph);
    if (cudaGraphGetNodes(g, nullptr, &count) != cudaSuccess) {
        cudaGetLastError();
        return "?";
    }
    std::vector<cudaGraphNode_t> nodes(count);
    if (count > 0 && cudaGraphGetNodes(g, nodes.data(), &count) != cudaSuccess) {
        cudaGetLastError();
        return "?";
    }
    std::string sig;
    for (cudaGraphNode_t node : nodes) {
        sig += (sig.empty() ? "" : ";") + describe_node(node);
    }
    return sig;
}

void graph_free(void* graph) {
    // never throws: called on unwinding paths
    if (graph != nullptr) {
        cudaGraphDestroy(static_cast<cudaGraph_t>(graph));
    }
}

void graph_launch(const Place& place, void* exec) {
    FK_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), stream_of(place)));
}

void graph_destroy(void* exec) {
    cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)); // never throws: called from destructors
}

} // namespace cuda_memory
} // namespace flashkmeans
