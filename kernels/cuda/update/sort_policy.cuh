// The radix sort of the update's step 2 (sort_inverse_update.cu): CUB's
// onesweep radix sort of 32-bit keys, with their int32 ids or keys-only, on
// the key bits [begin_bit, end_bit) only, with a digit width of our choosing.
//
// CUB's SM90 tuning sorts 8 bits per onesweep pass (384 threads x 23 items).
// With 9-12 key bits (k ~ 256..4096, one problem) that is two passes of 8 +
// 1..4 bits; 6 + 3..6 bits in 256 x 16 tiles makes the same two passes with
// smaller digit tables, and is faster (H200, 1M keys of 11 bits: 45.2 vs
// 47.7 us). Where 6-bit digits would add a pass (13-16, 19-24 bits) they lose
// (21 bits, 2M keys: 114 vs 93 us). So the digit is the smallest that keeps
// CUB's number of passes, at least 6 (sort_digit_bits in heuristics.h). Same
// stable order either way.
//
// CUB internals used (everything else is CUB's public API):
//  - cub::DispatchRadixSort<Order, KeyT, ValueT, OffsetT, DecomposerT,
//    PolicyHub>::Dispatch, with our policy as PolicyHub, and
//    cub::detail::identity_decomposer_t to reach that parameter;
//  - cub::detail::radix::policy_hub<KeyT, ValueT, OffsetT>::Policy900: the
//    policies we do not override are copied from it;
//  - cub::ChainedPolicy, and the agent policies
//    cub::AgentRadixSortHistogramPolicy, AgentRadixSortExclusiveSumPolicy,
//    AgentRadixSortOnesweepPolicy with cub::RADIX_RANK_MATCH_EARLY_COUNTS_ANY,
//    cub::BLOCK_SCAN_RAKING_MEMOIZE, cub::RADIX_SORT_STORE_DIRECT;
//  - the members DispatchRadixSort reads from a policy: ONESWEEP,
//    ONESWEEP_RADIX_BITS and the nine *Policy types of DigitSort::Policy.
// What a CUB upgrade can break: if these names or template parameters move,
// this file no longer compiles (the static_asserts below name the shape we
// rely on). If their meaning changes while the names stay (a new policy member
// that DispatchRadixSort reads with a default, another digit width in CUB's
// own SM90 tuning, a different meaning of ONESWEEP_RADIX_BITS), it still
// compiles and may get slower, or, at worst, sort in another order; the
// order is checked by tests/gpu/test_cub_sort_policy.cpp (this sort against
// cub::DeviceRadixSort::SortPairs / SortKeys, 6-, 7- and 8-bit digits,
// stability) and CudaUpdate.SortDigitsEqualCubTuningBitwise (the update's
// sums against CUB's own tuning, "sort8"); the speed by bench/bench_kernels.cpp
// with FLASHKMEANS_UPDATE_CONFIG=sort8 against the default. Run them after a
// CUDA upgrade.
#pragma once

#include "heuristics.h"

#include <cub/device/device_radix_sort.cuh>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace update {

/// A radix-sort policy of DIGIT-bit onesweep passes. V: the values (int32
/// ids, or cub::NullType for the packed keys-only sort).
/// CUB sizes the histogram kernel's grid by occupancy, so its 128-thread
/// blocks each count a few thousand keys and flush their bins with global
/// atomics; with 7-bit digits (4M x 4096: 2 x 4M keys of 13 bits, not packed)
/// 512-thread blocks of 4 sub-histograms make the update 3-4 us faster (H200:
/// 0.415-0.416 vs 0.418-0.420 ms); with 6-bit digits they do not (1M x 1024:
/// slower).
template <typename V, int DIGIT, int HIST_THREADS = 128, int HIST_PARTS = 1>
struct DigitSort {
    using Base = typename cub::detail::radix::policy_hub<uint32_t, V, uint32_t>::Policy900;
    struct Policy : cub::ChainedPolicy<500, Policy, Policy> {
        static constexpr bool ONESWEEP = true;
        static constexpr int ONESWEEP_RADIX_BITS = DIGIT;
        using HistogramPolicy =
                cub::AgentRadixSortHistogramPolicy<HIST_THREADS, 16, HIST_PARTS, uint32_t,
                                                   ONESWEEP_RADIX_BITS>;
        using ExclusiveSumPolicy = cub::AgentRadixSortExclusiveSumPolicy<256, ONESWEEP_RADIX_BITS>;
        using OnesweepPolicy = cub::AgentRadixSortOnesweepPolicy<
                256, 16, uint32_t, 1, cub::RADIX_RANK_MATCH_EARLY_COUNTS_ANY,
                cub::BLOCK_SCAN_RAKING_MEMOIZE, cub::RADIX_SORT_STORE_DIRECT, ONESWEEP_RADIX_BITS>;
        // the rest as CUB's (only the single-tile one runs on SM90: small m)
        using ScanPolicy = typename Base::ScanPolicy;
        using DownsweepPolicy = typename Base::DownsweepPolicy;
        using AltDownsweepPolicy = typename Base::AltDownsweepPolicy;
        using UpsweepPolicy = typename Base::UpsweepPolicy;
        using AltUpsweepPolicy = typename Base::AltUpsweepPolicy;
        using SingleTilePolicy = typename Base::SingleTilePolicy;
        using SegmentedPolicy = typename Base::SegmentedPolicy;
        using AltSegmentedPolicy = typename Base::AltSegmentedPolicy;
    };
    using MaxPolicy = Policy;

    // The shape this override relies on (see the head comment): CUB's SM90
    // tuning is a onesweep one, and the agent policies sort the digit given.
    static_assert(Base::ONESWEEP, "CUB's SM90 radix-sort tuning is no longer onesweep: "
                                  "revisit DigitSort and sort_digit_bits");
    static_assert(Policy::HistogramPolicy::RADIX_BITS == DIGIT &&
                          Policy::ExclusiveSumPolicy::RADIX_BITS == DIGIT &&
                          Policy::OnesweepPolicy::RADIX_BITS == DIGIT,
                  "CUB's onesweep agent policies no longer take the digit width as given");
};

/// Stable sort of keys on bits [begin_bit, end_bit), with their values, in
/// digits of sort_digit_bits(end_bit - begin_bit, sort6); tmp == nullptr:
/// sets bytes to the temporary storage needed. Instantiated once per value
/// type (radix_sort_pairs.cu, radix_sort_keys.cu).
template <typename V>
cudaError_t sort_with_digit_policy(void* tmp, size_t& bytes, cub::DoubleBuffer<uint32_t>& keys,
                                   cub::DoubleBuffer<V>& values, uint32_t m, int begin_bit,
                                   int end_bit, bool sort6, cudaStream_t stream) {
    auto with = [&](auto policy) {
        using P = decltype(policy);
        return cub::DispatchRadixSort<cub::SortOrder::Ascending, uint32_t, V, uint32_t,
                                      cub::detail::identity_decomposer_t,
                                      P>::Dispatch(tmp, bytes, keys, values, m, begin_bit,
                                                   end_bit, true, stream);
    };
    switch (sort_digit_bits(end_bit - begin_bit, sort6)) {
    case 6:
        return with(DigitSort<V, 6>{});
    case 7:
        return with(DigitSort<V, 7, 512, 4>{});
    default:
        return cub::DispatchRadixSort<cub::SortOrder::Ascending, uint32_t, V,
                                      uint32_t>::Dispatch(tmp, bytes, keys, values, m, begin_bit,
                                                          end_bit, true, stream);
    }
}

} // namespace update
} // namespace cuda
} // namespace flashkmeans
