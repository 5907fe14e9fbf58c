// Storage for the engine: host memory on the CPU backend, device memory on
// CUDA. The engine is written once against this and the kernels; this file
// is the only place the two backends differ above the kernels.
#pragma once

#include <flashkmeans/kernels.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace flashkmeans {

/// Allocates `bytes` on the place (throws OutOfMemoryError naming the size
/// when memory runs out). Returns nullptr for 0 bytes.
void* place_alloc(const Place& place, size_t bytes);
void place_free(const Place& place, void* ptr);
/// Copies host -> place, place -> host, place -> place (stream-ordered on CUDA).
void copy_to_place(const Place& place, void* dst, const void* host_src, size_t bytes);
void copy_to_host(const Place& place, void* host_dst, const void* src, size_t bytes);
void copy_within(const Place& place, void* dst, const void* src, size_t bytes);
/// place -> place in stream order without waiting (recordable in a CUDA
/// graph); a plain copy on the CPU.
void copy_within_async(const Place& place, void* dst, const void* src, size_t bytes);
/// `rows` rows of `row_bytes` from src (rows `src_pitch` bytes apart) to dst
/// (`dst_pitch` apart), any direction (one 2D copy on CUDA); the bytes of a
/// dst row past row_bytes are left as they are.
void copy_rows(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
               size_t rows, size_t row_bytes);
/// copy_rows from pageable host memory to the place, at the bus's speed for
/// large copies: on CUDA the rows go through two pinned staging buffers,
/// the host filling one (several threads) while the other crosses the bus.
/// With `ids`, dst row r is host row ids[r] (a gather straight into the
/// staging buffers: no host copy of the gathered rows). Returns when the
/// rows are on the place.
void upload_rows(const Place& place, void* dst, size_t dst_pitch, const void* host_src,
                 size_t src_pitch, size_t rows, size_t row_bytes, const int64_t* ids = nullptr);
/// copy_rows without waiting: stream-ordered on CUDA (host memory in it must
/// be pinned, or stay as it is until the stream has done the copy); a plain
/// copy on the CPU.
void copy_rows_async(const Place& place, void* dst, size_t dst_pitch, const void* src,
                     size_t src_pitch, size_t rows, size_t row_bytes);
/// Free memory of the place's device (cudaMemGetInfo); 0 on the CPU.
size_t place_free_bytes(const Place& place);
/// True when `ptr` is page-locked host memory, which a CUDA copy reads
/// directly (CUDA builds; false otherwise).
bool is_pinned_host_pointer(const void* ptr);
/// Sets `bytes` bytes at ptr (place memory) to zero, in stream order.
void place_zero(const Place& place, void* ptr, size_t bytes);
/// Waits for the place's stream (no-op on the CPU).
void place_sync(const Place& place);
/// Host memory that a place copies into without the host waiting:
/// page-locked on CUDA (one DMA, recordable in a CUDA graph; a copy to
/// pageable memory is staged and waits), plain on the CPU.
void* pinned_alloc(const Place& place, size_t bytes);
void pinned_free(const Place& place, void* ptr);
/// place -> pinned host copy in stream order; read it after place_sync.
void copy_to_pinned(const Place& place, void* pinned_dst, const void* src, size_t bytes);
/// True when `ptr` is device memory (CUDA builds; false otherwise).
bool is_device_pointer(const void* ptr);

/// Times work on a place without waiting for it: CUDA events in stream order
/// on a GPU (so a timed step needs no sync of its own), the host clock on the
/// CPU, where the work is done when the call returns.
class PlaceTimer {
   public:
    explicit PlaceTimer(const Place& place);
    ~PlaceTimer();
    PlaceTimer(const PlaceTimer&) = delete;
    PlaceTimer& operator=(const PlaceTimer&) = delete;
    void start() { mark(0); }
    void stop() { mark(1); }
    /// Seconds from start() to stop() (on CUDA, waits until stop() is reached).
    double seconds() const;

   private:
    void mark(int which); // 0: start, 1: stop
    Place place_;
    void* events_[2] = {nullptr, nullptr}; // cudaEvent_t on CUDA
    double host_ms_[2] = {0, 0};
};

/// A point in a place's stream work that the host or another stream waits
/// for (a CUDA event without timing); on the CPU, where work is done when its
/// call returns, every call is a no-op.
class PlaceEvent {
   public:
    explicit PlaceEvent(const Place& place);
    ~PlaceEvent();
    PlaceEvent(const PlaceEvent&) = delete;
    PlaceEvent& operator=(const PlaceEvent&) = delete;
    /// at the current end of `on`'s stream (same device)
    void record(const Place& on);
    /// `on`'s stream waits for the last record before its later work; the
    /// host does not wait
    void wait(const Place& on) const;
    /// the host waits for the last record
    void sync() const;

