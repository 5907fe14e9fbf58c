// Host side of device_memory.h; CUDA places forward to cuda/cuda_memory.cpp.
#include "device_memory.h"

#include <faiss/impl/FaissAssert.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace flashkmeans {

#ifdef FLASHKMEANS_WITH_CUDA
namespace cuda_memory {
void* alloc(const Place& place, size_t bytes);
void free(const Place& place, void* ptr);
void copy(const Place& place, void* dst, const void* src, size_t bytes);
void sync(const Place& place);
bool is_device_pointer(const void* ptr);
} // namespace cuda_memory
#define FK_ON_CUDA(place) ((place).backend == Backend::CUDA)
#else
#define FK_ON_CUDA(place) false
#endif

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
    FAISS_THROW_IF_NOT_FMT(p != nullptr, "out of host memory allocating %zu bytes", bytes);
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

void place_sync(const Place& place) {
#ifdef FLASHKMEANS_WITH_CUDA
    if (FK_ON_CUDA(place)) {
        cuda_memory::sync(place);
    }
#else
    (void)place;
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
