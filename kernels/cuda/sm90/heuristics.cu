// The Hopper FlashAssign's heuristics (see heuristics.cuh): each rule, why it
// holds, and the variants that pin it. The timings behind them were taken on
// an H200 with bench_kernels and bench_lloyd (docs/benchmarks.md); the runs
// are in the git history of bench/results/.
#include "heuristics.cuh"

#include "../tuning_variant.h"

#include <climits>
#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

namespace {

/// Which kernel takes d of at most kMaxResidentChunks chunks (beyond, only the
/// streamed one can). "auto": the resident one for at most 2 chunks (fp16/bf16
/// d <= 128, the points in registers; fp32 TF32 d <= 64), the streamed one
/// above: there the streamed kernel was 5-10% faster (TF32 d = 96 and 128,
/// fp16 d = 192 and 256, k = 1024 to 8192; TF32 1M x 1024 x 128: 0.87 vs
/// 0.95 ms), while with the points in registers the resident one wins (4M x
/// 4096 x 128 fp16: 13-15%). The variant sm90_x = resident or streamed forces
/// one, for tests and tuning.
struct XVariant {
    const char* name;
    int max_resident_chunks;  // more chunks than this: the streamed kernel
};
constexpr XVariant kXVariants[] = {
        {"auto", 2}, {"resident", kMaxResidentChunks}, {"streamed", 0}};

/// Where wgmma reads the points from in the resident kernel for fp16/bf16 with
/// d <= 128 (elsewhere always shared memory): registers by default (the
/// tensor cores then read only the centroids from shared memory: +3% at 1M x
/// 8192 x 128, bitwise the same scores), sm90_a = smem for A/B runs and the
/// bitwise test.
struct AVariant {
    const char* name;
    bool regs;
};
constexpr AVariant kAVariants[] = {{"regs", true}, {"smem", false}};

/// When the Hopper kernels run in CTA pairs (see flash_assign_sm90_kernel).
/// "auto": the resident kernel with the points in registers (fp16/bf16,
/// d <= 128) always, the streamed one from 8 chunks of d (fp16/bf16 d >= 512,
/// TF32 d >= 256). "1" never, "2" always: for A/B runs and the bitwise test.
/// A pair halves the centroids' L2 traffic, which is energy rather than time:
/// the resident kernel in pairs is as fast in short bursts and 3% faster
/// after 300 back-to-back launches at the 700 W cap (1M x 8192 x 128: 4.45 vs
/// 4.58 ms), 1-2.5% less per Lloyd iteration on every fp16 row; the streamed
/// one takes 3-5% less per Lloyd iteration at 1M x 4096 x 768 but about 1%
/// more with 4 chunks (TF32 d = 128, fp16 d = 256) in bursts: with few chunks
/// per tile the pair's lock step costs more than the traffic saves.
struct ClusterVariant {
    const char* name;
    int resident_ctas;
    int streamed_pair_chunks;  // the streamed kernel in pairs from this many chunks
};
constexpr ClusterVariant kClusterVariants[] = {
        {"auto", 2, 8}, {"1", 1, INT_MAX}, {"2", 2, 0}};

/// Which fold the resident kernel with the points in registers (fp16/bf16,
/// d <= 128) uses: fold_acc (a compare and two selects per score) or
/// fold_acc_max_first (a tree of maxima, the column searched only when a row
/// improves). "auto": max-first from k = 32768: the tree costs more per tile
/// than the scan, and pays once rows improve rarely enough. 1M x k x 128
/// fp16, scan vs max-first: max-first 10% slower at k = 1024, 3% at 8192,
/// even at 16384, faster from 32768 (2%) and at 65536 (31.3 vs 30.0 ms).
/// "scan" / "max" force one, for tests and A/B runs.
struct MaxFirstVariant {
    const char* name;
    int64_t from_k;  // max-first for k >= from_k
};
constexpr MaxFirstVariant kMaxFirstVariants[] = {
        {"auto", 32768}, {"scan", INT64_MAX}, {"max", 0}};

} // namespace

// Resident for at most 2 chunks, streamed above, where it is faster (XVariant).
bool use_streamed(int chunks, const kernels::Variants& var) {
    return chunks > variant_by_name("sm90_x", var.sm90_x, kXVariants).max_resident_chunks;
}

// Registers: the tensor cores then read only the centroids (AVariant).
bool use_points_in_registers(const kernels::Variants& var) {
    return variant_by_name("sm90_a", var.sm90_a, kAVariants).regs;
}

// Always: pairs save energy, and long runs are energy-bound (ClusterVariant).
bool use_resident_pairs(const kernels::Variants& var) {
    return variant_by_name("sm90_cluster", var.sm90_cluster, kClusterVariants).resident_ctas == 2;
}

// From 8 chunks: with fewer the pair's lock step costs more (ClusterVariant).
bool use_streamed_pairs(int chunks, const kernels::Variants& var) {
    return chunks >=
           variant_by_name("sm90_cluster", var.sm90_cluster, kClusterVariants).streamed_pair_chunks;
}

// From k = 32768, where rows improve rarely enough (MaxFirstVariant).
bool use_max_first_fold(int64_t k, const kernels::Variants& var) {
    return k >= variant_by_name("sm90_fold", var.sm90_fold, kMaxFirstVariants).from_k;
}

// Resident: a consumer holds the chunks of tile t while it waits for those of
// tile t + 1, so the ring needs 2 * chunks slots at least. Streamed and
// exact: a consumer holds one slot, so 2 slots is the least that runs.
int min_ring_stages(Mainloop main, int chunks) {
    return main == Mainloop::Resident ? 2 * chunks : 2;
}

// The ring as deep as shared memory allows (up to kMaxStages), after the
// points: the resident kernel double-buffers them (the next row tile loads
// under this one) unless that leaves fewer than min_ring_stages slots, as it
// does with d of 4 chunks; the exact kernel copies the points to registers as
// soon as they land, so one buffer is enough and the rest goes to the ring;
// the streamed kernel has none (its points come through the ring).
Layout ring_layout(Mainloop main, int chunks, bool pow2, int smem_optin) {
    auto fit = [&](int x_buffers) {
        Layout L{chunks, kMaxStages, x_buffers, main == Mainloop::Resident ? 1 : 2};
        while (L.stages > 1 && L.bytes() + 1024 > smem_optin) {
            --L.stages;
        }
        while (pow2 && (L.stages & (L.stages - 1)) != 0) {
            --L.stages;
        }
        return L;
    };
    Layout L = fit(main == Mainloop::Streamed ? 0 : main == Mainloop::Exact3xTF32 ? 1 : 2);
    if (main == Mainloop::Resident && L.stages < min_ring_stages(main, chunks)) {
        L = fit(1);
    }
    return L;
}

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
