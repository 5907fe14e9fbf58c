/**
 * flashkmeans::Communicator: the ranks of a data-parallel run. Each rank
 * holds its own shard of the points; one Lloyd iteration exchanges the
 * per-cluster partial sums once (an all-gather, combined in rank order, so
 * the result is the same bits for a given rank count) and every rank then
 * finishes the iteration identically. Implementations: local (one rank, the
 * default), MPI (<flashkmeans/mpi_communicator.h>, host buffers; serves the
 * CPU backend and CUDA through host copies) and NCCL
 * (<flashkmeans/nccl_communicator.h>, device buffers). Every rank must make
 * the same calls in the same order.
 */
#pragma once

#include <flashkmeans/kernels.h>

#include <cstddef>
#include <memory>

namespace flashkmeans {

class Communicator {
   public:
    virtual ~Communicator() = default;
    /// this process's rank, 0 <= rank() < size()
    virtual int rank() const = 0;
    /// number of ranks
    virtual int size() const = 0;
    /// "local", "mpi" or "nccl" (verbose lines, messages)
    virtual const char* name() const = 0;
    /// recv[r * bytes, (r + 1) * bytes) = rank r's `bytes` at send, on every
    /// rank. Host memory; for the run's set-up (sizes, draws, chosen rows).
    virtual void allgather(const void* send, void* recv, size_t bytes) = 0;
    /// root's `bytes` at buf, to buf on every rank. Host memory.
    virtual void broadcast(void* buf, size_t bytes, int root) = 0;
    /// recv[q * bytes, (q + 1) * bytes) = rank q's send[rank() * bytes, ...),
    /// on every rank (each rank sends block r of its `size() * bytes` to
    /// rank r). Host memory.
    virtual void alltoall(const void* send, void* recv, size_t bytes) = 0;
    /// allgather and alltoall of memory on `place` (device memory on CUDA):
    /// the iteration's exchange. Return when recv holds the result in the
    /// place's stream order. Default: through host memory (MPI, local).
    virtual void allgather_on(const Place& place, const void* send, void* recv, size_t bytes);
    virtual void alltoall_on(const Place& place, const void* send, void* recv, size_t bytes);
};

/// One rank: every collective is a copy. What a run without a communicator uses.
std::shared_ptr<Communicator> local_communicator();

} // namespace flashkmeans
