// Shared by the GPU benchmarks: checked CUDA buffers and random data (never
// zeros) generated on all host threads and converted on the device.
#pragma once

#include <flashkmeans/kernels.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fk = flashkmeans;
namespace kn = flashkmeans::kernels;

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
    }
}

/// Launch check after every kernel call: a failed launch must not be timed.
void check_launch(const char* what) {
    check(cudaGetLastError(), what);
}

template <typename T>
struct DevBuf {
    T* p = nullptr;
    explicit DevBuf(size_t count) {
        if (count > 0) {
            check(cudaMalloc(reinterpret_cast<void**>(&p), count * sizeof(T)), "cudaMalloc");
        }
    }
    ~DevBuf() { cudaFree(p); }
    DevBuf(const DevBuf&) = delete;
    DevBuf& operator=(const DevBuf&) = delete;
};

uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/// Fills host[0..count) with uniform values in [-1, 1) from (seed, index),
/// on all host threads.
void random_fill(float* host, size_t count, uint64_t seed) {
    const unsigned nt = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < nt; t++) {
        ts.emplace_back([=] {
            const size_t b = count * t / nt, e = count * (t + 1) / nt;
            for (size_t i = b; i < e; i++) {
                const uint64_t r = splitmix(seed * 0x100000001b3ull + i);
                host[i] = float(int64_t(r >> 40) - (int64_t(1) << 23)) / float(1 << 23);
            }
        });
    }
    for (auto& t : ts) {
        t.join();
    }
}

/// Random rows x rows x d in `dtype` on the device, generated and converted in
/// chunks so no full fp32 copy is needed on the device.
void device_random(void* dst, fk::DType dtype, size_t count, uint64_t seed) {
    const size_t chunk = size_t(1) << 26;
    std::vector<float> host(std::min(count, chunk));
    DevBuf<float> tmp(std::min(count, chunk));
    const fk::Place gpu{fk::Backend::CUDA, 0, nullptr};
    for (size_t off = 0; off < count; off += chunk) {
        const size_t m = std::min(chunk, count - off);
        random_fill(host.data(), m, seed + off);
        check(cudaMemcpy(tmp.p, host.data(), m * 4, cudaMemcpyHostToDevice), "upload");
        kn::convert_from_float(gpu, tmp.p, dtype, int64_t(m),
                               static_cast<char*>(dst) + off * fk::dtype_size(dtype));
        check_launch("convert_from_float");
    }
    check(cudaDeviceSynchronize(), "sync");
}


} // namespace
