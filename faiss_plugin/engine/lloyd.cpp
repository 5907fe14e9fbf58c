#include "lloyd.h"

#include <flashkmeans/errors.h>
#include <flashkmeans/memory.h>

#include "chunk_stream.h"
#include "shard.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cinttypes>
#include <limits>
#include <cstring>
#include <string>
#include <vector>

namespace flashkmeans {

using namespace kernels;

namespace {

/// LloydConfig::pipelined where it can apply to a recorded iteration: the
/// post-processing of spherical and int_centroids runs on the host's turn
bool pipelined_config(const LloydConfig& cfg) {
    return cfg.pipelined && !cfg.spherical && !cfg.int_centroids;
}

/// What decides the shape of an iteration's graph (kernels, grids, the
/// update's passes, the pipelined copies): calls that agree on it reuse one
/// kept graph.
std::string graph_key(const Place& place, const LloydData& data, const LloydConfig& cfg) {
    char key[200];
    std::snprintf(key, sizeof(key),
                  "lloyd %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %d %d %d %" PRId64
                  " %d %d",
                  place.device, data.n, data.d, data.batch, cfg.k, int(cfg.compute_dtype),
                  int(cfg.metric), int(cfg.precision), cfg.k_frozen, data.weights != nullptr,
                  int(pipelined_config(cfg)));
    return key;
}

} // namespace

Lloyd::Lloyd(const Place& place, const LloydData& data, const LloydConfig& config)
        : stream_(place),
          place_(stream_.place()),
          data_(data),
          cfg_(config),
          assign_timer_(place_),
          step_graph_(place_, graph_key(place_, data, config)) {
    const int64_t n = data.n, d = data.d, k = config.k, B = data.batch;
    const bool cuda = place_.backend == Backend::CUDA;
    FAISS_THROW_IF_NOT_MSG(cuda || cfg_.compute_dtype == DType::Float32,
                           "dtype float16/bfloat16 is only supported on the CUDA backend");
    FAISS_THROW_IF_NOT_MSG(cuda || !data.x_on_device,
                           "points in device memory need the CUDA backend");
    const size_t esz = dtype_size(cfg_.compute_dtype);
    dp_ = row_elements(place_, d, cfg_.compute_dtype);
    const int64_t dp = dp_;

    // Resident, or streamed in chunks (stream_plan.h): the points are used
    // in place (the caller's host array on the CPU, its device array on
    // CUDA) when they are in the compute dtype with the place's rows; else
    // they are copied to the place, as many as the budget holds.
    const bool in_place =
            (data.x_on_device || !cuda) && data.dtype == cfg_.compute_dtype && dp == d;
    size_t budget = cfg_.memory_budget;
    if (cuda && !data.x_on_device && budget == 0 && cfg_.chunk_rows == 0) {
        // host points, no budget: what the device has free (5% left for the
        // driver and the kernels' launches), so data larger than it streams
        budget = size_t(double(place_free_bytes(place_) + cached_memory_bytes()) * 0.95);
    }
    // points already on the device gain nothing from streaming
    const auto plan = [&] {
        plan_ = data.x_on_device ? plan_stream(stream_sizes(in_place), 0)
                                 : plan_stream(stream_sizes(in_place), budget, cfg_.chunk_rows);
    };
    if (cfg_.comm && cfg_.comm->size() > 1) {
        // a budget too small for this rank's shard fails every rank here,
        // before the exchanges below, so none waits for a rank that threw
        check_on_all_ranks(*cfg_.comm, plan);
    } else {
        plan();
    }
    const int64_t rows = n * B, resident = plan_.resident_rows;

    // Every buffer first: running out of memory fails before any work.
    x_norms_ = PlaceArray<float>(place_, size_t(n) * B);
    if (data.weights) {
        weights_ = PlaceArray<float>(place_, size_t(n) * B);
    }
    centroids_ = PlaceArray<float>(place_, size_t(k) * dp * B);
    c_norms_ = PlaceArray<float>(place_, size_t(k) * B);
    if (cfg_.compute_dtype != DType::Float32) {
        c_typed_ = PlaceArray<uint8_t>(place_, size_t(k) * dp * B * esz);
    }
    sums_ = PlaceArray<float>(place_, size_t(k) * dp * B);
    weight_sums_ = PlaceArray<float>(place_, size_t(k) * B);
    counts_ = PlaceArray<int32_t>(place_, size_t(k) * B);
    stats_ = PlaceArray<double>(place_, size_t(3) * B + (size_t(B) + 1) / 2);
    // the iteration's statistics (two slots when pipelined), or the points'
    // and the centroids' norm sums side by side (check_centroids)
    stats_host_ = PinnedArray<double>(place_, std::max(stats_.size() * (cfg_.pipelined ? 2 : 1),
                                                       size_t(6) * B));
    stats_scratch_ = PlaceArray<double>(place_, size_t(iteration_stats_scratch(place_, n, k, B)));
    labels_ = PlaceArray<int32_t>(place_, size_t(n) * B);
    distances_ = PlaceArray<float>(place_, size_t(n) * B);
    if (dp != d) {
        // the centroid rows' padding stays zero: copies in write d columns
        place_zero(place_, centroids_.get(), centroids_.size() * sizeof(float));
    }
    // The points, uploaded once (or used in place) in the compute dtype:
    // all of them, or the leading `resident` rows when streamed.
    if (in_place) {
        x_ = data.x;
    } else {
        FAISS_THROW_IF_NOT_MSG(data.dtype == cfg_.compute_dtype || data.dtype == DType::Float32,
                               "points must be float32 to be converted to another dtype");
        x_owned_ = PlaceArray<uint8_t>(place_, size_t(resident) * dp * esz);
        if (data.dtype == cfg_.compute_dtype && data.x_on_device) {
            pad_rows(place_, data.x, cfg_.compute_dtype, resident, d, dp, x_owned_.get());
        } else if (data.dtype == cfg_.compute_dtype) {
            if (dp != d) {
                place_zero(place_, x_owned_.get(), x_owned_.size());
            }
            upload_rows(place_, x_owned_.get(), dp * esz, data.x, d * esz, size_t(resident),
                        d * esz);
        } else {
            convert_rows(data.x, data.x_on_device, size_t(resident));
        }
        x_ = x_owned_.get();
        if (resident < rows) {
            chunks_.reset(new ChunkStream(place_, data.x, data.dtype, cfg_.compute_dtype, d, dp,
                                          rows, resident, plan_.chunk_rows));
        }
    }

    const size_t ws = plan_.streamed
                              ? update_workspace_bytes(place_, plan_.chunk_rows, dp, k, 1, true)
                              : update_workspace_bytes(place_, n, dp, k, B);
    workspace_ = PlaceArray<uint8_t>(place_, ws);
    if (cfg_.prune && cuda) {
        // the moved-centroid filter (moved_filter.h), one per problem; with
        // several ranks each filters its own points (the centroids are the same
        // bits on every rank)
        for (int64_t b = 0; b < B; b++) {
            filters_.emplace_back(
                    new MovedFilter(place_, cfg_.metric, n, k, dp, cfg_.compute_dtype));
        }
    } else if (cfg_.prune) {
        pruner_.reset(new Pruner(cfg_.metric, n, k, d, B, cfg_.kernel));
    }
    assigned_end_.assign(size_t(B), 0);
    n_total_ = n;
    if (cfg_.comm && cfg_.comm->size() > 1) {
        ranks_.reset(new RankReduce(place_, cfg_.comm, k, dp, B, sums_.get(), weight_sums_.get(),
                                    counts_.get()));
        n_total_ = ranks_->sum(n);
    }
    if (pipelines()) {
        centroids_prev_ = PlaceArray<float>(place_, centroids_.size());
        weight_sums_prev_ = PlaceArray<float>(place_, weight_sums_.size());
        for (auto& event : stats_ready_) {
            event.reset(new PlaceEvent(place_));
        }
    }

    for_each_chunk([&](int64_t g0, int64_t m, const void* x) {
        row_norms(place_, x, cfg_.compute_dtype, m, dp, x_norms_.get() + g0, 1);
    });
    queue_norm_sums(x_norms_.get(), n, 0);
    points_check_pending_ = true;
    if (ranks_) {
        check_points(); // an exchange: every rank here, at once
    }
    if (data.weights) {
        copy_to_place(place_, weights_.get(), data.weights, size_t(n) * B * sizeof(float));
    }
}

int64_t Lloyd::row_elements(const Place& place, int64_t d, DType compute_dtype) {
    // On CUDA, rows are padded with zeros to a multiple of 16 bytes, once:
    // the Hopper kernels load rows by TMA, which needs 16-byte row strides.
    // 16-bit rows of more than 128 elements go to a multiple of 16 elements:
    // iterations on rows of 8 mod 16 elements there ran far slower than at
    // the next multiple of 16 (which kernel loses is not isolated). Zeros add
    // nothing to a norm, a dot product or a sum, so every label and value is
    // the unpadded one; outputs drop the padding again.
    if (place.backend != Backend::CUDA) {
        return d;
    }
    const int64_t esz = int64_t(dtype_size(compute_dtype));
    const int64_t pad_bytes = esz == 2 && d > 128 ? 32 : 16;
    return (d * esz + pad_bytes - 1) / pad_bytes * pad_bytes / esz;
}

Lloyd::~Lloyd() {
    // nothing queued (a pending check's copy into stats_host_, work of a
    // call that threw) outlives the buffers it uses
    try {
        place_sync(place_);
    } catch (...) {
    }
}

void Lloyd::convert_rows(const void* src, bool src_on_device, size_t rows) {
    // fp32 rows into x_owned_ in the compute dtype, converted on the place a
    // chunk at a time: host points cross the bus as fp32 into one staging
    // chunk, never a whole fp32 copy on the device beside the converted one
    const int64_t d = data_.d, dp = dp_;
    const size_t esz = dtype_size(cfg_.compute_dtype), in_row = size_t(d) * sizeof(float);
    size_t chunk = std::min(rows, std::max<size_t>(1, (size_t(64) << 20) / in_row));
    if (plan_.streamed) {
        // within the budget: no larger than the chunk the staging slots hold
        chunk = std::min(chunk, size_t(plan_.chunk_rows));
    }
    PlaceArray<float> staged(place_, src_on_device ? 0 : chunk * d);
    PlaceArray<uint8_t> packed(place_, dp != d ? chunk * d * esz : 0);
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        const size_t m = std::min(chunk, rows - r0);
        const float* in = static_cast<const float*>(src) + r0 * d;
        if (!src_on_device) {
            upload_rows(place_, staged.get(), in_row, in, in_row, m, in_row);
            in = staged.get();
        }
        uint8_t* out = x_owned_.get() + r0 * dp * esz;
        convert_from_float(place_, in, cfg_.compute_dtype, int64_t(m * d), dp != d ? packed.get() : out);
        if (dp != d) {
            pad_rows(place_, packed.get(), cfg_.compute_dtype, int64_t(m), d, dp, out);
        }
    }
}

