// Host side of device_memory.h; CUDA places forward to cuda/cuda_memory.cpp.
#include "device_memory.h"

#ifdef FLASHKMEANS_WITH_CUDA
#include "cuda/cuda_memory.h"
#endif

#include <flashkmeans/memory.h>
#include <flashkmeans/variants.h>

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/utils.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <list>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace flashkmeans {

#ifdef FLASHKMEANS_WITH_CUDA
#define FK_ON_CUDA(place) ((place).backend == Backend::CUDA)
#else
#define FK_ON_CUDA(place) false
#endif

#ifdef FLASHKMEANS_WITH_CUDA
namespace {
void drop_cached_graphs();  // below, with PlaceGraph
}
#endif

void empty_cache() {
#ifdef FLASHKMEANS_WITH_CUDA
    drop_cached_graphs();
    cuda_memory::release_cached();
#endif
}

size_t cached_memory_bytes() {
#ifdef FLASHKMEANS_WITH_CUDA
    return cuda_memory::cached_bytes();
#else
    return 0;
#endif
}

void* place_alloc(const Place& place, size_t bytes) {
    if (bytes == 0) {
        return nullptr;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        return cuda_memory::alloc(place, bytes);
    }
#endif
    FAISS_THROW_IF_NOT_MSG(place.backend != Backend::CUDA, "this build has no CUDA support");
    // 64-byte alignment keeps rows friendly to SIMD loads
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p == nullptr) {
        throw OutOfMemoryError("flashkmeans: out of host memory allocating " +
                               std::to_string(bytes) + " bytes");
    }
    return p;
}

void place_free(const Place& place, void* ptr) {
    if (ptr == nullptr) {
        return;
    }
(void)place;
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::free(place, ptr);
        return;
    }
#endif
    std::free(ptr);
}

void copy_to_place(const Place& place, void* dst, const void* src, size_t bytes) {
    copy_within(place, dst, src, bytes);
}

void copy_to_host(const Place& place, void* dst, const void* src, size_t bytes) {
    copy_within(place, dst, src, bytes);
}

void* pinned_alloc(const Place& place, size_t bytes) {
    if (bytes == 0) {
        return nullptr;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        return cuda_memory::host_alloc(place, bytes);
    }
#endif
    return place_alloc(place, bytes);
}

void pinned_free(const Place& place, void* ptr) {
    if (ptr == nullptr) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::host_free(ptr);
        return;
    }
#endif
    place_free(place, ptr);
}

void copy_within_async(const Place& place, void* dst, const void* src, size_t bytes) {
    (void)place;
    if (bytes == 0) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::copy_async(place, dst, src, bytes); // any direction, stream-ordered
        return;
    }
#endif
    std::memcpy(dst, src, bytes);
}

void copy_to_pinned(const Place& place, void* pinned_dst, const void* src, size_t bytes) {
    copy_within_async(place, pinned_dst, src, bytes); // pinned memory takes the same DMA
}

void copy_within(const Place& place, void* dst, const void* src, size_t bytes) {
    (void)place;
    if (bytes == 0) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::copy(place, dst, src, bytes); // cudaMemcpyDefault infers the direction
        return;
    }
#endif
    std::memcpy(dst, src, bytes);
}

void copy_rows(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
               size_t rows, size_t row_bytes) {
    if (rows == 0 || row_bytes == 0) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::copy_2d(place, dst, dst_pitch, src, src_pitch, rows, row_bytes);
        return;
    }
#endif
    for (size_t r = 0; r < rows; r++) {
        std::memcpy(static_cast<char*>(dst) + r * dst_pitch,
                    static_cast<const char*>(src) + r * src_pitch, row_bytes);
    }
}

void upload_rows(const Place& place, void* dst, size_t dst_pitch, const void* host_src,
                 size_t src_pitch, size_t rows, size_t row_bytes, const int64_t* ids) {
    if (rows == 0 || row_bytes == 0) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::upload_2d(place, dst, dst_pitch, host_src, src_pitch, rows, row_bytes, ids);
        return;
    }
#endif
    if (ids == nullptr) {
        copy_rows(place, dst, dst_pitch, host_src, src_pitch, rows, row_bytes);
        return;
    }
    // random rows: in parallel, so the gather runs at memory speed
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < int64_t(rows); r++) {
        std::memcpy(static_cast<uint8_t*>(dst) + size_t(r) * dst_pitch,
                    static_cast<const uint8_t*>(host_src) + size_t(ids[r]) * src_pitch, row_bytes);
    }
}

void copy_rows_async(const Place& place, void* dst, size_t dst_pitch, const void* src,
                     size_t src_pitch, size_t rows, size_t row_bytes) {
    if (rows == 0 || row_bytes == 0) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::copy_2d_async(place, dst, dst_pitch, src, src_pitch, rows, row_bytes);
        return;
    }
#endif
    copy_rows(place, dst, dst_pitch, src, src_pitch, rows, row_bytes);
}

size_t place_free_bytes(const Place& place) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        return cuda_memory::free_bytes(place);
    }
#endif
    (void)place;
    return 0;
}

