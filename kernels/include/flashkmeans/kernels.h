/**
 * flashkmeans kernels: the compute of one Lloyd iteration, with no FAISS types.
 *
 * Every operation has one signature and two implementations (CPU: OpenBLAS +
 * OpenMP; CUDA: tensor cores + CUB), chosen by `Place::backend`. Pointers are
 * host pointers for the CPU and device pointers for CUDA. All matrices are
 * row-major and dense (leading dimension = d). A batch of B independent
 * problems is laid out back to back: problem b of x starts at x + b*n*d, of
 * the centroids at b*k*d, of labels/distances at b*n, of sums at b*k*d.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashkmeans {

/// Where an operation runs. Auto picks CUDA when a GPU is visible.
enum class Backend { Auto, CPU, CUDA };

/// Element type of the data points. Norms, sums and centroids are always fp32.
enum class DType { Float32, Float16, BFloat16 };

/// How fp32 points are multiplied on tensor cores (fp16/bf16 ignore this).
enum class Precision {
    Exact, ///< assignments equal a float64 reference except near-ties (default)
    TF32,  ///< opt-in: one TF32 product, fp32 accumulation (about 1e-3 relative)
};

/// Distance used for assignment; IP assigns to the largest inner product.
enum class Metric { L2, InnerProduct };

/// An execution place: the CPU, or one CUDA device and stream.
struct Place {
    Backend backend = Backend::CPU;
    int device = 0;         ///< CUDA device ordinal
    void* stream = nullptr; ///< cudaStream_t; nullptr = the legacy default stream
};

/// Thrown by the kernels layer on bad arguments or a failed CUDA call.
struct KernelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Device memory ran out (engine buffers or kernel scratch, after the cached
/// memory went back); the message names the size asked for and the device's
/// free memory. Python: MemoryError.
struct OutOfMemoryError : KernelError {
    using KernelError::KernelError;
};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

/// True when this build has the CUDA kernels compiled in.
bool cuda_compiled();
/// Number of visible CUDA devices (0 without CUDA support or GPU).
int cuda_device_count();

namespace kernels {

struct Variants; // flashkmeans/variants.h: pinning a code path (tests, benchmarks)

/// out[b*n + i] = ||x_i||^2, fp32 accumulation.
void row_norms(
        const Place& place,
        const void* x,
        DType dtype,
        int64_t n,
        int64_t d,
        float* out,
        int64_t batch = 1);

/// Which FlashAssign implementation runs (tests and benchmarks pin one; users
/// leave Auto). Tiled: the portable tiled kernel (CPU: FAISS's sgemm blocks; CUDA:
/// mma.sync + cp.async, sm_80 and later). Hopper: the CUDA TMA + wgmma kernel
/// (compute capability 9.0 with an sm_90a build; fp16, bf16 and fp32 TF32;
/// rows of 16-byte multiples, any d); asking for it where it
/// cannot run is an error saying why. Fused: the CPU's own FMA micro-kernel
/// (x86-64 with AVX2 and FMA), every score a pure function of (x_i, c_j), not
/// FAISS's bits. Auto: Hopper where it can run, else Tiled.
enum class AssignKernel { Auto, Reference, Tiled, Hopper, Fused };

/** FlashAssign: labels[i] = argmin_j ||x_i - c_j||^2 (L2) or argmax_j x_i.c_j
 * (IP), ties to the lowest j, without ever storing the n x k matrix. */
struct AssignArgs {
    const void* x = nullptr;         ///< n x d points, in `dtype`
    DType dtype = DType::Float32;
    int64_t n = 0;
    int64_t d = 0;
    const void* centroids = nullptr; ///< k x d, in the same dtype as x
    const float* centroid_norms = nullptr; ///< k, ||c_j||^2 (needed for L2)
    int64_t k = 0;
    int64_t batch = 1;
    Metric metric = Metric::L2;
    Precision precision = Precision::Exact;
    AssignKernel kernel = AssignKernel::Auto;
    /// n, ||x_i||^2; optional: the distances need it, labels do not
    const float* x_norms = nullptr;
    int32_t* labels = nullptr;       ///< n out
    /// n out, optional: L2: ||x||^2 + ||c||^2 - 2 x.c clamped at 0 (needs
    /// x_norms); IP: the largest inner product
    float* distances = nullptr;
    /// n out, optional (CPU backend): the runner-up's value, the best score
    /// among every centroid but the chosen one (a copy of the chosen centroid
    /// counts), in the distances' formula; +inf (L2) or -inf (IP) when k = 1.
    /// Exact pruning bounds the labels of the next assignment with it.
    float* second = nullptr;
    /// Streaming: x is rows [r, r + n) of a call over `call_rows` points,
    /// r a multiple of assign_block_rows(); the kernel then computes them as
    /// that call would, bit for bit (on the CPU the choice between BLAS and
    /// direct distances is the call's). 0: the call is these n points.
    int64_t call_rows = 0;
    /// internal (tests, benchmarks): a pinned code path; nullptr = heuristics
    const Variants* variants = nullptr;
};
void flash_assign(const Place& place, const AssignArgs& args);
/// Whether AssignKernel::Fused can run on this CPU (x86-64 with AVX2 and FMA).
bool cpu_fused_assign_available();