   private:
    void* event_ = nullptr; // cudaEvent_t on CUDA
};

/// A place whose CUDA stream can be recorded into a graph: on CUDA with the
/// legacy default stream (nullptr), which CUDA graphs cannot record from, a
/// stream of its own, created blocking so that work others queue on the
/// default stream stays ordered with it both ways. Otherwise the place as
/// given (the CPU, or a stream the caller chose).
class PlaceStream {
   public:
    explicit PlaceStream(const Place& place);
    /// `own`: on CUDA, a stream of its own even when the place names one
    /// (the copy streams of streaming)
    PlaceStream(const Place& place, bool own);
    ~PlaceStream();
    PlaceStream(const PlaceStream&) = delete;
    PlaceStream& operator=(const PlaceStream&) = delete;
    const Place& place() const { return place_; }

   private:
    Place place_;
    bool owned_ = false;
};

/// Runs the same stream work (same kernels, same arguments) again and again.
/// On CUDA the first run is plain: one-time set-up inside the work (device
/// probes that copy to the host) cannot be recorded, and while the device
/// does that run the host records the second, which that run and all later
/// ones launch as a CUDA graph: one launch instead of one per kernel, and no
/// host-side gaps between the kernels. With a key, the instantiated graph is
/// kept when the PlaceGraph goes (at most 16, in the process, until
/// empty_cache()), and the next PlaceGraph of the same key updates the kept
/// graph with its second run's recording (new buffers, events, points;
/// cudaGraphExecUpdate checks that the topology is the same, else a new graph
/// is made): a repeated call instantiates nothing. If recording fails (the
/// legacy default stream, no stream-ordered allocator, ...) every run stays
/// plain: slower, same results. The variant cuda_graph = "0"
/// (flashkmeans/variants.h) keeps runs plain (A/B timing, debugging);
/// "require" makes a failed recording an error (tests). On the CPU, each run
/// calls the work.
class PlaceGraph {
   public:
    /// `key` names the work's shape: non-empty, the graph is kept between
    /// calls (see above)
    explicit PlaceGraph(const Place& place, std::string key = {});
    ~PlaceGraph();
    PlaceGraph(const PlaceGraph&) = delete;
    PlaceGraph& operator=(const PlaceGraph&) = delete;
    template <typename Work>
    void run(Work&& work) {
        run_erased(&work, [](void* w) { (*static_cast<Work*>(w))(); });
    }
    /// Whether runs now launch a recorded graph.
    bool recorded() const { return exec_ != nullptr; }
    /// Whether that graph was one kept from an earlier call, updated.
    bool updated() const { return updated_; }
    /// Why a kept graph could not be updated (empty: it could, or there was
    /// none): cudaGraphExecUpdate's answer, the node it stopped at and,
    /// when the two recordings differ, the first node where they do.
    const std::string& update_refusal() const {
        return update_refusal_;
    }

   private:
    void run_erased(void* work, void (*call)(void*));
    Place place_;
    void* exec_ = nullptr; // cudaGraphExec_t
    bool plain_ = false;   // recording failed or is switched off
    bool require_ = false; // the variant cuda_graph = "require"
    bool updated_ = false;
    std::string update_refusal_;
    std::string key_;
    void* graph_ = nullptr; // cudaGraph_t: the recording exec_ was made or updated from
    int64_t runs_ = 0;
};

/// An owning buffer of T, from Alloc / Free for a place.
template <typename T, void* (*Alloc)(const Place&, size_t), void (*Free)(const Place&, void*)>
class OwningArray {
   public:
    OwningArray() = default;
    OwningArray(const Place& place, size_t count) : place_(place), count_(count) {
        ptr_ = static_cast<T*>(Alloc(place, count * sizeof(T)));
    }
    ~OwningArray() { Free(place_, ptr_); }
    OwningArray(OwningArray&& o) noexcept { swap(o); }
    OwningArray& operator=(OwningArray&& o) noexcept {
        swap(o);
        return *this;
    }
    OwningArray(const OwningArray&) = delete;
    OwningArray& operator=(const OwningArray&) = delete;

    T* get() const { return ptr_; }
    size_t size() const { return count_; }

   private:
    void swap(OwningArray& o) {
        std::swap(place_, o.place_);
        std::swap(ptr_, o.ptr_);
        std::swap(count_, o.count_);
    }
    Place place_;
    T* ptr_ = nullptr;
    size_t count_ = 0;
};

/// An owning buffer of T on a place.
template <typename T>
using PlaceArray = OwningArray<T, place_alloc, place_free>;
/// An owning buffer of T in host memory pinned for the place.
template <typename T>
using PinnedArray = OwningArray<T, pinned_alloc, pinned_free>;

} // namespace flashkmeans