const void* Lloyd::problem_points(int64_t b) const {
    const size_t bytes = size_t(data_.n) * dp_ * dtype_size(cfg_.compute_dtype);
    return static_cast<const uint8_t*>(x_) + size_t(b) * bytes;
}

void Lloyd::gather_points(int64_t b, const int64_t* ids, int64_t m, float* out) const {
    check_points(); // the rows come to the host: as checked points
    const int64_t n = data_.n, d = data_.d, dp = dp_;
    if (!points_complete()) {
        std::vector<int64_t> flat(ids, ids + m);
        for (int64_t& id : flat) {
            id += b * n;
        }
        PlaceArray<float> tmp = rows_as_assigned(flat.data(), m);
        copy_rows(place_, out, d * sizeof(float), tmp.get(), dp * sizeof(float), size_t(m),
                  d * sizeof(float));
        return;
    }
    const void* xb = problem_points(b);
    if (place_.backend == Backend::CPU) {
        gather_rows(place_, xb, cfg_.compute_dtype, n, d, ids, m, out);
        return;
    }
    PlaceArray<float> tmp(place_, size_t(m) * dp);
    gather_rows(place_, xb, cfg_.compute_dtype, n, dp, ids, m, tmp.get());
    copy_rows(place_, out, d * sizeof(float), tmp.get(), dp * sizeof(float), size_t(m),
              d * sizeof(float));
}

