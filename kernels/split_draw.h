// The empty-cluster split's random draw as a threshold on the generator's
// raw word (split_clusters.cpp; its own header so that a test can check the
// threshold at its edges, which random draws almost never reach).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace flashkmeans {
namespace kernels {

/// FAISS draws `r = rng.rand_float()`, which is `float(u) / float(2^32 - 1)`
/// for the generator's 32-bit output u, and splits cluster c when r < p with
/// `float p = (hassign[c] - 1.0) / (float)(n - k)`. float(2^32 - 1) is 2^32,
/// so r < p is float(u) < p 2^32 (both scalings exact), and float(u) grows
/// with u: the accepted outputs are exactly those below the least u with
/// float(u) >= p 2^32 (0 when p <= 0: nothing accepted; 2^32 when every
/// output is).
inline uint64_t split_accept_below(float weight, size_t n, size_t k) {
    const float p = (weight - 1.0) / (float)(n - k);
    const float bound = std::ldexp(p, 32);
    if (!(bound > 0)) {
        return 0;
    }
    uint64_t lo = 0, hi = uint64_t(1) << 32; // float(lo) < bound <= float(hi) or hi = 2^32
    while (hi - lo > 1) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (float(uint32_t(mid)) < bound) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return hi;
}

} // namespace kernels
} // namespace flashkmeans
