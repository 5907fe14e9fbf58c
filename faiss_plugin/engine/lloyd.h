// The Lloyd engine: one training loop over the kernels, the same code for the
// CPU and CUDA backends (they differ only in the Place the kernels run on and
// in device_memory.h). It owns the points (uploaded once), the centroids, the
// labels and the sums for the whole run, and syncs with the host once per
// iteration, at its end (objective, cluster-size sums and empty clusters of
// every problem in one read), unless clusters went empty and must be split.
// On CUDA an iteration's kernels, from the assignment to the statistics, run
// as one CUDA graph (PlaceGraph): the small rows are bound by kernel launches.
// Points that do not fit the memory budget are streamed (stream_plan.h): each
// pass walks them in chunks (lloyd_stream.cpp), the update accumulating
// chunk after chunk in index order.
#pragma once

#include "device_memory.h"
#include "moved_filter.h"
#include "prune.h"
#include "rank_reduce.h"
#include "stream_plan.h"

#include <flashkmeans/kernels.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flashkmeans {

/// The points of B independent problems of n x d each, and their weights.
/// Throws unless every given centroid is finite and its squared norm fits
/// float32 distances (<= FLT_MAX / 4), naming the first that does not.
void check_given_centroids(const float* c, int64_t m, int64_t d, const char* what);

struct LloydData {
    const void* x = nullptr;
    DType dtype = DType::Float32;  ///< dtype of `x` as given
    bool x_on_device = false;      ///< `x` is already device memory (used in place)
    int64_t n = 0;
    int64_t d = 0;
    int64_t batch = 1;
    const float* weights = nullptr; ///< host, n * batch, optional
};

struct LloydConfig {
    int64_t k = 0;
    Metric metric = Metric::L2;
    DType compute_dtype = DType::Float32; ///< dtype the points are used in
    Precision precision = Precision::Exact;
    bool spherical = false;
    bool int_centroids = false;
    int64_t k_frozen = 0; ///< the first k_frozen centroids never move
    /// bytes the run may hold on the place (Options::memory_budget); points
    /// beyond it are streamed. 0: no bound on the CPU; on CUDA, host points
    /// are streamed when they do not fit the device's free memory
    size_t memory_budget = 0;
    /// tests, benchmarks: stream host points in chunks of this many points
    /// whatever the budget, with the resident rows a budget leaves (none
    /// without one, unless used in place); 0: the budget decides
    int64_t chunk_rows = 0;
    /// Options::prune: skip the assignment of points whose label the bounds
    /// prove (prune.h; CPU backend)
    bool prune = false;
    /// the CPU assignment kernel (resolve_cpu_kernel): Auto or Fused
    kernels::AssignKernel kernel = kernels::AssignKernel::Auto;
    /// iterate_many() queues iteration i + 1 before the host reads iteration
    /// i (CUDA graphs, resident points, one rank, neither spherical nor
    /// int_centroids; else it iterates one by one). Each iteration then first
    /// keeps a copy of the centroids and weight sums it starts from, and does
    /// not time its assignment (LloydStep::seconds_assign stays 0).
    bool pipelined = false;
    /// The ranks of a data-parallel run, each with its own shard of the
    /// points (null or one rank: this process alone). Every rank must build
    /// the engine and call iterate() the same number of times.
    std::shared_ptr<Communicator> comm;
};

class ChunkStream;

/// What one iteration reports, per problem of the batch.
struct LloydStep {
    std::vector<double> obj;       ///< sum of distances at assignment time
    std::vector<int> nsplit;       ///< empty clusters split
    std::vector<double> imbalance; ///< FAISS's imbalance factor
    /// time in the assignment (device time on CUDA); streamed, the whole
    /// pass over the chunks (assignment, update and the copies it waits for)
    double seconds_assign = 0;
    /// with LloydConfig::prune (else 0): the share of the assignment's work
    /// skipped, and the survivors whose label an unpruned assignment might
    /// have rounded the other way (PruneStep)
    std::vector<double> skipped;
    std::vector<int64_t> near_ties;
};

class Lloyd {
   public:
    Lloyd(const Place& place, const LloydData& data, const LloydConfig& config);
    ~Lloyd();

    /// Elements of a point's row on the place: d, padded on CUDA (why: the
    /// constructor). Device points in the compute dtype with rows of d
    /// elements are used in place.
    static int64_t row_elements(const Place& place, int64_t d, DType compute_dtype);

    /// Resident or streamed, and how (StreamPlan::describe).
    const StreamPlan& plan() const {
        return plan_;
    }
    /// Called after each chunk of a streamed pass with the points done so far
    /// (of all problems) and their total: progress within a long iteration.
    void set_progress(std::function<void(int64_t done, int64_t rows)> progress) {
        progress_ = std::move(progress);
    }