/** The fused CPU kernel over groups of centroids (exact pruning's group
 * bounds): for each of m points and each group it needs, the group's best
 * score, the lowest index holding it, and the runner-up within the group,
 * each bitwise what AssignKernel::Fused computes for that pair (its
 * distances' formula: L2 clamped distances, IP inner products). Host memory,
 * where cpu_fused_assign_available(). */
struct GroupAssignArgs {
    const float* x = nullptr;       ///< the points, d floats each
    const float* x_norms = nullptr; ///< ||x||^2 of each point (L2)
    /// m points: rows[r] of x (and of x_norms); null: the first m rows
    const int64_t* rows = nullptr;
    int64_t m = 0;
    int64_t d = 0;
    const float* centroids = nullptr;      ///< k x d
    const float* centroid_norms = nullptr; ///< k, ||c||^2 (L2)
    int64_t k = 0;
    Metric metric = Metric::L2;
    int64_t groups = 0;
    /// group g = members[group_begin[g] .. group_begin[g + 1]), ascending
    const int32_t* group_begin = nullptr;
    const int32_t* members = nullptr;
    const uint8_t* need = nullptr; ///< m x groups: nonzero = compute that group
    /// m x groups out, written where `need`: best score, its index, runner-up
    /// (+inf / -inf past a group of one)
    float* best = nullptr;
    int32_t* arg = nullptr;
    float* second = nullptr;
};
void cpu_fused_group_assign(const GroupAssignArgs& args);
/** The scores of m (point, centroid) pairs, bitwise what AssignKernel::Fused
 * computes for them (its distances' formula): out[r] for point x_rows[r] of
 * x (n x d, norms x_norms) and centroid c_rows[r] of c (norms c_norms; both
 * norms needed for L2 only). CPU, where cpu_fused_assign_available(). */
void cpu_fused_pair_scores(const float* x, const float* x_norms, const int64_t* x_rows,
                           const float* c, const float* c_norms, const int32_t* c_rows, int64_t m,
                           int64_t d, Metric metric, float* out);
/** The rows a chunk of an assignment must start at a multiple of for its
 * labels and distances to equal those of one call over all the points: the
 * CPU kernel's BLAS block (FAISS's, whose rounding depends on a row's place in
 * it), 1 on CUDA (every row is computed alone). */
int64_t assign_block_rows(const Place& place);

/** Sort-inverse update: per cluster j >= k_begin, sums[j] = sum of w_i x_i
 * and weight_sums[j] = sum of w_i over points with labels[i] == j, each
 * cluster reduced in increasing point order with no float atomics (bitwise
 * reproducible; on the CPU bitwise equal to FAISS's compute_centroids).
 * counts[j] = number of points (unweighted). Rows j < k_begin (frozen
 * centroids) are left untouched. */
struct UpdateArgs {
    const void* x = nullptr; ///< n x d points, in `dtype`
    DType dtype = DType::Float32;
    int64_t n = 0;
    int64_t d = 0;
    const int32_t* labels = nullptr; ///< n, each in [0, k)
    const float* weights = nullptr;  ///< n, optional (nullptr = all ones)
    int64_t k = 0;
    int64_t k_begin = 0;
    int64_t batch = 1;
    float* sums = nullptr;        ///< k x d out
    float* weight_sums = nullptr; ///< k out (FAISS's `hassign`)
    int32_t* counts = nullptr;    ///< k out, optional
    /// Add to sums, weight_sums and counts instead of overwriting them: the
    /// update of points streamed in chunks, one call per chunk in index
    /// order. CPU: each cluster's running float sum goes on in index order,
    /// so the chunks give bitwise the sums of one call over all the points.
    /// CUDA: each chunk's sums are reduced apart (in the workspace) and then
    /// added, so the result depends on the chunks but not on the run.
    bool accumulate = false;
    /// scratch (CUDA): at least update_workspace_bytes(); nullptr = allocate
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
    /// internal (tests, benchmarks): a pinned code path; nullptr = heuristics
    const Variants* variants = nullptr;
};
/// `accumulate`: the workspace of calls with UpdateArgs::accumulate set
/// (CUDA: room for one chunk's sums beside the sort's scratch)
size_t update_workspace_bytes(const Place& place, int64_t n, int64_t d, int64_t k,
                              int64_t batch = 1, bool accumulate = false);
