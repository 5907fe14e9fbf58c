// A rank's share of a data-parallel run's training points, and the set-up
// steps that need every rank: the global row count, FAISS's subsample over
// the global index space, rows gathered by global id and k-means++ over the
// shards (the seeding), and
// checks that fail on every rank when they fail on one (so no rank waits
// forever in the next exchange). The global order of the points is rank 0's
// rows, then rank 1's, and so on: a run on R ranks sees the same points in
// the same order as one process given the concatenation.
#pragma once

#include "lloyd.h"

#include <flashkmeans/Communicator.h>
#include <flashkmeans/Options.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace flashkmeans {

struct Shard {
    std::shared_ptr<Communicator> comm; ///< never null
    int64_t n = 0;                      ///< this rank's training rows
    int64_t n_total = 0;                ///< training rows over all ranks
    int64_t offset = 0;                 ///< global id of local row 0 (while `ids` is empty)
    /// global ids of the local rows, ascending, after subsampling (the sample
    /// is interleaved across ranks); empty: rows [offset, offset + n)
    std::vector<int64_t> ids;

    bool distributed() const {
        return comm->size() > 1;
    }
    int rank() const {
        return comm->rank();
    }
    /// The local row holding global row g, or -1 when another rank holds it.
    int64_t local_row(int64_t g) const;
};

/// The shard of `n` local rows (one exchange of the row counts). A null
/// comm is the local communicator.
Shard make_shard(std::shared_ptr<Communicator> comm, int64_t n);

/// Runs `check` on this rank; when it throws on any rank, throws on every
/// rank: the exception where it was thrown, elsewhere an InputError naming
/// the first rank that failed and carrying its message. One exchange, and
/// two more (the message) when a rank failed.
void check_on_all_ranks(Communicator& comm, const std::function<void()>& check);

/// faiss::InterruptCallback::check() for all ranks: with several, each asks
/// its own callback and all throw when any was interrupted (one exchange), so
/// that no rank is left waiting in the next exchange for one that stopped.
void check_interrupt_on_all_ranks(Communicator& comm);

/// `mine` summed over the ranks in rank order (the same on every rank).
double sum_over_ranks(Communicator& comm, double mine);

/// FAISS's subsample of `nsub` rows over the global index space (the prefix
/// of rand_perm(n_total, seed), chosen on rank 0 and broadcast). Returns the
/// local rows to keep, in sample order, and makes `shard` the sample's.
std::vector<int64_t> subsample(Shard& shard, int64_t nsub, int64_t seed);

/// Global training rows `gids` (m of them) as fp32 into out (m x d, host)
/// on every rank, each from the rank that holds it (problem 0 of `lloyd`).
void gather_global_rows(const Shard& shard, const Lloyd& lloyd, const int64_t* gids, int64_t m,
                        int64_t d, float* out);

/// Global training row g as fp32 into out (d floats, host) on every rank,
/// from the rank that holds it: a flag per rank, then d floats.
void broadcast_global_row(const Shard& shard, const Lloyd& lloyd, int64_t g, int64_t d, float* out);

/// k-means++ seeding of rows [n_given, k) of `centroids` (host, k x d) by D^2
/// sampling across ranks (kmeanspp_on_ranks.cpp): the one process's draws and
/// rule over the global order, each rank reading only its own shard; each
/// collective carries O(R + d) values, about log2(n_total) + 3 of them per
/// new row. The picks are the one process's wherever the double sums of the
/// distances are exact (integer data); elsewhere they may differ by the
/// order of those sums. Weights play no part, as in one process.
void kmeanspp_on_ranks(const Shard& shard, const Lloyd& lloyd, int64_t seed, size_t n_given,
                       size_t k, size_t d, float* centroids);

/// initialize_centroids (init.h) across ranks, with the one process's
/// result: Random takes the same global rows (ids from rank 0, rows from
/// their ranks); KMeansPP is kmeanspp_on_ranks, on every backend. One
/// process whose points stream (its plan keeps rows off the place) seeds by
/// kmeanspp_on_ranks too: the seeding kernel needs every point on the place.
void initialize_centroids_on_ranks(const Shard& shard, Lloyd& lloyd, Init init, int64_t seed,
                                   size_t n_given, size_t k, size_t d, float* centroids);

} // namespace flashkmeans