void Lloyd::kmeanspp_init(int64_t b, int64_t k, int64_t n_given, const double* draws,
                          float* centroids) const {
    check_points();
    const int64_t n = data_.n, d = data_.d, dp = dp_;
    FAISS_THROW_IF_NOT_MSG(
            points_complete(),
            "k-means++ seeding needs every point on the device, and this run streams "
            "them (memory_budget): raise the budget or use random seeding");
    const size_t row = d * sizeof(float), prow = dp * sizeof(float);
    PlaceArray<float> rows(place_, size_t(k) * dp);
    if (dp != d) {
        place_zero(place_, rows.get(), rows.size() * sizeof(float));
    }
    copy_rows(place_, rows.get(), prow, centroids, row, size_t(n_given), row);
    KMeansPPArgs a;
    a.x = problem_points(b);
    a.dtype = cfg_.compute_dtype;
    a.n = n;
    a.d = dp;
    a.k = k;
    a.n_given = n_given;
    a.draws = draws;
    a.centroids = rows.get();
    kernels::kmeanspp_init(place_, a);
    copy_rows(place_, centroids + n_given * d, row, rows.get() + n_given * dp, prow,
              size_t(k - n_given), row);
}

void Lloyd::set_centroids(const float* c) {
    const size_t row = data_.d * sizeof(float);
    copy_rows_async(place_, centroids_.get(), dp_ * sizeof(float), c, row,
                    size_t(cfg_.k) * data_.batch, row);
    prepared_ = false;
    if (pruner_) {
        pruner_->reset();
    }
    for (auto& filter : filters_) {
        filter->reset();
    }
}

