#include "chunk_stream.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cstring>

namespace flashkmeans {

struct ChunkStream::Slot {
    explicit Slot(const Place& place) : copy(place, true), copied(place), consumed(place) {}
    PlaceStream copy;            // the slot's copy stream
    PinnedArray<uint8_t> pinned; // staging, unless the caller's rows are pinned
    PlaceArray<uint8_t> rows;    // the chunk on the place (fp32 when converted)
    PlaceEvent copied, consumed; // copy done; the place done with `rows`
    bool pending = false;        // `copied` recorded, not yet waited for by the host
};

size_t ChunkStream::bytes_per_row(DType host_dtype, DType compute_dtype, int64_t d, int64_t dp) {
    const size_t esz = dtype_size(compute_dtype);
    if (host_dtype == compute_dtype) {
        return kSlots * size_t(dp) * esz;
    }
    return kSlots * size_t(d) * sizeof(float) + size_t(dp) * esz + (dp != d ? size_t(d) * esz : 0);
}

ChunkStream::ChunkStream(const Place& place, const void* host_x, DType host_dtype,
                         DType compute_dtype, int64_t d, int64_t dp, int64_t rows,
                         int64_t first_row, int64_t chunk_rows)
        : place_(place),
          host_x_(static_cast<const uint8_t*>(host_x)),
          host_pinned_(is_pinned_host_pointer(host_x)),
          host_dtype_(host_dtype),
          compute_dtype_(compute_dtype),
          d_(d),
          dp_(dp),
          rows_(rows),
          first_row_(first_row),
          chunk_rows_(chunk_rows),
          chunks_((rows - first_row + chunk_rows - 1) / chunk_rows),
          convert_(host_dtype != compute_dtype) {
    FAISS_THROW_IF_NOT_MSG(chunk_rows > 0 && first_row < rows, "ChunkStream: nothing to stream");
    FAISS_THROW_IF_NOT_MSG(!convert_ || host_dtype == DType::Float32,
                           "points must be float32 to be converted to another dtype");
    const size_t esz = dtype_size(compute_dtype), hrow = size_t(d) * dtype_size(host_dtype);
    const size_t c = size_t(chunk_rows);
    for (int s = 0; s < kSlots; s++) {
        slots_.emplace_back(new Slot(place));
        Slot& slot = *slots_.back();
        if (!host_pinned_) {
            slot.pinned = PinnedArray<uint8_t>(place, c * hrow);
        }
        slot.rows = PlaceArray<uint8_t>(place, c * (convert_ ? hrow : size_t(dp) * esz));
        if (!convert_ && dp != d) {
            place_zero(place, slot.rows.get(), slot.rows.size()); // copies write d columns
        }
    }
    if (convert_) {
        typed_ = PlaceArray<uint8_t>(place, c * size_t(dp) * esz);
        if (dp != d) {
            packed_ = PlaceArray<uint8_t>(place, c * size_t(d) * esz);
            place_zero(place, typed_.get(), typed_.size());
        }
    }
    // the buffers come from the place's stream-ordered pool: ready for the
    // copy streams once that stream has reached this point
    place_sync(place);
}

ChunkStream::~ChunkStream() {
    // copies still in flight (the next pass's prefetch) write into buffers
    // about to be freed: wait for them
    for (auto& slot : slots_) {
        if (slot->pending) {
            try {
                slot->copied.sync();
            } catch (...) {
            }
        }
    }
}

void ChunkStream::issue() {
    Slot& slot = *slots_[size_t(issued_ % kSlots)];
    const int64_t g0 = chunk_begin(issued_ % chunks_);
    const int64_t m = std::min(chunk_rows_, rows_ - g0);
    const size_t hrow = size_t(d_) * dtype_size(host_dtype_);
    const uint8_t* src = host_x_ + size_t(g0) * hrow;
    if (!host_pinned_) {
        if (slot.pending) {
            slot.copied.sync(); // the pinned buffer's last chunk has left
            slot.pending = false;
        }
        uint8_t* out = slot.pinned.get();
        // pageable (possibly memory-mapped) rows: every host thread copies,
        // so the fill keeps up with the bus
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < m; r++) {
            std::memcpy(out + size_t(r) * hrow, src + size_t(r) * hrow, hrow);
        }
        src = out;
    }
    const Place& copy = slot.copy.place();
    slot.consumed.wait(copy); // the place is done with the chunk two before
    const size_t pitch = convert_ ? hrow : size_t(dp_) * dtype_size(compute_dtype_);
    copy_rows_async(copy, slot.rows.get(), pitch, src, hrow, size_t(m), hrow);
    slot.copied.record(copy);
    slot.pending = true;
    issued_++;
}

const void* ChunkStream::next(int64_t& g0, int64_t& m) {
    FAISS_THROW_IF_NOT_MSG(!in_use_, "ChunkStream: next() before done()");
    while (issued_ < used_ + kSlots) {
        issue();
    }
    Slot& slot = *slots_[size_t(used_ % kSlots)];
    g0 = chunk_begin(used_ % chunks_);
    m = std::min(chunk_rows_, rows_ - g0);
    slot.copied.wait(place_);
    in_use_ = true;
    if (!convert_) {
        return slot.rows.get();
    }
    // fp32 on the bus, converted on the place (into the padded rows)
    void* out = dp_ != d_ ? packed_.get() : typed_.get();
    kernels::convert_from_float(place_, reinterpret_cast<const float*>(slot.rows.get()),
                                compute_dtype_, m * d_, out);
    if (dp_ != d_) {
        kernels::pad_rows(place_, packed_.get(), compute_dtype_, m, d_, dp_, typed_.get());
    }
    slot.consumed.record(place_); // the slot is free once converted
    return typed_.get();
}

void ChunkStream::done() {
    FAISS_THROW_IF_NOT_MSG(in_use_, "ChunkStream: done() without next()");
    Slot& slot = *slots_[size_t(used_ % kSlots)];
    if (!convert_) {
        slot.consumed.record(place_);
    }
    in_use_ = false;
    used_++;
    while (issued_ < used_ + kSlots) {
        issue();
    }
}

} // namespace flashkmeans
