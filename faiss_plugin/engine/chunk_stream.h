// The points of a streamed run that are not resident, brought to the place
// chunk by chunk, every pass in the same order: fixed staging slots (pinned
// host buffer + device buffer, 2 of them), each with a copy stream of its
// own, so that the copy of chunk c + 1 runs while the place computes chunk
// c. The ring of chunks wraps from one pass to the next, so the first chunks
// of the next iteration are already on their way while this one finishes.
//
// Per chunk c (slot s = c mod 2):
//   host:        waits until slot s's last copy has left its pinned buffer,
//                fills it from the caller's rows (all host threads; skipped
//                when the caller's rows are pinned already: copied directly)
//   copy stream: waits until the place is done with slot s's device buffer
//                (chunk c - 2), copies the chunk up, records `copied`
//   place:       waits for `copied`, converts to the compute dtype when the
//                host dtype differs (fp32 -> fp16/bf16), then the caller's work
// Rows are padded to the place's row length (zeros, written once).
//
// Only CUDA places stream; the CPU uses its points in place (stream_plan.h).
#pragma once

#include "device_memory.h"

#include <flashkmeans/kernels.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace flashkmeans {

class ChunkStream {
   public:
    static constexpr int kSlots = 2;

    /// Rows [first_row, rows) of `host_x` (rows of d elements of host_dtype,
    /// fp32 or compute_dtype) in chunks of chunk_rows, delivered as rows of
    /// dp elements of compute_dtype.
    ChunkStream(const Place& place, const void* host_x, DType host_dtype, DType compute_dtype,
                int64_t d, int64_t dp, int64_t rows, int64_t first_row, int64_t chunk_rows);
    ~ChunkStream();
    ChunkStream(const ChunkStream&) = delete;
    ChunkStream& operator=(const ChunkStream&) = delete;

    /// Place memory one chunk of streamed rows occupies (every slot and the
    /// conversion buffers), per row: StreamSizes::chunk_row_bytes.
    static size_t bytes_per_row(DType host_dtype, DType compute_dtype, int64_t d, int64_t dp);

    /// The next chunk in ring order (a pass walks first_row.. in order, and
    /// the next pass starts over): its rows [g0, g0 + m) and their place
    /// memory, ready for work queued on the place's stream from now on.
    const void* next(int64_t& g0, int64_t& m);
    /// The place's work on the chunk `next` gave is queued: its slot may be
    /// refilled once that work is done; the copy of a later chunk is issued.
    void done();

   private:
    struct Slot;
    void issue(); // stages the next chunk in ring order into its slot
    int64_t chunk_begin(int64_t c) const {
        return first_row_ + c * chunk_rows_;
    }

    Place place_;
    const uint8_t* host_x_;
    bool host_pinned_;
    DType host_dtype_, compute_dtype_;
    int64_t d_, dp_, rows_, first_row_, chunk_rows_, chunks_;
    bool convert_; // host fp32 -> compute fp16/bf16 on the place
    std::vector<std::unique_ptr<Slot>> slots_;
    PlaceArray<uint8_t> typed_, packed_; // conversion output (compute-stream order)
    int64_t issued_ = 0, used_ = 0;      // chunks issued / handed out, ever
    bool in_use_ = false;
};

} // namespace flashkmeans