void Lloyd::set_centroids_from_points(const std::vector<int64_t>& rows) {
    const int64_t n = data_.n, k = cfg_.k, B = data_.batch;
    FAISS_THROW_IF_NOT_MSG(int64_t(rows.size()) == k, "set_centroids_from_points: need k rows");
    // the B problems' points as one (B n) x d matrix: problem b's row r is b n + r
    std::vector<int64_t> ids(size_t(B * k));
    for (int64_t b = 0; b < B; b++) {
        for (int64_t j = 0; j < k; j++) {
            ids[size_t(b * k + j)] = b * n + rows[size_t(j)];
        }
    }
    if (points_complete()) {
        gather_rows(place_, x_, cfg_.compute_dtype, B * n, dp_, ids.data(), B * k,
                    centroids_.get());
    } else {
        PlaceArray<float> tmp = rows_as_assigned(ids.data(), B * k);
        copy_within(place_, centroids_.get(), tmp.get(), tmp.size() * sizeof(float));
    }
    prepared_ = false;
    if (pruner_) {
        pruner_->reset();
    }
    for (auto& filter : filters_) {
        filter->reset();
    }
}

void Lloyd::get_centroids(float* out) const {
    queue_get_centroids(out);
    place_sync(place_);
}

void Lloyd::queue_get_centroids(float* out) const {
    const size_t row = data_.d * sizeof(float);
    copy_rows_async(place_, out, row, centroids_.get(), dp_ * sizeof(float),
                    size_t(cfg_.k) * data_.batch, row);
}

void Lloyd::prepare_centroids() {
    const int64_t k = cfg_.k, d = dp_, B = data_.batch;
    const void* c = centroids_.get();
    if (cfg_.compute_dtype != DType::Float32) {
        convert_from_float(place_, centroids_.get(), cfg_.compute_dtype, k * d * B, c_typed_.get());
        c = c_typed_.get();
    }
    // norms of the centroids as the assignment sees them (rounded if fp16)
    row_norms(place_, c, cfg_.compute_dtype, k, d, c_norms_.get(), B);
    prepared_ = true;
}