void sort_inverse_update(const Place& place, const UpdateArgs& args);

/** Finalize: for j >= k_begin, centroids[j] = sums[j] * (1 / weight_sums[j])
 * (FAISS's rounding), or 0 where weight_sums[j] == 0 (empty: to be split).
 * Writes the number of empty clusters and max_j ||c_new - c_old||^2 to
 * n_empty / max_shift (device pointers on CUDA; either may be null). */
struct FinalizeArgs {
    const float* sums = nullptr;
    const float* weight_sums = nullptr;
    int64_t k = 0;
    int64_t d = 0;
    int64_t k_begin = 0;
    int64_t batch = 1;
    float* centroids = nullptr; ///< in: old centroids; out: new
    int32_t* n_empty = nullptr; ///< batch out
    float* max_shift = nullptr; ///< batch out
    /// Optional: the updated rows (j >= k_begin) as the next assignment reads
    /// them, so it needs no separate conversion and norm pass. `typed`
    /// (batch x k x d in typed_dtype, fp16 or bf16; CUDA only) gets each row
    /// rounded; `norms` (batch x k) its squared L2 norm, of the rounded row
    /// when typed, with the bits row_norms gives for the same row.
    DType typed_dtype = DType::Float32;
    void* typed = nullptr;
    float* norms = nullptr;
};
void finalize_centroids(const Place& place, const FinalizeArgs& args);

/** FAISS's post-processing: spherical -> each row scaled to unit L2 norm
 * (rows of norm 0 untouched); int_centroids -> round to nearest integer. */
void postprocess_centroids(
        const Place& place,
        float* centroids,
        int64_t k,
        int64_t d,
        bool spherical,
        bool round_to_int,
        int64_t batch = 1);

/** FAISS's empty-cluster split (Clustering.cpp: split_clusters) on host
 * memory: each empty cluster j >= k_begin copies a cluster drawn with
 * probability (weight - 1) / (n - k), both perturbed by (1 +- 1/1024).
 * Runs on the host on every backend: it is sequential by definition (one
 * RNG stream) and touches O(#empty * d) values. Returns the split count.
 * = plan_cluster_splits + apply_cluster_splits on all k rows. */
int split_empty_clusters(
        int64_t d,
        int64_t k,
        int64_t n,
        int64_t k_begin,
        float* weight_sums,
        float* centroids);

/// One split of split_empty_clusters: row `empty` becomes a perturbed copy
/// of row `source`, which is perturbed the other way.
struct ClusterSplit {
    int64_t empty = 0;
    int64_t source = 0;
};

/** The draws of split_empty_clusters, on the weights alone (they never
 * depend on the centroids): the splits in order (absolute cluster ids), with
 * weight_sums updated as FAISS does. Lets a caller move only the rows the
 * splits touch instead of all k centroids. */
std::vector<ClusterSplit> plan_cluster_splits(
        int64_t k,
        int64_t n,
        int64_t k_begin,
        float* weight_sums);

/** The rows `splits` touch, each once, in order of first use; renumbers
 * the splits in place to index that list (for apply_cluster_splits on the
 * gathered rows). */
std::vector<int64_t> renumber_touched_rows(std::vector<ClusterSplit>& splits);

/** Applies `splits` in order to host rows of d floats: rows + s.empty * d
 * and rows + s.source * d (so ids index `rows`: all centroids, or a block
 * of gathered rows with the ids renumbered). */
void apply_cluster_splits(
        int64_t d,
        const std::vector<ClusterSplit>& splits,
        float* rows);

/// out[i] = fp32(x[ids[i]]) for i < m; `ids` is a host array.
void gather_rows(
        const Place& place,
        const void* x,
        DType dtype,
        int64_t n,
        int64_t d,
        const int64_t* ids,
        int64_t m,
        float* out);

