// The CUDA calls behind device_memory.h (cuda_memory.cpp): a place's memory,
// copies, events, streams and graphs. Only device_memory.cpp calls these;
// the engine uses device_memory.h's types.
#pragma once

#include <flashkmeans/kernels.h>

#include <cstddef>
#include <string>

namespace flashkmeans {
namespace cuda_memory {

void* alloc(const Place& place, size_t bytes);
void free(const Place& place, void* ptr);
void* host_alloc(const Place& place, size_t bytes);
void host_free(void* ptr);
void release_cached();
size_t cached_bytes();

/// Synchronous: host buffers passed in may be freed right after.
void copy(const Place& place, void* dst, const void* src, size_t bytes);
void copy_2d(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
             size_t rows, size_t row_bytes);
void copy_async(const Place& place, void* dst, const void* src, size_t bytes);
/// Pageable host rows (rows ids[r] when ids is given) to the device through
/// pinned staging (upload_rows).
void upload_2d(const Place& place, void* dst, size_t dst_pitch, const void* src, size_t src_pitch,
               size_t rows, size_t row_bytes, const int64_t* ids = nullptr);
/// copy_2d in stream order, any memory to any (the host does not wait)
void copy_2d_async(const Place& place, void* dst, size_t dst_pitch, const void* src,
                   size_t src_pitch, size_t rows, size_t row_bytes);
void zero_async(const Place& place, void* ptr, size_t bytes);
size_t free_bytes(const Place& place);
bool is_pinned_host_pointer(const void* ptr);
void sync(const Place& place);
bool is_device_pointer(const void* ptr);

/// A timing event, taken from those kept for the next call: the one given
/// back last comes first, so a call that takes its timers in the order of the
/// call before gets the same events, and a kept graph that records them
/// updates (cudaGraphExecUpdate refuses another event in an event node).
void* event_create(const Place& place);
void event_record(const Place& place, void* event);
double event_elapsed_ms(void* start, void* stop);
/// Gives a timing event of event_create back (kept, or destroyed past a few).
void event_release(const Place& place, void* event);
void event_destroy(void* event);
/// An event for ordering only (no timing), which the host and other streams wait for.
void* sync_event_create(const Place& place);
void event_wait(const Place& place, void* event);
void event_sync(void* event);

void* stream_create(const Place& place);
void stream_destroy(const Place& place, void* stream);

/// Records what call(work) enqueues on the place's stream (a cudaGraph_t);
/// throws if the work cannot be recorded.
void* graph_capture(const Place& place, void* work, void (*call)(void*));
void* graph_instantiate(void* graph);
/// Gives `exec` the parameters of `graph` (same topology): empty, or why
/// not (the update's result and the node it stopped at, with its kernel).
std::string graph_update(void* exec, void* graph);
/// The graph's nodes in order, one "type[:kernel]" each, ';'-separated: set
/// beside a refusal, it shows where two recordings of one work differ.
std::string graph_signature(void* graph);
/// Frees a recording (cudaGraph_t); null is a no-op; never throws.
void graph_free(void* graph);
void graph_launch(const Place& place, void* exec);
void graph_destroy(void* exec);

} // namespace cuda_memory
} // namespace flashkmeans