void Lloyd::assign() {
    check_points();
    if (!prepared_) {
        prepare_centroids();
    }
    if (plan_.streamed && !pruner_) {
        streamed_pass(true, false); // the filter's pieces, if any
    } else {
        run_assign(); // the pruned assignment reads the points in place
    }
}

AssignArgs Lloyd::assign_args() const {
    AssignArgs a;
    a.x = x_;
    a.dtype = cfg_.compute_dtype;
    a.n = data_.n;
    a.d = dp_;
    a.centroids = cfg_.compute_dtype == DType::Float32 ? static_cast<const void*>(centroids_.get())
                                                       : c_typed_.get();
    a.centroid_norms = c_norms_.get();
    a.k = cfg_.k;
    a.batch = data_.batch;
    a.metric = cfg_.metric;
    a.precision = cfg_.precision;
    a.kernel = cfg_.kernel;
    a.x_norms = x_norms_.get();
    a.labels = labels_.get();
    a.distances = distances_.get();
    return a;
}

AssignArgs Lloyd::problem_args(int64_t b) const {
    const int64_t n = data_.n, k = cfg_.k;
    AssignArgs a = assign_args();
    a.x = static_cast<const uint8_t*>(a.x) + size_t(b * n * dp_) * dtype_size(cfg_.compute_dtype);
    a.n = n;
    a.batch = 1;
    a.centroids = static_cast<const uint8_t*>(a.centroids) +
                  size_t(b * k * dp_) * dtype_size(cfg_.compute_dtype);
    a.centroid_norms += b * k;
    a.x_norms += b * n;
    a.labels += b * n;
    a.distances += b * n;
    return a;
}

void Lloyd::add_problem_step(const PruneStep& step) {
    pruned_.skipped.insert(pruned_.skipped.end(), step.skipped.begin(), step.skipped.end());
    pruned_.near_ties.insert(pruned_.near_ties.end(), step.near_ties.begin(), step.near_ties.end());
    pruned_.plain.insert(pruned_.plain.end(), step.plain.begin(), step.plain.end());
}

UpdateArgs Lloyd::update_args() const {
    UpdateArgs u;
    u.x = x_;
    u.dtype = cfg_.compute_dtype;
    u.n = data_.n;
    u.d = dp_;
    u.labels = labels_.get();
    u.weights = weights_.get();
    u.k = cfg_.k;
    u.k_begin = cfg_.k_frozen;
    u.batch = data_.batch;
    u.sums = sums_.get();
    u.weight_sums = weight_sums_.get();
    u.counts = counts_.get();
    u.workspace = workspace_.get();
    u.workspace_bytes = workspace_.size();
    return u;
}

void Lloyd::run_assign() {
    if (pruner_) {
        pruned_ = pruner_->assign(assign_args());
    } else if (!filters_.empty()) {
        pruned_ = PruneStep();
        for (int64_t b = 0; b < data_.batch; b++) {
            add_problem_step(filters_[size_t(b)]->assign(problem_args(b)));
        }
    } else {
        flash_assign(place_, assign_args());
    }
}

void Lloyd::assign_and_update() {
    // pipelined, the next iteration would record the timer's events again
    // before the host reads them
    const bool timed = !pipelines();
    if (timed) {
        assign_timer_.start();
    }
    if (plan_.streamed) {
        if (pruner_) {
            run_assign(); // the CPU reads the points in place: only the update streams
        }
        streamed_pass(!pruner_, true);
        assign_timer_.stop();
        return;
    }
    run_assign();
    if (timed) {
        assign_timer_.stop();
    }
    sort_inverse_update(place_, update_args());
}

