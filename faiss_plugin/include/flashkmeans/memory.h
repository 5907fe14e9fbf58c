/**
 * The memory flashkmeans keeps between calls. On CUDA, the device buffers of
 * a finished call go back to a per-device memory pool instead of to the
 * driver, so the next call of the same shape allocates nothing (no
 * cudaMalloc, no cudaFree, which would wait for the whole device). The pool
 * holds at most what the largest call so far used; it gives everything back
 * when an allocation would otherwise fail, and on empty_cache(). A few small
 * pinned host buffers (at most 16 MiB) are kept the same way.
 */
#pragma once

#include <cstddef>

namespace flashkmeans {

/// Returns the cached device memory and pinned host buffers to the driver
/// (waits for the devices first). No-op without CUDA.
void empty_cache();

/// Bytes held in those caches now (0 without CUDA).
size_t cached_memory_bytes();

} // namespace flashkmeans
