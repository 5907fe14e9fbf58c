/**
 * A Communicator over an MPI communicator (host buffers): link
 * flashkmeans::mpi (built when CMake finds MPI). With the CUDA backend the
 * iteration's partial sums cross through host memory; use
 * <flashkmeans/nccl_communicator.h> for device-to-device exchange.
 */
#pragma once

#include <flashkmeans/Communicator.h>

#include <mpi.h>

#include <memory>

namespace flashkmeans {

/// The ranks of `comm` (not duplicated, not freed: it must outlive the
/// result). MPI must be initialised.
std::shared_ptr<Communicator> mpi_communicator(MPI_Comm comm);

} // namespace flashkmeans
