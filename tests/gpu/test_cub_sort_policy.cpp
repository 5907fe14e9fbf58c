// The update's radix sort hands its own digit policy to CUB internals
// (kernels/cuda/update/sort_policy.cuh). A CUB upgrade that changes what such
// a policy means may still compile; these tests would then see the sort leave
// the order of CUB's public cub::DeviceRadixSort, or stop being stable. Keys
// are random with many duplicates, for each digit width the update sorts
// with (6 and 7 bits, and CUB's own 8), in (key, id) pairs and as packed
// keys-only words (key << shift | id), on many tiles (CUB's onesweep kernels)
// and on one (its single-tile kernel). Skipped when no GPU is visible.
#include <flashkmeans/kernels.h>

#include "../../kernels/cuda/update/heuristics.h"
#include "../../kernels/cuda/update/radix_sort_for_test.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

namespace upd = flashkmeans::cuda::update;
using upd::SortBy;

struct Case {
    int key_bits;  // the sorted bits
    int digit;     // the digit width the update's sort uses for them
    uint32_t m;    // keys
};

std::string name(const Case& c) {
    return std::to_string(c.key_bits) + " key bits, " + std::to_string(c.digit) +
           "-bit digits, m = " + std::to_string(c.m);
}

/// m keys below 2^bits: half of them one of 40 values (long runs of equal
/// keys), half uniform (every digit value occurs).
std::vector<uint32_t> keys_with_duplicates(uint32_t m, int bits, uint32_t seed) {
    std::mt19937 rng(seed);
    const uint32_t mask = (1u << bits) - 1u;
    std::vector<uint32_t> hot(40);
    for (uint32_t& v : hot) {
        v = rng() & mask;
    }
    std::vector<uint32_t> keys(m);
    for (uint32_t& k : keys) {
        k = rng() % 2 == 0 ? hot[rng() % hot.size()] : rng() & mask;
    }
    return keys;
}

/// `keys` (with their `ids`) are `in` sorted stably on bits [begin_bit,
/// end_bit): key i is in[ids[i]], the sorted bits ascend, and ids ascend
/// among equal sorted bits (so the ids are a permutation).
void expect_stable_sort(const std::vector<uint32_t>& in, const std::vector<uint32_t>& keys,
                        const std::vector<int32_t>& ids, int begin_bit, int end_bit) {
    const uint32_t mask = (1u << (end_bit - begin_bit)) - 1u;
    auto bits = [&](uint32_t key) { return (key >> begin_bit) & mask; };
    size_t wrong = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
        const bool id_ok = ids[i] >= 0 && size_t(ids[i]) < in.size() && in[ids[i]] == keys[i];
        const bool order_ok = i == 0 || bits(keys[i - 1]) < bits(keys[i]) ||
                              (bits(keys[i - 1]) == bits(keys[i]) && ids[i - 1] < ids[i]);
        wrong += id_ok && order_ok ? 0 : 1;
    }
    EXPECT_EQ(wrong, 0u) << "positions out of a stable order";
}

} // namespace

// (key, point id) pairs sorted on the key bits [0, key_bits), with other bits
// above them carried along: the update's pairs sort (ids 0..m-1).
TEST(CubSortPolicy, PairsSortEqualsDeviceRadixSortSortPairsAndIsStable) {
    if (flashkmeans::cuda_device_count() == 0) {
        GTEST_SKIP() << "no GPU";
    }
    const uint32_t many = (1u << 20) + 3, one_tile = 3001;
    for (const Case& c : {Case{11, 6, many}, Case{13, 7, many}, Case{17, 6, many},
                          Case{20, 7, many}, Case{22, 8, many}, Case{11, 6, one_tile},
                          Case{13, 7, one_tile}}) {
        SCOPED_TRACE(name(c));
        ASSERT_EQ(c.digit, upd::sort_digit_bits(c.key_bits, true));
        std::vector<uint32_t> in = keys_with_duplicates(c.m, c.key_bits, 100 + c.key_bits);
        std::mt19937 rng(200 + c.key_bits);
        for (uint32_t& k : in) {
            k |= rng() << c.key_bits;  // not sorted on
        }
        std::vector<int32_t> ids(c.m);
        for (uint32_t i = 0; i < c.m; ++i) {
            ids[i] = int32_t(i);
        }
        std::vector<uint32_t> keys = in, cub_keys = in;
        std::vector<int32_t> cub_ids = ids;
        upd::radix_sort_for_test(SortBy::Update, keys.data(), ids.data(), c.m, 0, c.key_bits);
        upd::radix_sort_for_test(SortBy::CubPublicApi, cub_keys.data(), cub_ids.data(), c.m, 0,
                                 c.key_bits);
        EXPECT_TRUE(keys == cub_keys) << "keys differ from cub::DeviceRadixSort::SortPairs";
        EXPECT_TRUE(ids == cub_ids) << "ids differ from cub::DeviceRadixSort::SortPairs";
        expect_stable_sort(in, keys, ids, 0, c.key_bits);
    }
}

// Packed words key << shift | id sorted keys-only on the key bits [shift,
// shift + key_bits): the update's packed sort, where the stable order keeps
// the ids (the low bits) ascending within a key.
TEST(CubSortPolicy, PackedKeysSortEqualsDeviceRadixSortSortKeysAndIsStable) {
    if (flashkmeans::cuda_device_count() == 0) {
        GTEST_SKIP() << "no GPU";
    }
    // key bits + id bits <= 32, as the update packs them
    for (const Case& c : {Case{11, 6, (1u << 20) - 5}, Case{13, 7, 200003},
                          Case{8, 8, (1u << 20) + 3}, Case{12, 6, 3001}}) {
        SCOPED_TRACE(name(c));
        ASSERT_EQ(c.digit, upd::sort_digit_bits(c.key_bits, true));
        int shift = 0;
        while ((uint64_t(1) << shift) < c.m) {
            ++shift;  // bits of the largest id m - 1
        }
        ASSERT_LE(shift + c.key_bits, 32);
        std::vector<uint32_t> in = keys_with_duplicates(c.m, c.key_bits, 300 + c.key_bits);
        for (uint32_t i = 0; i < c.m; ++i) {
            in[i] = in[i] << shift | i;
        }
        std::vector<uint32_t> keys = in, cub_keys = in;
        const int end_bit = shift + c.key_bits;
        upd::radix_sort_for_test(SortBy::Update, keys.data(), nullptr, c.m, shift, end_bit);
        upd::radix_sort_for_test(SortBy::CubPublicApi, cub_keys.data(), nullptr, c.m, shift,
                                 end_bit);
        EXPECT_TRUE(keys == cub_keys) << "keys differ from cub::DeviceRadixSort::SortKeys";
        std::vector<int32_t> ids(c.m);
        for (uint32_t i = 0; i < c.m; ++i) {
            ids[i] = int32_t(keys[i] & ((1u << shift) - 1u));
        }
        expect_stable_sort(in, keys, ids, shift, end_bit);
    }
}
