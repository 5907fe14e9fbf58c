// The output stream of std::mt19937 (the engine inside faiss::RandomGenerator),
// generated 624 words at a time.
//
// Why not the std engine itself: FAISS's empty-cluster split draws about k
// numbers per empty cluster, so a large k with many empty clusters takes
// billions of draws, and the std engine's one-call-per-word form runs at
// several ns a word. Here the twist and the tempering are plain loops over
// the whole state, which the compiler turns into vector code. The algorithm
// and the seeding are the ones the C++ standard fixes for mt19937
// ([rand.eng.mers], [rand.predef]), so the words are the std engine's:
// tests/test_cpu_kernels.cpp checks them against std::mt19937 and against
// faiss::RandomGenerator's own engine.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashkmeans {
namespace kernels {

class Mt19937Blocks {
   public:
    static constexpr size_t kWords = 624;

    /// The stream of std::mt19937(seed).
    explicit Mt19937Blocks(uint32_t seed) {
        state_[0] = seed;
        for (uint32_t i = 1; i < kWords; i++) {
            const uint32_t prev = state_[i - 1];
            state_[i] = 1812433253u * (prev ^ (prev >> 30)) + i;
        }
    }

    /// The next word of the stream.
    uint32_t next() {
        if (pos_ == kWords) {
            refill();
        }
        return out_[pos_++];
    }

   private:
    static constexpr size_t kShift = 397;
    static constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu;
    static constexpr uint32_t kMatrix = 0x9908b0dfu;

    static uint32_t twist(uint32_t hi, uint32_t lo, uint32_t far) {
        const uint32_t y = (hi & kUpper) | (lo & kLower);
        return far ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
    }

    /// The next 624 state words, then their tempered outputs.
    void refill() {
        uint32_t* s = state_;
        size_t i = 0;
        for (; i < kWords - kShift; i++) {
            s[i] = twist(s[i], s[i + 1], s[i + kShift]);
        }
        for (; i < kWords - 1; i++) {
            s[i] = twist(s[i], s[i + 1], s[i + kShift - kWords]);
        }
        s[kWords - 1] = twist(s[kWords - 1], s[0], s[kShift - 1]);
        for (size_t j = 0; j < kWords; j++) {
            uint32_t y = s[j];
            y ^= y >> 11;
            y ^= (y << 7) & 0x9d2c5680u;
            y ^= (y << 15) & 0xefc60000u;
            y ^= y >> 18;
            out_[j] = y;
        }
        pos_ = 0;
    }

    uint32_t state_[kWords];
    uint32_t out_[kWords];
    size_t pos_ = kWords;
};

} // namespace kernels
} // namespace flashkmeans
