// The Hopper kernels' launches as the dispatch (flash_assign_sm90.cu) sees
// them: function templates over the kernel configurations, defined in
// launch_template.cuh and explicitly instantiated in instantiations/, one
// file per mainloop (and element type), so the build compiles them in
// parallel.
#pragma once

#include <flashkmeans/kernels.h>

#include <cuda_runtime.h>

#include <cstdint>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// Which kernel a launch runs: the points resident in shared memory (or
/// registers) for the whole row tile, streamed through the ring with the
/// centroids (any d), or fp32 exact as 3xTF32.
enum class Mainloop { Resident, Streamed, Exact3xTF32 };

/// MAIN with CHUNKS chunks of d (CHUNKS is unused by the streamed kernel);
/// the resident kernel in clusters of CL CTAs, with the max-first fold if MAXF.
/// Enqueues the kernel on `stream` for call `a` with `chunks` d-chunks.
template <typename T, Mainloop MAIN, int CHUNKS, bool AREGS = false, int CL = 1, bool MAXF = false>
void launch(const kernels::AssignArgs& a, int chunks, cudaStream_t stream);

/// The resident kernel with the points in registers (fp16/bf16), CHUNKS (1
/// or 2) chunks of d, in CTA pairs or not, with the max-first fold or not.
template <typename T, int CHUNKS>
void launch_regs(const kernels::AssignArgs& a, bool pair, bool maxf, cudaStream_t stream);

/// Enqueues the exact kernel's centroid split (split_tf32.cu): count fp32
/// values of c into their tf32 high parts (hi) and low parts (lo), on at
/// most 4 blocks per SM.
void split_tf32(const float* c, int64_t count, float* hi, float* lo, int sms, cudaStream_t stream);

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
