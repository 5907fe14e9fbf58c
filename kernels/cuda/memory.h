// Device and pinned host memory for the kernels and the engine: the one
// allocation path (the engine's buffers, the kernels' scratch), one
// out-of-memory error (OutOfMemoryError, naming the size and the device's
// free memory).
//
// Device memory comes from one pool per device that keeps freed memory for
// the next call (release threshold: never), so a call of a shape seen before
// makes no cudaMalloc and no cudaFree (which waits for the whole device).
// Allocation and free are stream-ordered; the pool reuses a block only once
// its free has completed. The pool gives its memory back when an allocation
// would otherwise fail, and on release_cached_memory() (empty_cache()). While
// a stream is being recorded into a CUDA graph, allocations become the
// graph's own memory nodes instead. Pinned host buffers (per-iteration
// statistics, staging) are kept the same way, up to kMaxCachedPinnedBytes.
//
// Plain C++ (no device code): host-only sources and tests include it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace flashkmeans {
namespace cuda {

/// Stream-ordered allocation of `bytes` on the current device; throws
/// OutOfMemoryError ("CUDA out of memory allocating N bytes on device D
/// (free F of T)") when even an emptied pool cannot give it. nullptr for 0.
void* device_alloc(size_t bytes, cudaStream_t stream);
/// Stream-ordered free; never throws (used on unwinding paths).
void device_free(void* ptr, cudaStream_t stream) noexcept;

/// Pinned host memory, from the cache when a block of that size is free.
void* pinned_alloc(size_t bytes);
/// Back to the cache (or to the driver beyond the cache's bound); never throws.
void pinned_free(void* ptr) noexcept;
constexpr size_t kMaxCachedPinnedBytes = size_t(32) << 20;  // upload_rows' two 8 MB stages and more

/// Gives every pool's kept memory and the cached pinned blocks back to the
/// driver (waits for each device first).
void release_cached_memory();
/// Bytes kept for later calls: pools' reserved-but-unused plus cached pinned.
size_t cached_memory_bytes();

/// Scratch memory owned for one call: allocated on `stream`, freed on it when
/// the scope ends (also when an exception unwinds it).
class ScopedDeviceBuffer {
   public:
    ScopedDeviceBuffer(size_t bytes, cudaStream_t stream)
        : ptr_(device_alloc(bytes, stream)), stream_(stream) {}
    ~ScopedDeviceBuffer() { device_free(ptr_, stream_); }
    ScopedDeviceBuffer(ScopedDeviceBuffer&& o) noexcept : ptr_(o.ptr_), stream_(o.stream_) {
        o.ptr_ = nullptr;
    }
    ScopedDeviceBuffer(const ScopedDeviceBuffer&) = delete;
    ScopedDeviceBuffer& operator=(const ScopedDeviceBuffer&) = delete;
    void* get() const { return ptr_; }

   private:
    void* ptr_;
    cudaStream_t stream_;
};

} // namespace cuda
} // namespace flashkmeans