bool is_pinned_host_pointer(const void* ptr) {
#ifdef FLASHKMEANS_WITH_CUDA
    return cuda_memory::is_pinned_host_pointer(ptr);
#else
    (void)ptr;
    return false;
#endif
}

PlaceEvent::PlaceEvent(const Place& place) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        event_ = cuda_memory::sync_event_create(place);
    }
#else
    (void)place;
#endif
}

PlaceEvent::~PlaceEvent() {
#ifdef FLASHKMEANS_WITH_CUDA
    if (event_ != nullptr) {
        cuda_memory::event_destroy(event_);
    }
#endif
}

void PlaceEvent::record(const Place& on) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (event_ != nullptr) {
        cuda_memory::event_record(on, event_);
    }
#else
    (void)on;
#endif
}

void PlaceEvent::wait(const Place& on) const {
#ifdef FLASHKMEANS_WITH_CUDA
    if (event_ != nullptr) {
        cuda_memory::event_wait(on, event_);
    }
#else
    (void)on;
#endif
}

void PlaceEvent::sync() const {
#ifdef FLASHKMEANS_WITH_CUDA
    if (event_ != nullptr) {
        cuda_memory::event_sync(event_);
    }
#endif
}

void place_zero(const Place& place, void* ptr, size_t bytes) {
    if (bytes == 0) {
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::zero_async(place, ptr, bytes);
        return;
    }
#endif
    std::memset(ptr, 0, bytes);
}

void place_sync(const Place& place) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::sync(place);
    }
#else
    (void)place;
#endif
}

PlaceTimer::PlaceTimer(const Place& place) : place_(place) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        events_[0] = cuda_memory::event_create(place);
        try {
            events_[1] = cuda_memory::event_create(place);
        } catch (...) {
            cuda_memory::event_release(place, events_[0]);
            throw;
        }
    }
#endif
}

PlaceTimer::~PlaceTimer() {
#ifdef FLASHKMEANS_WITH_CUDA
    // stop first: the next timer takes start first and gets these in place
    for (void* e : {events_[1], events_[0]}) {
        if (e != nullptr) {
            cuda_memory::event_release(place_, e);
        }
    }
#endif
}

void PlaceTimer::mark(int which) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (events_[which] != nullptr) {
        cuda_memory::event_record(place_, events_[which]);
        return;
    }
#endif
    host_ms_[which] = faiss::getmillisecs();
}

double PlaceTimer::seconds() const {
#ifdef FLASHKMEANS_WITH_CUDA
    if (events_[0] != nullptr) {
        return cuda_memory::event_elapsed_ms(events_[0], events_[1]) / 1000.0;
    }
#endif
    return (host_ms_[1] - host_ms_[0]) / 1000.0;
}

PlaceStream::PlaceStream(const Place& place) : PlaceStream(place, false) {}

PlaceStream::PlaceStream(const Place& place, bool own) : place_(place) {
    (void)own;
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place) && (place.stream == nullptr || own)) {
        place_.stream = cuda_memory::stream_create(place);
        owned_ = true;
    }
#endif
}

PlaceStream::~PlaceStream() {
#ifdef FLASHKMEANS_WITH_CUDA
    if (owned_) {
        cuda_memory::stream_destroy(place_, place_.stream);
    }
#endif
}

#ifdef FLASHKMEANS_WITH_CUDA
namespace {

// Instantiated graphs kept between calls, by the key of the work that made
// them: a later call of the same shape records its work (cheap) and updates
// a kept graph's parameters (its buffers, events and points) instead of
// instantiating a new one. A graph is taken out while a call uses it, so
// two threads never share one. At most kMaxCachedGraphs are kept, oldest
// dropped first; empty_cache() drops them all.
constexpr size_t kMaxCachedGraphs = 16;

struct GraphCounts {
    std::mutex mutex;
    GraphStats stats;
};

GraphCounts& graph_counts() {
    static GraphCounts* c = new GraphCounts();
    return *c;
}

void count_graph(bool instantiated, bool updated, const std::string& refusal) {
    GraphCounts& c = graph_counts();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.instantiated += instantiated;
    c.stats.updated += updated;
    if (!refusal.empty()) {
        c.stats.refused++;
        c.stats.last_refusal = refusal;
    }
}

struct KeptGraph {
    std::string key;
    void* exec;  // cudaGraphExec_t
    void* graph; // cudaGraph_t: the recording it was made or updated from
};

struct GraphCache {
    std::mutex mutex;
    std::list<KeptGraph> kept; // newest first
};

GraphCache& graph_cache() {
    static GraphCache* c = new GraphCache();  // never destroyed: graphs may come back at exit
    return *c;
}

/// The kept graph of `key` (exec null: none), taken out of the cache.
KeptGraph take_cached_graph(const std::string& key) {
    GraphCache& c = graph_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto it = c.kept.begin(); it != c.kept.end(); ++it) {
        if (it->key == key) {
            KeptGraph kept = std::move(*it);
            c.kept.erase(it);
            return kept;
        }
    }
    return KeptGraph{key, nullptr, nullptr};
}

