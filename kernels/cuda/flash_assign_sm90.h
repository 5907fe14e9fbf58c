// The Hopper (sm_90a) FlashAssign of flash_assign_sm90.cu (its parts in
// sm90/), called by flash_assign.cu: AssignKernel::Hopper asks for it, Auto
// takes it wherever it can run.
#pragma once

#include <flashkmeans/kernels.h>

#include <cuda_runtime.h>

#include <string>

namespace flashkmeans {
namespace cuda {

/// Empty when the Hopper kernel can run this call on the current device;
/// otherwise why not (a sentence fragment for an error message).
std::string flash_assign_sm90_unsupported(const kernels::AssignArgs& a);

/// Enqueues the Hopper kernel; throws KernelError (with the reason) where it
/// cannot run.
void flash_assign_sm90(const kernels::AssignArgs& a, cudaStream_t stream);

} // namespace cuda
} // namespace flashkmeans
