/**
 * A Communicator over an NCCL communicator (device buffers): link
 * flashkmeans::nccl (built when CMake finds CUDA and NCCL). Create the
 * ncclComm_t as NCCL says (ncclCommInitRank with an id broadcast over MPI
 * across hosts, or ncclCommInitAll for the GPUs of one process); each rank
 * trains with Options::device set to the communicator's device.
 */
#pragma once

#include <flashkmeans/Communicator.h>

#include <nccl.h>

#include <memory>

namespace flashkmeans {

/// The ranks of `comm`, whose device is `device` (not freed: it must outlive
/// the result). Host collectives go through a small device buffer.
std::shared_ptr<Communicator> nccl_communicator(ncclComm_t comm, int device);

} // namespace flashkmeans