void keep_graph(KeptGraph kept) {
    GraphCache& c = graph_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.kept.push_front(std::move(kept));
    while (c.kept.size() > kMaxCachedGraphs) {
        cuda_memory::graph_destroy(c.kept.back().exec);
        cuda_memory::graph_free(c.kept.back().graph);
        c.kept.pop_back();
    }
}

/// Where two recordings' signatures (graph_signature) part: the first node
/// that differs, or the node counts.
std::string first_difference(const std::string& kept, const std::string& now) {
    auto nodes = [](const std::string& sig) {
        std::vector<std::string> out;
        for (size_t from = 0; from <= sig.size();) {
            const size_t end = std::min(sig.find(';', from), sig.size());
            out.push_back(sig.substr(from, end - from));
            from = end + 1;
        }
        return out;
    };
    const std::vector<std::string> a = nodes(kept), b = nodes(now);
    for (size_t i = 0; i < std::min(a.size(), b.size()); i++) {
        if (a[i] != b[i]) {
            return "node " + std::to_string(i) + " was " + a[i] + ", is " + b[i];
        }
    }
    return std::to_string(a.size()) + " nodes kept, " + std::to_string(b.size()) + " recorded";
}

void drop_cached_graphs() {
    GraphCache& c = graph_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (KeptGraph& kept : c.kept) {
        cuda_memory::graph_destroy(kept.exec);
        cuda_memory::graph_free(kept.graph);
    }
    c.kept.clear();
}

} // namespace
#endif

PlaceGraph::PlaceGraph(const Place& place, std::string key) : place_(place), key_(std::move(key)) {
    const std::string mode = kernels::default_variants().cuda_graph;
    FAISS_THROW_IF_NOT_FMT(mode.empty() || mode == "0" || mode == "1" || mode == "require",
                           "flashkmeans: variant cuda_graph = \"%s\" is not one of 0, 1, require",
                           mode.c_str());
    require_ = FK_ON_CUDA(place) && mode == "require";
    plain_ = !FK_ON_CUDA(place) || mode == "0";
}

PlaceGraph::~PlaceGraph() {
#ifdef FLASHKMEANS_WITH_CUDA
    if (exec_ != nullptr) {
        // kept for the next call of this key, which updates it before any launch
        if (key_.empty()) {
            cuda_memory::graph_destroy(exec_);
            cuda_memory::graph_free(graph_);
        } else {
            keep_graph(KeptGraph{key_, exec_, graph_});
        }
    }
#endif
}

void PlaceGraph::run_erased(void* work, void (*call)(void*)) {
    const int64_t run = runs_++;
    if (plain_) {
        call(work);
        return;
    }
#ifdef FLASHKMEANS_WITH_CUDA
    if (exec_ == nullptr) {
        if (run == 0) {
            call(work); // plain: see the class comment
            return;
        }
        KeptGraph kept = key_.empty() ? KeptGraph{key_, nullptr, nullptr} : take_cached_graph(key_);
        void* graph = nullptr;
        try {
            graph = cuda_memory::graph_capture(place_, work, call);
            update_refusal_ = kept.exec != nullptr ? cuda_memory::graph_update(kept.exec, graph)
                                                   : std::string();
            if (!update_refusal_.empty()) {
                // the diagnosis, on the refused path only (it walks both graphs)
                const std::string was = cuda_memory::graph_signature(kept.graph),
                                  is = cuda_memory::graph_signature(graph);
                if (was != is) {
                    update_refusal_ += "; " + first_difference(was, is);
                }
            }
            if (kept.exec != nullptr && update_refusal_.empty()) {
                exec_ = kept.exec;
                updated_ = true;
            } else {
                if (kept.exec != nullptr) {
                    cuda_memory::graph_destroy(kept.exec);
                    kept.exec = nullptr;
                }
                exec_ = cuda_memory::graph_instantiate(graph);
            }
            kept.exec = nullptr;
            cuda_memory::graph_free(kept.graph);
            count_graph(!updated_, updated_, update_refusal_);
            graph_ = graph; // what a refused update of the next call compares with
        } catch (const std::exception&) {
            // what is left of this recording and of the kept graph (the kept
            // exec is gone once a new one was being instantiated)
            cuda_memory::graph_free(graph);
            if (kept.exec != nullptr) {
                cuda_memory::graph_destroy(kept.exec);
            }
            cuda_memory::graph_free(kept.graph);
            if (require_) {
                throw;
            }
            // not recordable here: the plain run gives the same results (and
            // throws if the work itself is at fault)
            plain_ = true;
            call(work);
            return;
        }
    }
    cuda_memory::graph_launch(place_, exec_);
#endif
}

GraphStats graph_stats() {
#ifdef FLASHKMEANS_WITH_CUDA
    GraphCounts& c = graph_counts();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.stats;
#else
    return GraphStats();
#endif
}

bool is_device_pointer(const void* ptr) {
#ifdef FLASHKMEANS_WITH_CUDA
    return cuda_memory::is_device_pointer(ptr);
#else
    (void)ptr;
    return false;
#endif
}

} // namespace flashkmeans