    /// Rows `ids` (host, ids[i] < n) of problem b, as fp32, into host memory.
    void gather_points(int64_t b, const int64_t* ids, int64_t m, float* out) const;
    /// k-means++ seeding of rows [n_given, k) of the host k x d `centroids`
    /// from problem b's points, on the backend (kernels::kmeanspp_init):
    /// rows [0, n_given) go up, the new rows come back, once each. `draws`:
    /// k - n_given uniforms in [0, 1), one per new row.
    void kmeanspp_init(int64_t b, int64_t k, int64_t n_given, const double* draws,
                       float* centroids) const;

    /// batch x k x d, host or place memory; the copy is queued on the place's
    /// stream, so `c` must stay as it is until a call that waits for the
    /// place (every call that returns results does)
    void set_centroids(const float* c);
    /// Throws InputError naming the first centroid (`what`: the caller's
    /// name for them) with NaN or Inf, or too large for float32 distances
    /// (and for points that fail check_points()); on the place, one host sync
    void check_centroids(const char* what);
    /// Centroid row j of problem b = point rows[j] of problem b (host ids,
    /// each < n), for every problem: one gather on the backend, no copy
    /// through the host.
    void set_centroids_from_points(const std::vector<int64_t>& rows);

    /// assign -> objective -> update -> split -> post-process.
    LloydStep iterate();
    /// `count` iterations, `each(i, step)` called after iteration i in
    /// order. With LloydConfig::pipelined, iteration i + 1 is queued before
    /// the host reads iteration i, so the device never waits for the host
    /// between iterations; when iteration i left clusters empty, iteration
    /// i + 1 is undone (its centroids and weight sums restored from the
    /// copies it kept), the clusters are split and it runs again: the same
    /// steps and results as iterate() `count` times.
    void iterate_many(int count, const std::function<void(int, const LloydStep&)>& each);
    /// Only the assignment (labels + distances) with the current centroids.
    void assign();
    /// Labels of the last assignment, batch x n.
    std::vector<int32_t> labels() const;

    /// Backend arrays of the last assignment / current centroids.
    const int32_t* labels_data() const { return labels_.get(); }
    const float* distances_data() const { return distances_.get(); }
    /// The current centroids (batch x k x d) into `out`, host or place memory.
    void get_centroids(float* out) const;
    /// The same copy queued on the place's stream: `out` is written once the
    /// place synced (place_sync), so several results need one wait.
    void queue_get_centroids(float* out) const;

    /// The iteration graph: kept from an earlier call and updated, or why not
    /// (PlaceGraph).
    bool graph_updated() const { return step_graph_.updated(); }
    const std::string& graph_update_refusal() const {
        return step_graph_.update_refusal();
    }

    int64_t n() const { return data_.n; }
    /// Points over all ranks (n() with one rank).
    int64_t n_total() const {
        return n_total_;
    }
    int64_t d() const { return data_.d; }
    const Place& place() const { return place_; }

   private:
    /// Problem b's points on the place, in the compute dtype.
    const void* problem_points(int64_t b) const;
    /// The assignment's view of the centroids (dtype copy + norms), from
    /// centroids_; the iteration's finalize writes them too, so this runs
    /// only when the centroids changed otherwise (start, splits,
    /// post-processing, set_centroids): prepared_ says whether it must.
    void prepare_centroids();
    /// Throws InputError for points with NaN or Inf, or too large for float32
    /// distances, from the sums of their squared norms. The constructor
    /// queues the sums; they are read at the first host sync that needs them
    /// (check_centroids, or before the first work on the points), so a call
    /// checks its points and its given centroids in one round trip. With
    /// several ranks the check is an exchange, made in the constructor.
    void check_points() const;
    void check_points_sums() const;                      // the queued sums, once the place synced
    [[noreturn]] void throw_not_finite(int64_t b) const; // names the point
    /// Per problem, the sum of its `rows` squared norms at `norms` (place
    /// memory, batch x rows), in double, queued to stats_host_ + at (3 per
    /// problem); read_norm_sums(at) reads them once the place synced
    void queue_norm_sums(const float* norms, int64_t rows, size_t at);
    std::vector<double> read_norm_sums(size_t at) const;
    /// "point 12 [of problem b]": the first of problem b's norms that is not
    /// finite or exceeds the float32 bound (`row` names the rows)
    std::string first_bad_row(const float* norms, int64_t rows, int64_t b, const char* row) const;
    void run_assign(); // FlashAssign with the prepared centroids
    /// The arguments every assignment / update call shares (all problems).
    kernels::AssignArgs assign_args() const;
    /// assign_args() of problem b alone (batch 1; its points only when resident)
    kernels::AssignArgs problem_args(int64_t b) const;
    /// appends one problem's PruneStep to pruned_
    void add_problem_step(const PruneStep& step);
    kernels::UpdateArgs update_args() const;
    /// An iteration's work up to the new sums: assignment then update, over
    /// the resident points or chunk after chunk
    void assign_and_update();
    /// New centroids from the sums, and the statistics (stats_).
    void finalize_and_count();
    /// Whether iterate_many() pipelines (LloydConfig::pipelined, where it
    /// applies)
    bool pipelines() const;
    /// Queues one iteration's device work (assignment to statistics); the
    /// statistics go to stats_host_ (slot 0), or to `slot` when pipelined.
    void launch_iteration(int slot);
    /// The step of the statistics at `stats` (stats_host_, read after the
    /// iteration's work is done); problems with empty clusters in `with_empty`
    LloydStep read_step(const double* stats, std::vector<int64_t>& with_empty) const;
    /// The host's part of an iteration after its statistics: the splits of
    /// `with_empty` (planned from `weight_sums`, place memory) and the
    /// post-processing
    void finish_step(LloydStep& step, const std::vector<int64_t>& with_empty,
                     const float* weight_sums);

