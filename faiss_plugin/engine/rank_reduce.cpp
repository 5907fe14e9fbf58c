#include "rank_reduce.h"

#include <flashkmeans/variants.h>

#include <faiss/impl/FaissAssert.h>

#include <cstring>
#include <string>

namespace flashkmeans {

using kernels::SumType;

namespace {

size_t round8(size_t b) {
    return (b + 7) / 8 * 8;
}

} // namespace

RankExchange rank_exchange_rule(int ranks, size_t packet_bytes) {
    const char* v = kernels::default_variants().rank_exchange;
    if (v != nullptr && *v && std::strcmp(v, "auto") != 0 && std::strcmp(v, "default") != 0) {
        if (std::strcmp(v, "allgather") == 0) {
            return RankExchange::AllGather;
        }
        if (std::strcmp(v, "reduce_scatter") == 0) {
            return RankExchange::ReduceScatter;
        }
        throw KernelError(std::string("flashkmeans: unknown rank_exchange variant '") + v +
                          "' (allgather, reduce_scatter)");
    }
    // The all-gather receives (R - 1)(1 - 2 / R) P bytes more than the
    // reduce-scatter, which pays a second collective instead: about 20 us x
    // 360 GB/s = 7 MB of NVLink transfer, 40 us x 45 GB/s = 1.8 MB across
    // nodes. So the all-gather while those extra bytes stay under 4 MiB
    // (always for 2 ranks: no extra bytes).
    const double extra = double(ranks - 1) * (1.0 - 2.0 / ranks) * double(packet_bytes);
    return extra <= double(size_t(4) << 20) ? RankExchange::AllGather : RankExchange::ReduceScatter;
}

RankReduce::RankReduce(const Place& place, std::shared_ptr<Communicator> comm, int64_t k,
                       int64_t dp, int64_t batch, float* sums, float* weight_sums, int32_t* counts)
        : place_(place), comm_(std::move(comm)), k_(k), dp_(dp), batch_(batch) {
    FAISS_THROW_IF_NOT_MSG(comm_ != nullptr, "RankReduce: null communicator");
    const int64_t R = comm_->size(), B = batch;
    obj_ = PlaceArray<double>(place_, size_t(3) * B);
    // doubles first; every segment starts at a multiple of 8 bytes
    segments_ = {
            {obj_.get(), sizeof(double), SumType::Float64, 3 * B, 0, 0},
            {sums, sizeof(float), SumType::Float32, k * dp * B, 0, 0},
            {weight_sums, sizeof(float), SumType::Float32, k * B, 0, 0},
            {counts, sizeof(int32_t), SumType::Int32, k * B, 0, 0},
    };
    size_t packet = 0, block = 0;
    for (Segment& s : segments_) {
        packet += round8(size_t(s.count) * s.elem);
        s.chunk = (s.count + R - 1) / R;
        block += round8(size_t(s.chunk) * s.elem);
    }
    exchange_ = rank_exchange_rule(int(R), packet);
    unit_bytes_ = exchange_ == RankExchange::AllGather ? packet : block;
    size_t at = 0;
    for (Segment& s : segments_) {
        s.at = at;
        at += round8(size_t(exchange_ == RankExchange::AllGather ? s.count : s.chunk) * s.elem);
    }
    const size_t sent = exchange_ == RankExchange::AllGather ? unit_bytes_ : unit_bytes_ * R;
    send_ = PlaceArray<uint8_t>(place_, sent);
    received_ = PlaceArray<uint8_t>(place_, unit_bytes_ * size_t(R));
    if (exchange_ == RankExchange::ReduceScatter) {
        mine_ = PlaceArray<uint8_t>(place_, unit_bytes_);
    }
    // the padding is never written: zero once, so every byte sent is defined
    place_zero(place_, send_.get(), sent);
    place_zero(place_, sums, size_t(k * dp * B) * sizeof(float));
    place_zero(place_, weight_sums, size_t(k * B) * sizeof(float));
}

void RankReduce::combine(const float* distances, int64_t n, double* scratch) {
    kernels::iteration_stats(place_, distances, n, nullptr, 0, batch_, obj_.get(), scratch);
    if (exchange_ == RankExchange::AllGather) {
        all_gather();
    } else {
        reduce_scatter();
    }
}

void RankReduce::all_gather() {
    const int64_t R = comm_->size();
    uint8_t* packet = send_.get();
    for (const Segment& s : segments_) {
        const size_t bytes = size_t(s.count) * s.elem;
        copy_rows_async(place_, packet + s.at, bytes, s.data, bytes, 1, bytes);
    }
    comm_->allgather_on(place_, packet, received_.get(), unit_bytes_);
    for (const Segment& s : segments_) {
        kernels::sum_slices(place_, received_.get() + s.at, R, unit_bytes_, s.type, s.count,
                            s.data);
    }
}

void RankReduce::reduce_scatter() {
    // block r of the send buffer: slice r (values [r chunk, (r + 1) chunk))
    // of every segment, for rank r to add up
    const int64_t R = comm_->size();
    const size_t Bk = unit_bytes_;
    for (const Segment& s : segments_) {
        const size_t row = size_t(s.chunk) * s.elem;
        const int64_t full = s.count / s.chunk, rest = s.count - full * s.chunk;
        uint8_t* src = static_cast<uint8_t*>(s.data);
        copy_rows_async(place_, send_.get() + s.at, Bk, src, row, size_t(full), row);
        copy_rows_async(place_, send_.get() + size_t(full) * Bk + s.at, Bk,
                        src + size_t(full) * row, row, rest > 0 ? 1 : 0, size_t(rest) * s.elem);
    }
    comm_->alltoall_on(place_, send_.get(), received_.get(), Bk);
    for (const Segment& s : segments_) {
        kernels::sum_slices(place_, received_.get() + s.at, R, Bk, s.type, s.chunk,
                            mine_.get() + s.at);
    }
    comm_->allgather_on(place_, mine_.get(), received_.get(), Bk);
    for (const Segment& s : segments_) {
        const size_t row = size_t(s.chunk) * s.elem;
        const int64_t full = s.count / s.chunk, rest = s.count - full * s.chunk;
        uint8_t* dst = static_cast<uint8_t*>(s.data);
        copy_rows_async(place_, dst, row, received_.get() + s.at, Bk, size_t(full), row);
        copy_rows_async(place_, dst + size_t(full) * row, row,
                        received_.get() + size_t(full) * Bk + s.at, Bk, rest > 0 ? 1 : 0,
                        size_t(rest) * s.elem);
    }
}

void RankReduce::stats(const int32_t* counts, double* stats, double* scratch) {
    kernels::iteration_stats(place_, nullptr, 0, counts, k_, batch_, stats, scratch);
    // the objective, every third double
    copy_rows_async(place_, stats, 3 * sizeof(double), obj_.get(), 3 * sizeof(double),
                    size_t(batch_), sizeof(double));
}

std::vector<double> RankReduce::sum(const std::vector<double>& mine) const {
    const size_t m = mine.size(), R = size_t(comm_->size());
    std::vector<double> all(m * R), out(m);
    comm_->allgather(mine.data(), all.data(), m * sizeof(double));
    Place host;
    host.backend = Backend::CPU;
    kernels::sum_slices(host, all.data(), int64_t(R), m * sizeof(double), SumType::Float64,
                        int64_t(m), out.data());
    return out;
}

int64_t RankReduce::sum(int64_t mine) const {
    std::vector<int64_t> all(size_t(comm_->size()));
    comm_->allgather(&mine, all.data(), sizeof(mine));
    int64_t s = 0;
    for (int64_t v : all) {
        s += v;
    }
    return s;
}

} // namespace flashkmeans
