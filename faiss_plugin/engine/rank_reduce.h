// The engine's exchange across ranks (data-parallel Lloyd). Each rank
// assigns and sums its own shard; once per iteration the partial results
// (cluster sums k x d fp32, weight sums and counts k each, the objective)
// go out as one packet, one all-gather, and every rank adds the R packets in
// rank order (kernels::sum_slices). Every rank then holds the same bits and
// finishes the iteration identically (finalize, split, statistics): no
// further exchange. The result depends on the rank count only through the
// order of the float additions, and is the same bits for a given rank count.
#pragma once

#include "device_memory.h"

#include <flashkmeans/Communicator.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace flashkmeans {

class RankReduce {
   public:
    /// For an engine of `batch` problems, k clusters, rows of dp floats.
    RankReduce(const Place& place, std::shared_ptr<Communicator> comm, int64_t k, int64_t dp,
               int64_t batch);

    Communicator& comm() const {
        return *comm_;
    }

    /// Local partials -> sums over all ranks, in place (place memory):
    /// sums (batch x k x dp), weight_sums and counts (batch x k), and the
    /// objective, the sum of the rank's `n` distances per problem.
    void combine(const float* distances, int64_t n, float* sums, float* weight_sums,
                 int32_t* counts, double* scratch);
    /// The statistics kernels::iteration_stats reports (3 doubles per
    /// problem, into `stats`), for all ranks: the global counts' sums and
    /// the objective combine() reduced.
    void stats(const int32_t* counts, double* stats, double* scratch);

    /// Host values summed over the ranks in rank order (the same on every rank).
    std::vector<double> sum(const std::vector<double>& mine) const;
    int64_t sum(int64_t mine) const;

   private:
    Place place_;
    std::shared_ptr<Communicator> comm_;
    int64_t k_, dp_, batch_;
    size_t packet_bytes_;          // one rank's packet, a multiple of 8 bytes
    PlaceArray<uint8_t> packet_;   // [objective: 3 batch doubles | sums | weight sums | counts]
    PlaceArray<uint8_t> gathered_; // every rank's packet, in rank order
    PlaceArray<double> obj_;       // the objective, 3 doubles per problem (iteration_stats' layout)
};

} // namespace flashkmeans