void Lloyd::finalize_and_count() {
    const int64_t n = data_.n, k = cfg_.k, B = data_.batch;
    if (ranks_) {
        // every rank's partial sums, combined in rank order
        ranks_->combine(distances_.get(), n, stats_scratch_.get());
    }
    FinalizeArgs f;
    f.sums = sums_.get();
    f.weight_sums = weight_sums_.get();
    f.k = k;
    f.d = dp_;
    f.k_begin = cfg_.k_frozen;
    f.batch = B;
    f.centroids = centroids_.get();
    f.n_empty = n_empty();
    // the next assignment's inputs, in the same pass
    f.typed_dtype = cfg_.compute_dtype;
    f.typed = cfg_.compute_dtype == DType::Float32 ? nullptr : c_typed_.get();
    f.norms = c_norms_.get();
    finalize_centroids(place_, f);

    if (ranks_) {
        ranks_->stats(counts_.get(), stats_.get(), stats_scratch_.get());
    } else {
        iteration_stats(place_, distances_.get(), n, counts_.get(), k, B, stats_.get(),
                        stats_scratch_.get());
    }
}

bool Lloyd::pipelines() const {
    return pipelined_config(cfg_) && place_.backend == Backend::CUDA && !plan_.streamed &&
           !ranks_ && !pruner_ && filters_.empty();
}

void Lloyd::launch_iteration(int slot) {
    check_points();
    if (!prepared_) {
        prepare_centroids(); // first iteration, or the centroids moved outside finalize
    }
    const bool pipelined = pipelines();
    const size_t stats_bytes = stats_.size() * sizeof(double);
    // Same kernels on the same buffers every iteration: recorded once as a
    // graph on CUDA (the splits and post-processing depend on what the host
    // reads, so they stay outside). A streamed pass has host work between
    // its kernels (the staging), and across ranks the partial sums are
    // combined between the update and finalize (RankReduce), which an MPI
    // exchange cannot be recorded into, and the moved-centroid filter sizes
    // its launches by counts it reads back: these run as they come.
    const auto work = [&] {
        if (pipelined) {
            // what an undone iteration restores (iterate_many)
            copy_within_async(place_, centroids_prev_.get(), centroids_.get(),
                              centroids_.size() * sizeof(float));
            copy_within_async(place_, weight_sums_prev_.get(), weight_sums_.get(),
                              weight_sums_.size() * sizeof(float));
        }
        assign_and_update();
        finalize_and_count();
        if (!pipelined) {
            // the statistics and the empty-cluster counts behind them, to
            // pinned memory in stream order (part of the graph)
            copy_to_pinned(place_, stats_host_.get(), stats_.get(), stats_bytes);
        }
    };
    if (plan_.streamed || ranks_ || !filters_.empty()) {
        work();
    } else {
        step_graph_.run([&] { work(); });
    }
    if (pipelined) {
        // outside the graph: each slot has its own destination and event
        copy_to_pinned(place_, stats_host_.get() + size_t(slot) * stats_.size(), stats_.get(),
                       stats_bytes);
        stats_ready_[slot]->record(place_);
    }
}

LloydStep Lloyd::iterate() {
    launch_iteration(0);
    // The one host round trip of the iteration: wait for all of the above.
    place_sync(place_);
    std::vector<int64_t> with_empty;
    LloydStep step = read_step(stats_host_.get(), with_empty);
    finish_step(step, with_empty, weight_sums_.get());
    return step;
}

void Lloyd::iterate_many(int count, const std::function<void(int, const LloydStep&)>& each) {
    if (!pipelines()) {
        for (int i = 0; i < count; i++) {
            each(i, iterate());
        }
        return;
    }
    try {
        if (count > 0) {
            launch_iteration(0);
        }
        for (int i = 0; i < count; i++) {
            if (i + 1 < count) {
                launch_iteration((i + 1) % 2); // queued before the host waits for i
            }
            stats_ready_[i % 2]->sync();
            std::vector<int64_t> with_empty;
            LloydStep step =
                    read_step(stats_host_.get() + size_t(i % 2) * stats_.size(), with_empty);
            if (!with_empty.empty() && i + 1 < count) {
                // iteration i + 1 started from centroids that needed splits:
                // undo it, split, run it again
                place_sync(place_);
                copy_within(place_, centroids_.get(), centroids_prev_.get(),
                            centroids_.size() * sizeof(float));
                prepared_ = false;
                finish_step(step, with_empty, weight_sums_prev_.get());
                launch_iteration((i + 1) % 2);
            } else {
                finish_step(step, with_empty, weight_sums_.get());
            }
            each(i, step);
        }
    } catch (...) {
        place_sync(place_); // nothing queued outlives the buffers it uses
        throw;
    }
}

