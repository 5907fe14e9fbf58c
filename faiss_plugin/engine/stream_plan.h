// How a run's points meet the memory budget: resident (every point on the
// place for the whole run, as the engine always did) or streamed (the points
// read a chunk at a time, every iteration). The plan is a plain function of
// the sizes, the same for both backends: on the CPU a chunk is a window on
// the caller's array (read in place), on CUDA the rows pass through staging
// slots (chunk_stream.h) while the leading rows that fit stay resident.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace flashkmeans {

/// What the plan is made from (bytes on the place).
struct StreamSizes {
    int64_t n = 0;     ///< points per problem
    int64_t batch = 1; ///< problems; chunks run over the B n rows back to back
    /// the engine's buffers whatever the plan: centroids, sums, per-point
    /// norms, labels, distances and weights, statistics
    size_t fixed_bytes = 0;
    /// one point kept on the place (0: the points are used where they are)
    size_t resident_row_bytes = 0;
    /// one point of a chunk: its share of every staging slot (CUDA), or the
    /// window on points used in place (the CPU)
    size_t chunk_row_bytes = 0;
    /// the update's workspace for calls over `rows` points of `batch`
    /// problems, accumulating or not (kernels::update_workspace_bytes)
    std::function<size_t(int64_t rows, int64_t batch, bool accumulate)> workspace;
};

struct StreamPlan {
    bool streamed = false;
    int64_t rows = 0;          ///< B n
    int64_t chunk_rows = 0;    ///< rows per chunk (streamed)
    int64_t resident_rows = 0; ///< leading rows on the place: a multiple of chunk_rows, or all
    size_t bytes = 0;          ///< what the plan needs on the place
    size_t min_bytes = 0;      ///< the smallest budget that streams (1-point chunks)
    bool in_place = false;     ///< the points are read where they are (the CPU)

    int64_t chunks() const {
        return streamed ? (rows + chunk_rows - 1) / chunk_rows : 1;
    }
    int64_t resident_chunks() const {
        return streamed ? (resident_rows + chunk_rows - 1) / chunk_rows : 1;
    }
    double resident_share() const {
        return rows > 0 ? double(resident_rows) / double(rows) : 1.0;
    }
    /// "resident", "streamed in 12 chunks of 4096 points, 25.0% resident",
    /// or, in place, "streamed in 12 chunks of 4096 points, read in place"
    std::string describe() const;
};

/// Most bytes a chunk's rows take (StreamSizes::chunk_row_bytes, every slot)
/// when the budget allows more: copies of this size already run at the bus's
/// speed, and what the budget has left keeps points resident instead.
constexpr size_t kMaxChunkBytes = size_t(256) << 20;

/// The plan for `budget` bytes. budget 0: resident. Resident when everything
/// fits; else streamed, with the largest chunk (up to kMaxChunkBytes) that
/// fits beside the fixed buffers and the workspace, then
/// as many resident rows as the rest holds. Throws InputError naming the
/// minimum when even one-point chunks do not fit. `chunk_rows` > 0 pins
/// the chunk (tests, benchmarks): streamed whatever the budget, with the
/// resident rows the budget leaves (none without a budget, unless in place).
StreamPlan plan_stream(const StreamSizes& sizes, size_t budget, int64_t chunk_rows = 0);

/// The budget that makes plan_stream choose chunks of exactly `chunk_rows`
/// points (below kMaxChunkBytes), none resident unless in place (tests).
size_t stream_budget_for_chunk(const StreamSizes& sizes, int64_t chunk_rows);

} // namespace flashkmeans
