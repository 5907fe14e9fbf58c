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
#include <string>

namespace flashkmeans {

/// Returns the cached device memory and pinned host buffers to the driver
/// (waits for the devices first). No-op without CUDA.
void empty_cache();

/// Bytes held in those caches now (0 without CUDA).
size_t cached_memory_bytes();

/// What the CUDA graphs of the iterations did since the process started:
/// a call of a shape seen before should update a kept graph (cheap), not
/// instantiate a new one. Counts only; for tests and benchmarks.
struct GraphStats {
    long long instantiated = 0; ///< graphs instantiated
    long long updated = 0;      ///< kept graphs updated for a new call
    long long refused = 0;      ///< kept graphs whose update CUDA refused
    /// why the last refused update was refused ("" if none)
    std::string last_refusal;
};
GraphStats graph_stats();

} // namespace flashkmeans