LloydStep Lloyd::read_step(const double* stats, std::vector<int64_t>& with_empty) const {
    const int64_t k = cfg_.k, B = data_.batch;
    LloydStep step;
    std::vector<int32_t> n_empty(B);
    std::memcpy(n_empty.data(), stats + 3 * B, size_t(B) * sizeof(int32_t));
    step.seconds_assign = pipelines() ? 0 : assign_timer_.seconds();
    step.skipped.assign(B, 0.0);
    step.near_ties.assign(B, 0);
    if (pruner_ || !filters_.empty()) {
        step.skipped = pruned_.skipped;
        step.near_ties = pruned_.near_ties;
    }
    step.obj.assign(B, 0.0);
    step.nsplit.assign(B, 0);
    step.imbalance.assign(B, 0.0);
    with_empty.clear();
    for (int64_t b = 0; b < B; b++) {
        step.obj[b] = stats[3 * b];
        // FAISS's imbalance factor: k * sum(h^2) / n^2 over unweighted sizes
        const double tot = stats[3 * b + 1], uf = stats[3 * b + 2];
        step.imbalance[b] = uf * k / (tot * tot);
        if (n_empty[b] != 0) {
            with_empty.push_back(b);
        }
    }
    return step;
}

void Lloyd::finish_step(LloydStep& step, const std::vector<int64_t>& with_empty,
                        const float* weight_sums) {
    if (!with_empty.empty()) {
        split_empty(with_empty, weight_sums, step);
        prepared_ = false;
    }
    if (cfg_.spherical || cfg_.int_centroids) {
        // post-processing also touches frozen rows, as FAISS does
        postprocess_centroids(place_, centroids_.get(), cfg_.k, dp_, cfg_.spherical,
                              cfg_.int_centroids, data_.batch);
        prepared_ = false;
    }
}

void Lloyd::split_empty(const std::vector<int64_t>& problems, const float* weight_sums,
                        LloydStep& step) {
    // FAISS's sequential split runs on the host. Its draws need the weights
    // alone, and the splits touch a few rows: only those move, for all the
    // problems at once (two round trips per iteration whatever the batch).
    const int64_t k = cfg_.k, d = dp_, rows_total = data_.batch * k;
    std::vector<float> w(static_cast<size_t>(rows_total));
    copy_to_host(place_, w.data(), weight_sums, w.size() * sizeof(float));
    std::vector<std::vector<ClusterSplit>> plans;
    std::vector<int64_t> ids;    // touched rows of the batch x k centroids
    std::vector<size_t> first;   // where each problem's rows start in ids
    for (int64_t b : problems) {
        std::vector<ClusterSplit> splits =
                plan_cluster_splits(k, n_total_, cfg_.k_frozen, w.data() + size_t(b) * k);
        step.nsplit[b] = int(splits.size());
        first.push_back(ids.size());
        for (int64_t id : renumber_touched_rows(splits)) {
            ids.push_back(b * k + id);
        }
        plans.push_back(std::move(splits));
    }
    const int64_t m = int64_t(ids.size());
    if (m == 0) {
        return;
    }
    PlaceArray<float> block(place_, size_t(m) * d);
    std::vector<float> rows(size_t(m) * d);
    gather_rows(place_, centroids_.get(), DType::Float32, rows_total, d, ids.data(), m, block.get());
    copy_to_host(place_, rows.data(), block.get(), rows.size() * sizeof(float));
    for (size_t i = 0; i < plans.size(); i++) {
        apply_cluster_splits(d, plans[i], rows.data() + first[i] * d);
    }
    copy_to_place(place_, block.get(), rows.data(), rows.size() * sizeof(float));
    scatter_rows(place_, block.get(), m, d, ids.data(), rows_total, centroids_.get());
}

std::vector<int32_t> Lloyd::labels() const {
    std::vector<int32_t> out(labels_.size());
    copy_to_host(place_, out.data(), labels_.get(), out.size() * sizeof(int32_t));
    return out;
}

} // namespace flashkmeans
