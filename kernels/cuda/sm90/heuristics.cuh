// How the Hopper FlashAssign configures itself for a call: plain functions of
// the problem's shape (d-chunks, k) and of the device (its shared memory),
// each a rule with its reason in heuristics.cu. Each heuristic can be pinned
// by a kernel variant (flashkmeans/variants.h) for tests and A/B runs.
#pragma once

#include "launch.h"
#include "params.cuh"

#include <flashkmeans/variants.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// The streamed mainloop, not the resident one, for rows of `chunks` d-chunks
/// (variant sm90_x).
bool use_streamed(int chunks, const kernels::Variants& var);

/// wgmma reads the points from registers, not shared memory, in the resident
/// kernel for fp16/bf16 with d <= 128 (variant sm90_a).
bool use_points_in_registers(const kernels::Variants& var);

/// The resident kernel with the points in registers runs in CTA pairs
/// (variant sm90_cluster).
bool use_resident_pairs(const kernels::Variants& var);

/// The streamed kernel runs in CTA pairs for rows of `chunks` d-chunks
/// (variant sm90_cluster).
bool use_streamed_pairs(int chunks, const kernels::Variants& var);

/// The resident kernel with the points in registers folds max-first for k
/// centroids (variant sm90_fold).
bool use_max_first_fold(int64_t k, const kernels::Variants& var);

/// The fewest ring slots that `main` runs with at `chunks` d-chunks.
int min_ring_stages(Mainloop main, int chunks);

/// The block's shared-memory layout for `main` at `chunks` d-chunks on a
/// device with `smem_optin` bytes of shared memory per block: points buffers
/// and the deepest ring that fits (a power-of-two number of slots if `pow2`).
/// Fewer than min_ring_stages slots when even that does not fit.
Layout ring_layout(Mainloop main, int chunks, bool pow2, int smem_optin);

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
