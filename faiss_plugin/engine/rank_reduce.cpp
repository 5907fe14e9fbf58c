#include "rank_reduce.h"

#include <faiss/impl/FaissAssert.h>

#include <cstring>

namespace flashkmeans {

using kernels::SumType;

namespace {

size_t round8(size_t b) {
    return (b + 7) / 8 * 8;
}

} // namespace

RankReduce::RankReduce(const Place& place, std::shared_ptr<Communicator> comm, int64_t k,
                       int64_t dp, int64_t batch)
        : place_(place), comm_(std::move(comm)), k_(k), dp_(dp), batch_(batch) {
    FAISS_THROW_IF_NOT_MSG(comm_ != nullptr, "RankReduce: null communicator");
    // doubles first, so every segment stays aligned to its type
    packet_bytes_ = round8(sizeof(double) * 3 * batch + sizeof(float) * k * dp * batch +
                           sizeof(float) * k * batch + sizeof(int32_t) * k * batch);
    packet_ = PlaceArray<uint8_t>(place_, packet_bytes_);
    gathered_ = PlaceArray<uint8_t>(place_, packet_bytes_ * size_t(comm_->size()));
    obj_ = PlaceArray<double>(place_, size_t(3) * batch);
    // every byte defined: the padding, and the sums of frozen rows, which
    // the update never writes but the packet carries
    place_zero(place_, packet_.get(), packet_bytes_);
}

void RankReduce::combine(const float* distances, int64_t n, float* sums, float* weight_sums,
                         int32_t* counts, double* scratch) {
    const size_t B = size_t(batch_), k = size_t(k_), dp = size_t(dp_);
    kernels::iteration_stats(place_, distances, n, nullptr, 0, batch_, obj_.get(), scratch);
    struct Segment {
        void* data;
        size_t bytes;
        SumType type;
        int64_t count;
    };
    const Segment segments[] = {
            {obj_.get(), 3 * B * sizeof(double), SumType::Float64, int64_t(3 * B)},
            {sums, k * dp * B * sizeof(float), SumType::Float32, int64_t(k * dp * B)},
            {weight_sums, k * B * sizeof(float), SumType::Float32, int64_t(k * B)},
            {counts, k * B * sizeof(int32_t), SumType::Int32, int64_t(k * B)},
    };
    size_t at = 0;
    for (const Segment& s : segments) {
        copy_within(place_, packet_.get() + at, s.data, s.bytes);
        at += s.bytes;
    }
    comm_->allgather_on(place_, packet_.get(), gathered_.get(), packet_bytes_);
    at = 0;
    for (const Segment& s : segments) {
        kernels::sum_slices(place_, gathered_.get() + at, comm_->size(), packet_bytes_, s.type,
                            s.count, s.data);
        at += s.bytes;
    }
}

void RankReduce::stats(const int32_t* counts, double* stats, double* scratch) {
    kernels::iteration_stats(place_, nullptr, 0, counts, k_, batch_, stats, scratch);
    // the objective, every third double
    copy_rows(place_, stats, 3 * sizeof(double), obj_.get(), 3 * sizeof(double), size_t(batch_),
              sizeof(double));
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
