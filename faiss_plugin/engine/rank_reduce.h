// The engine's exchange across ranks (data-parallel Lloyd). Each rank
// assigns and sums its own shard; once per iteration the partial results
// (cluster sums k x d fp32, weight sums and counts k each, the objective)
// are combined, every element adding the ranks' values in rank order
// (kernels::sum_slices), so every rank holds the same bits and finishes the
// iteration identically (finalize, split, statistics) with no further
// exchange. The result depends on the rank count only through the order of
// the float additions, and is the same bits for a given rank count.
//
// Two exchanges give those bits (rank_exchange_rule says which runs):
// - all-gather: every rank receives every packet and adds all of them; one
//   collective, (R - 1) P bytes received per rank;
// - reduce-scatter in rank order, then all-gather: rank r receives slice r
//   of every packet (an all-to-all), adds them, and the sums are
//   all-gathered; two collectives, 2 (R - 1) / R P bytes received per rank,
//   what a ring all-reduce moves. No MPI or NCCL all-reduce: neither fixes
//   the order in which floats are added.
#pragma once

#include "device_memory.h"

#include <flashkmeans/Communicator.h>
#include <flashkmeans/kernels.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace flashkmeans {

enum class RankExchange { AllGather, ReduceScatter };

/// The exchange for R ranks and packets of `packet_bytes` (the rule in the
/// .cpp), or the one kernels::Variants::rank_exchange names.
RankExchange rank_exchange_rule(int ranks, size_t packet_bytes);

class RankReduce {
   public:
    /// For an engine of `batch` problems, k clusters, rows of dp floats, and
    /// its partial sums (place memory): sums (batch x k x dp), weight_sums
    /// and counts (batch x k). Zeroes sums and weight_sums: the update never
    /// writes the rows of frozen centroids, and every exchanged byte is defined.
    RankReduce(const Place& place, std::shared_ptr<Communicator> comm, int64_t k, int64_t dp,
               int64_t batch, float* sums, float* weight_sums, int32_t* counts);

    Communicator& comm() const {
        return *comm_;
    }
    RankExchange exchange() const {
        return exchange_;
    }

    /// Local partials -> sums over all ranks, in place: the sums, weight
    /// sums and counts, and the objective, the sum of the rank's `n`
    /// distances per problem. `scratch`: kernels::iteration_stats'.
    void combine(const float* distances, int64_t n, double* scratch);
    /// The statistics kernels::iteration_stats reports (3 doubles per
    /// problem, into `stats`), for all ranks: the global counts' sums and
    /// the objective combine() reduced.
    void stats(const int32_t* counts, double* stats, double* scratch);

    /// Host values summed over the ranks in rank order (the same on every rank).
    std::vector<double> sum(const std::vector<double>& mine) const;
    int64_t sum(int64_t mine) const;

   private:
    /// One typed array of the exchange, in place memory.
    struct Segment {
        void* data;
        size_t elem; // bytes per value
        kernels::SumType type;
        int64_t count; // values
        int64_t chunk; // values per rank's slice (reduce-scatter)
        size_t at;     // offset in a packet (all-gather) or a block (reduce-scatter)
    };
    void all_gather();
    void reduce_scatter();

    Place place_;
    std::shared_ptr<Communicator> comm_;
    int64_t k_, dp_, batch_;
    RankExchange exchange_;
    std::vector<Segment> segments_; // objective, sums, weight sums, counts
    size_t unit_bytes_ = 0;         // a packet (all-gather) or a block (reduce-scatter), 8-aligned
    PlaceArray<uint8_t> send_;      // what this rank sends: its packet, or R blocks
    PlaceArray<uint8_t> received_;  // R packets or R blocks, in rank order
    PlaceArray<uint8_t> mine_;      // reduce-scatter: this rank's summed block
    PlaceArray<double> obj_; // the objective, 3 doubles per problem (iteration_stats' layout)
};

} // namespace flashkmeans