/// x[ids[i]] = rows[i] for i < m (fp32 rows of d); `ids` is a host array of
/// distinct row ids in [0, n).
void scatter_rows(
        const Place& place,
        const float* rows,
        int64_t m,
        int64_t d,
        const int64_t* ids,
        int64_t n,
        float* x);

/// out (rows x dp) = x (rows x d, rows d elements apart) with columns
/// [d, dp) zero, elements of `dtype` in place memory: the engine's padded
/// rows in one pass (a 2D copy of narrow rows runs far below bandwidth).
void pad_rows(const Place& place, const void* x, DType dtype, int64_t rows, int64_t d, int64_t dp,
              void* out);

/// dst[i] = src[i] for i < count, in place memory: the engine's int32
/// labels as the int64 labels callers get (FAISS's idx_t), in one pass.
void widen_labels(const Place& place, const int32_t* src, int64_t count, int64_t* dst);

/** Exact pruning's moved-centroid filter (engine/moved_filter.h): the steps
 * around FlashAssign. A centroid whose bits did not change scores every
 * point as before, so a point whose own centroid did not move can only be
 * taken by one that did. */
/// flags[j] = 1 where the `row_bytes` bytes of row j of a and of b differ, else 0.
void rows_differ(const Place& place, const void* a, const void* b, int64_t rows, size_t row_bytes,
                 uint8_t* flags);
/// The ids i < count, ascending, where flags[i] (labels null) or, with labels,
/// where labels[i] < 0 or flags[labels[i]], written to ids; returns their
/// number (waits for the place). `workspace`: select_ids_workspace(count) bytes.
int64_t select_ids(const Place& place, const uint8_t* flags, const int32_t* labels, int64_t count,
                   int32_t* ids, void* workspace, size_t workspace_bytes);
size_t select_ids_workspace(const Place& place, int64_t count);
/// Row r of out = row ids[r] of x (`row_bytes` each; ids in place memory), r < m.
void gather_rows_by_id(const Place& place, const void* x, size_t row_bytes, const int32_t* ids,
                       int64_t m, void* out);
/// For each point i < n whose label is a centroid that did not move
/// (labels[i] >= 0, !flags[labels[i]]): the better of (labels[i],
/// distances[i]) and (ids[cand_labels[i]], cand_distances[i]) by (distance,
/// index), L2 smaller, IP larger, into labels and distances. Returns how
/// many of those points had two different labels within tol = rel_tol *
/// (x_norms[i] + c_norms[own] + c_norms[candidate]) of each other: the
/// near-ties, where FlashAssign's own comparison may rank them the other
/// way (waits for the place). `scratch`: one int64 of place memory.
int64_t merge_moved(const Place& place, Metric metric, int64_t n, const uint8_t* flags,
                    const int32_t* ids, const int32_t* cand_labels, const float* cand_distances,
                    const float* x_norms, const float* c_norms, double rel_tol, int32_t* labels,
                    float* distances, int64_t* scratch);
/// labels[ids[r]] = l[r] and distances[ids[r]] = dist[r] for r < m.
void scatter_assignment(const Place& place, const int32_t* ids, int64_t m, const int32_t* l,
                        const float* dist, int32_t* labels, float* distances);

/// dst[i] = src[i] converted to `dtype` (round to nearest even).
void convert_from_float(
        const Place& place,
        const float* src,
        DType dtype,
        int64_t count,
        void* dst);

/** k-means++ seeding (D^2 sampling) of rows [n_given, k) of `centroids`,
 * run wholly on the place: on CUDA the draws go up once and the picks come
 * back once, with no host round trip per row. The same semantics on both
 * backends:
 * - D[i] = min over the rows chosen so far (given rows included) of
 *   ||x_i - c||^2, in fp32 as the sum over t of (float(x_it) - c_t)^2: the
 *   difference form, so a point equal to a chosen row has D[i] == 0 exactly.
 * - If n_given == 0, row 0 = x[min(n - 1, floor(draws[0] * n))].
 * - Each further row j (draw t = j - n_given): total = sum_i D[i] in double.
 *   If total > 0: r = draws[t] * total and the pick is the smallest i with
 *   prefix(i) > r and D[i] > 0, prefix(i) = sum_{i' <= i} D[i'] in double; if
 *   rounding leaves none, the largest i with D[i] > 0 (CUDA: of the block
 *   where the block prefix crossed r). If total == 0 (every point sits on a
 *   chosen row): the pick is min(n - 1, floor(draws[t] * n)).
 * - Row j = fp32(x[pick]) (exact for fp16/bf16).
 * The double sums are blocked (CPU: fixed blocks of points summed in order,
 * then the blocks in order; CUDA: a fixed reduction tree per block of
 * points), so picks are the same on every run, and the same on both backends
 * wherever the fp32 distances and their double sums are exact (e.g. small
 * integer data); elsewhere they may differ by rounding. A point already
 * chosen has D == 0 and is never picked again while total > 0. */
