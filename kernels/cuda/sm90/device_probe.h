// Whether a device can run the Hopper kernels of this build.
#pragma once

namespace flashkmeans {
namespace cuda {
namespace sm90 {

/// True when `device` is of compute capability 9.0 and this build holds
/// sm_90a code for it (a one-thread probe kernel, run once per device; the
/// answer is cached).
bool device_runs_sm90a(int device);

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
