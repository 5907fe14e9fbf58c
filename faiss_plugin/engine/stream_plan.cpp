#include "stream_plan.h"

#include <flashkmeans/errors.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace flashkmeans {

namespace {

/// Streamed with chunks of c points, no point resident.
size_t streamed_bytes(const StreamSizes& s, int64_t c) {
    return s.fixed_bytes + size_t(c) * s.chunk_row_bytes + s.workspace(c, 1, true);
}

} // namespace

std::string StreamPlan::describe() const {
    if (!streamed) {
        return "resident";
    }
    char buf[160];
    if (in_place) {
        std::snprintf(buf, sizeof(buf),
                      "streamed in %" PRId64 " chunks of %" PRId64 " points, read in place",
                      chunks(), chunk_rows);
    } else {
        std::snprintf(buf, sizeof(buf),
                      "streamed in %" PRId64 " chunks of %" PRId64 " points, %.1f%% resident",
                      chunks(), chunk_rows, 100.0 * resident_share());
    }
    return buf;
}

StreamPlan plan_stream(const StreamSizes& s, size_t budget, int64_t chunk_rows) {
    StreamPlan p;
    p.rows = s.n * s.batch;
    p.chunk_rows = p.rows;
    p.resident_rows = p.rows;
    // resident: every point read at once (on the CPU, in place, a window on
    // all of them), the update over all of them
    const size_t row = std::max(s.resident_row_bytes, s.chunk_row_bytes);
    p.bytes = s.fixed_bytes + size_t(p.rows) * row + s.workspace(s.n, s.batch, false);
    p.min_bytes = streamed_bytes(s, 1);
    if (chunk_rows <= 0 && (budget == 0 || p.bytes <= budget || p.rows <= 1)) {
        return p;
    }
    if (chunk_rows <= 0 && budget < p.min_bytes) {
        char buf[400];
        std::snprintf(buf, sizeof(buf),
                      "memory_budget of %zu bytes is too small: the centroids, sums and per-point "
                      "arrays (%zu bytes), one chunk of 1 point and the update's workspace need "
                      "at least %zu bytes (all %" PRId64 " points resident: %zu)",
                      budget, s.fixed_bytes, p.min_bytes, p.rows, p.bytes);
        throw InputError(buf);
    }
    if (chunk_rows > 0) {
        budget = std::max(budget,
                          streamed_bytes(s, std::min(chunk_rows, std::max<int64_t>(p.rows, 1))));
    }
    // the largest chunk that fits (the workspace grows with the chunk), at
    // most kMaxChunkBytes of chunk rows and fewer than all the rows
    int64_t lo = 1,
            hi = std::min<int64_t>(p.rows,
                                   std::max<int64_t>(1,
                                                     int64_t(kMaxChunkBytes /
                                                             std::max<size_t>(1,
                                                                              s.chunk_row_bytes))));
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        if (streamed_bytes(s, mid) <= budget) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if (chunk_rows > 0) {
        lo = std::min(chunk_rows, std::max<int64_t>(p.rows, 1));
    }
    p.streamed = true;
    p.chunk_rows = lo;
    p.bytes = streamed_bytes(s, lo);
    if (s.resident_row_bytes == 0) {
        p.in_place = true;
        p.resident_rows = p.rows; // used in place: nothing to copy
    } else {
        // what is left keeps whole chunks resident, the leading ones
        const int64_t fit = int64_t((budget - p.bytes) / s.resident_row_bytes);
        p.resident_rows = std::min(p.rows, fit / lo * lo);
        p.bytes += size_t(p.resident_rows) * s.resident_row_bytes;
    }
    return p;
}

size_t stream_budget_for_chunk(const StreamSizes& s, int64_t chunk_rows) {
    return streamed_bytes(s, chunk_rows);
}

} // namespace flashkmeans