    // Streaming (lloyd_stream.cpp)
    StreamSizes stream_sizes(bool in_place) const;
    /// Every point of every problem, [g0, g0 + m) of the B n rows at a time,
    /// in order, where the kernels read it (resident or brought by chunks_).
    void for_each_chunk(const std::function<void(int64_t g0, int64_t m, const void* rows)>& work);
    /// One pass over the chunks: the assignment (unless done already), and
    /// the update accumulating.
    void streamed_pass(bool assign, bool update);
    /// Rows [i0, i1) of problem b at x: their assignment (on the CPU in the
    /// blocks of one call over all points, ahead of the chunk when needed)
    void assign_piece(int64_t b, int64_t i0, int64_t i1, const void* x);
    void update_piece(int64_t b, int64_t i0, int64_t i1, const void* x);
    /// Every point on the place (not streamed, or streamed in place)
    bool points_complete() const {
        return plan_.resident_rows == plan_.rows;
    }
    /// Rows `ids` of the B n rows, as the assignment sees them (compute
    /// dtype), in fp32 rows of dp on the place: from the host when streamed
    PlaceArray<float> rows_as_assigned(const int64_t* ids, int64_t m) const;
    /// fp32 points (host or device) into x_owned_ in the compute dtype
    void convert_rows(const void* src, bool src_on_device, size_t rows);
    /// FAISS's split of the empty clusters of `problems` (in order), planned
    /// from `weight_sums` (place memory, batch x k), moving only the centroid
    /// rows the splits touch; nsplit into `step`.
    void split_empty(const std::vector<int64_t>& problems, const float* weight_sums,
                     LloydStep& step);

    PlaceStream stream_; // declared first: the place the rest uses, destroyed last
    Place place_;
    LloydData data_;
    LloydConfig cfg_;
    int64_t dp_ = 0; // row length of points and centroids on the place (d, padded on CUDA)
    StreamPlan plan_;
    std::unique_ptr<ChunkStream> chunks_; // the streamed rows (CUDA, host points)
    std::vector<int64_t> assigned_end_;   // streamed pass: rows assigned, per problem
    std::function<void(int64_t, int64_t)> progress_;
    PlaceArray<uint8_t> x_owned_; // the points on the place, when copied (resident rows)
    const void* x_ = nullptr;     // the points used by the kernels
    PlaceArray<float> x_norms_, weights_, centroids_, c_norms_, sums_, weight_sums_,
            distances_;
    PlaceArray<uint8_t> c_typed_, workspace_;
    bool prepared_ = false; // c_typed_ and c_norms_ are those of centroids_
    mutable bool points_check_pending_ = false; // check_points()
    PlaceArray<int32_t> labels_, counts_;
    /// 3 doubles per problem (kernels::iteration_stats), then one int32 per
    /// problem (the empty-cluster counts): the iteration's one copy to the host
    PlaceArray<double> stats_;
    /// stats_ as the host reads it; pipelined, two slots (iterations alternate)
    PinnedArray<double> stats_host_;
    /// pipelined: the centroids and weight sums each iteration started from,
    /// and when each slot of stats_host_ is written
    PlaceArray<float> centroids_prev_, weight_sums_prev_;
    std::unique_ptr<PlaceEvent> stats_ready_[2];
    PlaceArray<double> stats_scratch_; // iteration_stats's partial sums
    int32_t* n_empty() const { return reinterpret_cast<int32_t*>(stats_.get() + 3 * data_.batch); }
    PlaceTimer assign_timer_;
    /// iterate()'s device work (assign to statistics), recorded once
    PlaceGraph step_graph_;
    /// The exchange across ranks; null with one rank
    std::unique_ptr<RankReduce> ranks_;
    /// LloydConfig::prune's bounds, and what the last assignment skipped
    std::unique_ptr<Pruner> pruner_;
    /// the same on CUDA: the moved-centroid filter, one per problem
    std::vector<std::unique_ptr<MovedFilter>> filters_;
    PruneStep pruned_;
    int64_t n_total_ = 0; // points over all ranks
};

} // namespace flashkmeans