struct KMeansPPArgs {
    const void* x = nullptr;  ///< n x d points (one problem), in `dtype`
    DType dtype = DType::Float32; ///< CPU: float32 only
    int64_t n = 0;            ///< points, >= 1
    int64_t d = 0;            ///< dimension, >= 1
    int64_t k = 0;            ///< rows of `centroids`
    int64_t n_given = 0;      ///< rows [0, n_given) are given; 0 <= n_given < k
    /// HOST array of k - n_given uniforms in [0, 1); draw t picks row n_given + t
    const double* draws = nullptr;
    /// k x d fp32, place memory: rows [0, n_given) read, rows [n_given, k) written
    float* centroids = nullptr;
    /// optional HOST out: the k - n_given chosen point ids (on CUDA, asking
    /// for them waits for the stream)
    int64_t* picked = nullptr;
};
void kmeanspp_init(const Place& place, const KMeansPPArgs& args);

/* kmeanspp_init's CPU steps, on host memory, for a caller that holds the
 * points a piece at a time (k-means++ across ranks, engine/kmeanspp_on_ranks.cpp):
 * the same arithmetic, so D and its block sums are the kernel's bits. */
/// The points per block of the double sums of D (a fixed constant).
int64_t kmeanspp_block_rows();
/// min(n - 1, floor(u * n)): the uniform pick (the first row, or when total == 0).
int64_t kmeanspp_uniform_pick(double u, int64_t n);
/** For the n points x (n x d fp32): dist[i] = ||x_i - c||^2 (first) or the
 * min of dist[i] and that, and block_sums[b] = the double sum of dist over
 * points [b B, min(n, (b + 1) B)) in point order, B = kmeanspp_block_rows();
 * parallel over the blocks. */
void kmeanspp_add_row(const float* x, int64_t n, int64_t d, const float* c, bool first, float* dist,
                      double* block_sums);
/// The largest i < n with dist[i] > 0, or -1 (the pick when rounding put r
/// past the last prefix).
int64_t kmeanspp_last_positive(const float* dist, int64_t n);

/** The per-problem sums one iteration reports, in double and in a fixed
 * order (the same bits on every run): for b < batch,
 * out[3b] = sum_i values[b*n + i] (the objective, from the distances),
 * out[3b + 1] = sum_j counts[b*k + j] and out[3b + 2] = sum_j counts[b*k + j]^2
 * (FAISS's imbalance factor is k * out[3b + 2] / out[3b + 1]^2). counts may
 * be null (both count sums are then 0). `out` (3 * batch doubles) is a place
 * pointer: on CUDA this only enqueues work, so an iteration reads its
 * statistics with one copy at its end. `scratch`: place memory of at least
 * iteration_stats_scratch() doubles, or nullptr to allocate it per call (a
 * caller recording the call into a CUDA graph that it updates passes it:
 * the graph then holds no allocation). */
void iteration_stats(
        const Place& place,
        const float* values,
        int64_t n,
        const int32_t* counts,
        int64_t k,
        int64_t batch,
        double* out,
        double* scratch = nullptr);
int64_t iteration_stats_scratch(const Place& place, int64_t n, int64_t k, int64_t batch);

/// Element type of sum_slices.
enum class SumType { Float32, Int32, Float64 };

/** The rank-order combine of data-parallel partial sums: for i < count,
 * out[i] = ((s_0[i] + s_1[i]) + s_2[i]) + ... + s_{nslices-1}[i], where
 * s_r = (const char*)slices + r * slice_bytes holds `count` values of `type`.
 * Every element is added in that order on every backend, so the result is
 * the same bits for a given slice count, on any thread or block split.
 * `slices` and `out` are place memory and must not overlap. */
void sum_slices(const Place& place, const void* slices, int64_t nslices, size_t slice_bytes,
                SumType type, int64_t count, void* out);

} // namespace kernels
} // namespace flashkmeans
