// For tests only (radix_sort_for_test.h): one sort on the device, by the
// update's radix sort or by CUB's public API (both in radix_sort_pairs.cu and
// radix_sort_keys.cu: this file compiles no CUB kernel).
#include "radix_sort_for_test.h"

#include "radix_sort.cuh"
#include "../cuda_check.h"

namespace flashkmeans {
namespace cuda {
namespace update {

namespace {

template <typename V>
void sort_on_device(SortBy by, cub::DoubleBuffer<uint32_t>& keys, cub::DoubleBuffer<V>& values,
                    uint32_t m, int begin_bit, int end_bit, cudaStream_t stream) {
    auto sort = [&](void* tmp, size_t& bytes) {
        return by == SortBy::Update
                       ? radix_sort(tmp, bytes, keys, values, m, begin_bit, end_bit, true, stream)
                       : cub_public_radix_sort(tmp, bytes, keys, values, m, begin_bit, end_bit,
                                               stream);
    };
    size_t bytes = 0;
    FK_CUDA_CHECK(sort(nullptr, bytes));
    ScopedDeviceBuffer tmp(bytes, stream);
    FK_CUDA_CHECK(sort(tmp.get(), bytes));
}

} // namespace

void radix_sort_for_test(SortBy by, uint32_t* keys, int32_t* values, uint32_t m, int begin_bit,
                         int end_bit) {
    if (m == 0) {
        return;
    }
    const cudaStream_t stream = 0;
    const size_t bytes = size_t(m) * 4;
    ScopedDeviceBuffer buffers(4 * bytes, stream);  // keys0 keys1 values0 values1
    char* at = static_cast<char*>(buffers.get());
    cub::DoubleBuffer<uint32_t> dkeys(reinterpret_cast<uint32_t*>(at),
                                      reinterpret_cast<uint32_t*>(at + bytes));
    FK_CUDA_CHECK(cudaMemcpyAsync(dkeys.Current(), keys, bytes, cudaMemcpyHostToDevice, stream));
    if (values != nullptr) {
        cub::DoubleBuffer<int32_t> dvalues(reinterpret_cast<int32_t*>(at + 2 * bytes),
                                           reinterpret_cast<int32_t*>(at + 3 * bytes));
        FK_CUDA_CHECK(cudaMemcpyAsync(dvalues.Current(), values, bytes, cudaMemcpyHostToDevice,
                                      stream));
        sort_on_device(by, dkeys, dvalues, m, begin_bit, end_bit, stream);
        FK_CUDA_CHECK(cudaMemcpyAsync(values, dvalues.Current(), bytes, cudaMemcpyDeviceToHost,
                                      stream));
    } else {
        cub::DoubleBuffer<cub::NullType> none;
        sort_on_device(by, dkeys, none, m, begin_bit, end_bit, stream);
    }
    FK_CUDA_CHECK(cudaMemcpyAsync(keys, dkeys.Current(), bytes, cudaMemcpyDeviceToHost, stream));
    FK_CUDA_CHECK(cudaStreamSynchronize(stream));
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
