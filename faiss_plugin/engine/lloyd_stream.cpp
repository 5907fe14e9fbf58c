// The Lloyd engine's streamed pass (lloyd.h, stream_plan.h): the points of
// all problems walked chunk after chunk in index order, each chunk assigned
// and added to the running sums (UpdateArgs::accumulate) before the next.
// On the CPU, where the update continues each cluster's float sum in index
// order and the assignment runs in the blocks of one call over all points,
// a streamed run equals a resident one bit for bit, whatever the chunk.
#include "lloyd.h"

#include "chunk_stream.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

namespace flashkmeans {

using namespace kernels;

StreamSizes Lloyd::stream_sizes(bool in_place) const {
    const int64_t n = data_.n, d = data_.d, dp = dp_, k = cfg_.k, B = data_.batch;
    const bool cuda = place_.backend == Backend::CUDA;
    const size_t esz = dtype_size(cfg_.compute_dtype);
    StreamSizes s;
    s.n = n;
    s.batch = B;
    // per point: norm, label, distance (and weight); per centroid: the row,
    // its sums (and its 16-bit copy), norm, weight sum and count
    s.fixed_bytes = size_t(n) * B * (3 + (data_.weights ? 1 : 0)) * 4;
    s.fixed_bytes += size_t(k) * dp * B *
                     (2 * sizeof(float) + (cfg_.compute_dtype != DType::Float32 ? esz : 0));
    s.fixed_bytes += size_t(k) * B * 3 * 4;
    if (cfg_.prune) {
        s.fixed_bytes += cuda ? size_t(B) * MovedFilter::bytes(place_, n, k, dp, cfg_.compute_dtype)
                              : Pruner::bytes(n, k, d, B, cfg_.kernel);
    }
    s.fixed_bytes += (size_t(3) * B + (size_t(B) + 1) / 2 +
                      size_t(iteration_stats_scratch(place_, n, k, B))) *
                     sizeof(double);
    s.resident_row_bytes = in_place ? 0 : size_t(dp) * esz;
    s.chunk_row_bytes = cuda ? ChunkStream::bytes_per_row(data_.dtype, cfg_.compute_dtype, d, dp)
                             : size_t(d) * esz;
    const Place place = place_;
    s.workspace = [place, dp, k](int64_t rows, int64_t batch, bool accumulate) {
        return update_workspace_bytes(place, rows, dp, k, batch, accumulate);
    };
    return s;
}

void Lloyd::for_each_chunk(
        const std::function<void(int64_t g0, int64_t m, const void* rows)>& work) {
    const size_t row = size_t(dp_) * dtype_size(cfg_.compute_dtype);
    const int64_t rows = plan_.rows, c = plan_.chunk_rows;
    for (int64_t g0 = 0; g0 < rows; g0 += c) {
        const int64_t m = std::min(c, rows - g0);
        if (g0 < plan_.resident_rows) {
            work(g0, m, static_cast<const uint8_t*>(x_) + size_t(g0) * row);
        } else {
            int64_t s0 = 0, sm = 0;
            const void* x = chunks_->next(s0, sm);
            FAISS_THROW_IF_NOT_MSG(s0 == g0 && sm == m, "streamed chunks out of order");
            work(g0, m, x);
            chunks_->done();
        }
        if (progress_ && plan_.streamed) {
            progress_(g0 + m, rows);
        }
    }
}

void Lloyd::streamed_pass(bool assign, bool update) {
    const int64_t n = data_.n;
    const size_t row = size_t(dp_) * dtype_size(cfg_.compute_dtype);
    std::fill(assigned_end_.begin(), assigned_end_.end(), 0);
    if (assign) { // the moved-centroid filters, a chunk at a time
        for (int64_t b = 0; b < int64_t(filters_.size()); b++) {
            filters_[size_t(b)]->begin(problem_args(b));
        }
    }
    for_each_chunk([&](int64_t g0, int64_t m, const void* rows) {
        // a chunk of the B n rows may hold the end of one problem and the
        // start of the next: one piece per problem
        for (int64_t g = g0; g < g0 + m;) {
            const int64_t b = g / n, i0 = g - b * n;
            const int64_t i1 = std::min(n, i0 + (g0 + m - g));
            const void* x = static_cast<const uint8_t*>(rows) + size_t(g - g0) * row;
            if (assign) {
                assign_piece(b, i0, i1, x);
            }
            if (update) {
                update_piece(b, i0, i1, x);
            }
            g += i1 - i0;
        }
    });
    if (assign && !filters_.empty()) {
        pruned_ = PruneStep();
        for (auto& filter : filters_) {
            add_problem_step(filter->end());
        }
    }
}

void Lloyd::assign_piece(int64_t b, int64_t i0, int64_t i1, const void* x) {
    const int64_t n = data_.n;
    const size_t row = size_t(dp_) * dtype_size(cfg_.compute_dtype);
    int64_t& end = assigned_end_[size_t(b)];
    if (i1 <= end) {
        return; // assigned ahead with an earlier piece's block
    }
    // Rows [end, w1): on the CPU whole blocks of the call over all n points
    // (OpenBLAS rounds by a row's place in its block), which the points read
    // in place allow; on CUDA (block 1) the piece itself.
    const int64_t block = assign_block_rows(place_);
    const int64_t w0 = std::max(end, i0);
    int64_t w1 = i1;
    const void* src = static_cast<const uint8_t*>(x) + size_t(w0 - i0) * row;
    if (block > 1) {
        FAISS_THROW_IF_NOT_MSG(points_complete() && w0 % block == 0,
                               "blocked assignment needs the points in place");
        w1 = std::min(n, (i1 + block - 1) / block * block);
        src = static_cast<const uint8_t*>(x_) + size_t(b * n + w0) * row;
    }
    AssignArgs a = problem_args(b);
    a.x = src;
    a.n = w1 - w0;
    a.call_rows = n;
    a.x_norms += w0;
    a.labels += w0;
    a.distances += w0;
    if (!filters_.empty()) {
        filters_[size_t(b)]->rows(a, w0);
    } else {
        flash_assign(place_, a);
    }
    end = w1;
}

void Lloyd::update_piece(int64_t b, int64_t i0, int64_t i1, const void* x) {
    const int64_t n = data_.n, k = cfg_.k;
    UpdateArgs u = update_args();
    u.x = x;
    u.n = i1 - i0;
    u.batch = 1;
    u.labels += b * n + i0;
    if (u.weights != nullptr) {
        u.weights += b * n + i0;
    }
    u.sums += b * k * dp_;
    u.weight_sums += b * k;
    u.counts += b * k;
    // the problem's first piece starts its sums, the others add to them
    u.accumulate = i0 > 0;
    sort_inverse_update(place_, u);
}

PlaceArray<float> Lloyd::rows_as_assigned(const int64_t* ids, int64_t m) const {
    // the rows from the caller's host array, through the compute dtype (an
    // fp16 run seeds from the rounded points, as a resident one does)
    const int64_t d = data_.d, dp = dp_;
    const size_t hrow = size_t(d) * dtype_size(data_.dtype);
    std::vector<uint8_t> host(size_t(m) * hrow);
    for (int64_t i = 0; i < m; i++) {
        std::memcpy(host.data() + size_t(i) * hrow,
                    static_cast<const uint8_t*>(data_.x) + size_t(ids[i]) * hrow, hrow);
    }
    PlaceArray<uint8_t> raw(place_, host.size()), typed;
    copy_to_place(place_, raw.get(), host.data(), host.size());
    const void* src = raw.get();
    if (data_.dtype != cfg_.compute_dtype) {
        typed = PlaceArray<uint8_t>(place_, size_t(m) * d * dtype_size(cfg_.compute_dtype));
        convert_from_float(place_, reinterpret_cast<const float*>(raw.get()), cfg_.compute_dtype,
                           m * d, typed.get());
        src = typed.get();
    }
    std::vector<int64_t> all(static_cast<size_t>(m));
    std::iota(all.begin(), all.end(), int64_t(0));
    PlaceArray<float> packed(place_, size_t(m) * d), out(place_, size_t(m) * dp);
    gather_rows(place_, src, cfg_.compute_dtype, m, d, all.data(), m, packed.get());
    if (dp != d) {
        place_zero(place_, out.get(), out.size() * sizeof(float));
    }
    copy_rows(place_, out.get(), dp * sizeof(float), packed.get(), d * sizeof(float), size_t(m),
              d * sizeof(float));
    return out;
}

} // namespace flashkmeans
