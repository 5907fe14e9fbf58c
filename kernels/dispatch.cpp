// The one place where each kernel's arguments are checked and the backend is
// chosen; CPU and CUDA implementations below assume valid arguments.
#include <flashkmeans/kernels.h>

#include "cpu/cpu_kernels.h"
#ifdef FLASHKMEANS_WITH_CUDA
#include "cuda/cuda_kernels.h"
#endif

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace flashkmeans {

namespace {

[[noreturn]] void fail(const std::string& what) {
    throw KernelError("flashkmeans kernels: " + what);
}

void require(bool ok, const char* what) {
    if (!ok) {
        fail(what);
    }
}

bool on_cuda(const Place& place) {
    if (place.backend == Backend::CUDA) {
        if (!cuda_compiled()) {
            fail("the CUDA backend was requested but this build has no CUDA support");
        }
        return true;
    }
    if (place.backend == Backend::Auto) {
        fail("Place.backend must be CPU or CUDA (resolve Auto first)");
    }
    return false;
}

// Runs the CUDA implementation when the place is a GPU; throws in builds
// without CUDA (on_cuda() already refused that case).
#ifdef FLASHKMEANS_WITH_CUDA
#define FK_CUDA_OR_FAIL(call) call
#else
#define FK_CUDA_OR_FAIL(call) fail("no CUDA support")
#endif

void require_cpu_float32(DType dtype, const char* op) {
    if (dtype != DType::Float32) {
        fail(std::string(op) + ": the CPU backend takes float32 points, got " +
             dtype_name(dtype) + " (convert on the host first)");
    }
}

void require_row_ids(const char* op, const int64_t* ids, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        if (ids[i] < 0 || ids[i] >= n) {
            fail(std::string(op) + ": row id " + std::to_string(ids[i]) + " out of range [0, " +
                 std::to_string(n) + ")");
        }
    }
}

} // namespace

size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::Float32:
            return 4;
        case DType::Float16:
        case DType::BFloat16:
            return 2;
    }
    fail("unknown dtype");
}

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::Float32:
            return "float32";
        case DType::Float16:
            return "float16";
        case DType::BFloat16:
            return "bfloat16";
    }
    return "unknown";
}

bool cuda_compiled() {
#ifdef FLASHKMEANS_WITH_CUDA
    return true;
#else
    return false;
#endif
}

int cuda_device_count() {
#ifdef FLASHKMEANS_WITH_CUDA
    return cuda::device_count();
#else
    return 0;
#endif
}

namespace kernels {

void row_norms(const Place& place, const void* x, DType dtype, int64_t n, int64_t d, float* out,
               int64_t batch) {
    require(n >= 0 && d > 0 && batch >= 1, "row_norms: need n >= 0, d > 0, batch >= 1");
    require(x != nullptr || n == 0, "row_norms: x is null");
    require(out != nullptr || n == 0, "row_norms: out is null");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::row_norms(place, x, dtype, n * batch, d, out));
        return;
    }
    require_cpu_float32(dtype, "row_norms");
    cpu::row_norms(static_cast<const float*>(x), n * batch, d, out);
}

void flash_assign(const Place& place, const AssignArgs& a) {
    require(a.n >= 0 && a.d > 0 && a.k > 0 && a.batch >= 1,
            "flash_assign: need n >= 0, d > 0, k > 0, batch >= 1");
    require(a.k <= INT32_MAX, "flash_assign: k must fit in int32");
    require(a.x != nullptr || a.n == 0, "flash_assign: x is null");
    require(a.call_rows == 0 || a.call_rows >= a.n, "flash_assign: call_rows must be 0 or >= n");
    require(a.centroids != nullptr, "flash_assign: centroids is null");
    require(a.labels != nullptr || a.n == 0, "flash_assign: labels is null");
    require(a.metric != Metric::L2 || a.centroid_norms != nullptr,
            "flash_assign: the L2 metric needs centroid_norms");
    require(a.distances == nullptr || a.metric != Metric::L2 || a.x_norms != nullptr,
            "flash_assign: L2 distances need x_norms");
    require(a.second == nullptr || a.metric != Metric::L2 || a.x_norms != nullptr,
            "flash_assign: L2 runner-up scores need x_norms");
    require(a.second == nullptr || !on_cuda(place),
            "flash_assign: runner-up scores are computed on the CPU backend only");
    require(a.kernel != AssignKernel::Fused || !on_cuda(place),
            "flash_assign: the fused kernel runs on the CPU backend only");
    if (a.n == 0) {
        return;
    }
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::flash_assign(place, a));
        return;
    }
    require_cpu_float32(a.dtype, "flash_assign");
    require(a.kernel != AssignKernel::Hopper,
            "flash_assign: the Hopper kernel runs on the CUDA backend only");
    require(a.kernel != AssignKernel::Fused || cpu::fused_assign_supported(),
            "flash_assign: the fused CPU kernel needs an x86-64 CPU with AVX2 and FMA");
    cpu::flash_assign(a);
}

bool cpu_fused_assign_available() {
    return cpu::fused_assign_supported();
}

void cpu_fused_group_assign(const GroupAssignArgs& a) {
    require(cpu::fused_assign_supported(),
            "cpu_fused_group_assign: the fused CPU kernel needs an x86-64 CPU with AVX2 and FMA");
    require(a.m >= 0 && a.d > 0 && a.k > 0 && a.groups > 0, "cpu_fused_group_assign: bad sizes");
    require(a.m == 0 || (a.x && a.need && a.best && a.arg && a.second),
            "cpu_fused_group_assign: null points or outputs");
    require(a.centroids && a.group_begin && a.members, "cpu_fused_group_assign: null centroids");
    require(a.metric != Metric::L2 || (a.centroid_norms && (a.m == 0 || a.x_norms)),
            "cpu_fused_group_assign: L2 needs both norms");
    require(a.group_begin[0] == 0 && a.group_begin[a.groups] == a.k,
            "cpu_fused_group_assign: the groups must cover the k centroids");
    cpu::fused_group_assign(a);
}

void cpu_fused_pair_scores(const float* x, const float* x_norms, const int64_t* x_rows,
                           const float* c, const float* c_norms, const int32_t* c_rows, int64_t m,
                           int64_t d, Metric metric, float* out) {
    require(cpu::fused_assign_supported(),
            "cpu_fused_pair_scores: the fused CPU kernel needs an x86-64 CPU with AVX2 and FMA");
    require(metric != Metric::L2 || (x_norms && c_norms), "cpu_fused_pair_scores: L2 needs norms");
    cpu::fused_pair_scores(x, x_norms, x_rows, c, c_norms, c_rows, m, d, metric == Metric::L2, out);
}

int64_t assign_block_rows(const Place& place) {
    return on_cuda(place) ? 1 : cpu::assign_block_rows();
}

size_t update_workspace_bytes(const Place& place, int64_t n, int64_t d, int64_t k, int64_t batch,
                              bool accumulate) {
    if (on_cuda(place)) {
#ifdef FLASHKMEANS_WITH_CUDA
        return cuda::update_workspace_bytes(n, d, k, batch, accumulate);
#endif
    }
    (void)n, (void)d, (void)k, (void)batch, (void)accumulate; // the CPU update allocates its own
    return 0;
}

void sort_inverse_update(const Place& place, const UpdateArgs& a) {
    require(a.n >= 0 && a.d > 0 && a.k > 0 && a.batch >= 1,
            "sort_inverse_update: need n >= 0, d > 0, k > 0, batch >= 1");
    require(a.k_begin >= 0 && a.k_begin <= a.k, "sort_inverse_update: need 0 <= k_begin <= k");
    require(a.n <= INT32_MAX, "sort_inverse_update: n must fit in int32 per batch");
    require(a.x != nullptr || a.n == 0, "sort_inverse_update: x is null");
    require(a.labels != nullptr || a.n == 0, "sort_inverse_update: labels is null");
    require(a.sums != nullptr && a.weight_sums != nullptr,
            "sort_inverse_update: sums and weight_sums are required");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::sort_inverse_update(place, a));
        return;
    }
    require_cpu_float32(a.dtype, "sort_inverse_update");
    cpu::sort_inverse_update(a);
}

void finalize_centroids(const Place& place, const FinalizeArgs& a) {
    require(a.k > 0 && a.d > 0 && a.batch >= 1 && a.k_begin >= 0 && a.k_begin <= a.k,
            "finalize_centroids: need k > 0, d > 0, batch >= 1, 0 <= k_begin <= k");
    require(a.sums && a.weight_sums && a.centroids,
            "finalize_centroids: sums, weight_sums and centroids are required");
    require(a.typed == nullptr || a.typed_dtype != DType::Float32,
            "finalize_centroids: typed rows are for fp16 / bf16 (fp32 rows are the centroids)");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::finalize_centroids(place, a));
        return;
    }
    require(a.typed == nullptr, "finalize_centroids: typed rows are CUDA only (CPU kernels are float32)");
    cpu::finalize_centroids(a);
}

void postprocess_centroids(const Place& place, float* c, int64_t k, int64_t d, bool spherical,
                           bool round_to_int, int64_t batch) {
    require(k > 0 && d > 0 && batch >= 1 && c != nullptr,
            "postprocess_centroids: need k > 0, d > 0, centroids");
    if (!spherical && !round_to_int) {
        return;
    }
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::postprocess_centroids(place, c, k, d, spherical, round_to_int, batch));
        return;
    }
    cpu::postprocess_centroids(c, k * batch, d, spherical, round_to_int);
}

void gather_rows(const Place& place, const void* x, DType dtype, int64_t n, int64_t d,
                 const int64_t* ids, int64_t m, float* out) {
    require(n >= 0 && d > 0 && m >= 0, "gather_rows: need n >= 0, d > 0, m >= 0");
    require(m == 0 || (x && ids && out), "gather_rows: null pointer");
    require_row_ids("gather_rows", ids, m, n);
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::gather_rows(place, x, dtype, d, ids, m, out));
        return;
    }
    require_cpu_float32(dtype, "gather_rows");
    cpu::gather_rows(static_cast<const float*>(x), d, ids, m, out);
}

void scatter_rows(const Place& place, const float* rows, int64_t m, int64_t d, const int64_t* ids,
                  int64_t n, float* x) {
    require(n >= 0 && d > 0 && m >= 0, "scatter_rows: need n >= 0, d > 0, m >= 0");
    require(m == 0 || (rows && ids && x), "scatter_rows: null pointer");
    require_row_ids("scatter_rows", ids, m, n);
    std::vector<int64_t> sorted(ids, ids + m);  // two writes to one row would race on a GPU
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) {
        fail("scatter_rows: row id " + std::to_string(*dup) + " appears twice");
    }
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::scatter_rows(place, rows, m, d, ids, x));
        return;
    }
    cpu::scatter_rows(rows, m, d, ids, x);
}

void pad_rows(const Place& place, const void* x, DType dtype, int64_t rows, int64_t d, int64_t dp,
              void* out) {
    require(rows >= 0 && d > 0 && dp >= d, "pad_rows: need rows >= 0, 0 < d <= dp");
    require(rows == 0 || (x && out), "pad_rows: null pointer");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::pad_rows(place, x, dtype, rows, d, dp, out));
        return;
    }
    const size_t esz = dtype_size(dtype);
    for (int64_t r = 0; r < rows; r++) {
        const char* src = static_cast<const char*>(x) + size_t(r) * d * esz;
        char* dst = static_cast<char*>(out) + size_t(r) * dp * esz;
        std::memcpy(dst, src, size_t(d) * esz);
        std::memset(dst + size_t(d) * esz, 0, size_t(dp - d) * esz);
    }
}

void widen_labels(const Place& place, const int32_t* src, int64_t count, int64_t* dst) {
    require(count >= 0 && (count == 0 || (src && dst)), "widen_labels: null pointer");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::widen_labels(place, src, count, dst));
        return;
    }
    std::copy(src, src + count, dst);
}

void rows_differ(const Place& place, const void* a, const void* b, int64_t rows, size_t row_bytes,
                 uint8_t* flags) {
    require(rows >= 0 && (rows == 0 || (a && b && flags && row_bytes > 0)),
            "rows_differ: null pointer or empty rows");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::rows_differ(place, a, b, rows, row_bytes, flags));
        return;
    }
    cpu::rows_differ(a, b, rows, row_bytes, flags);
}

size_t select_ids_workspace(const Place& place, int64_t count) {
    require(count >= 0, "select_ids_workspace: negative count");
    if (on_cuda(place)) {
#ifdef FLASHKMEANS_WITH_CUDA
        return cuda::select_ids_workspace(count);
#else
        fail("no CUDA support");
#endif
    }
    return 0;
}

int64_t select_ids(const Place& place, const uint8_t* flags, const int32_t* labels, int64_t count,
                   int32_t* ids, void* workspace, size_t workspace_bytes) {
    require(count >= 0 && (count == 0 || (flags && ids)), "select_ids: null pointer");
    (void)workspace, (void)workspace_bytes; // CUDA only
    if (on_cuda(place)) {
#ifdef FLASHKMEANS_WITH_CUDA
        require(workspace_bytes >= cuda::select_ids_workspace(count) && workspace,
                "select_ids: workspace smaller than select_ids_workspace()");
        return cuda::select_ids(place, flags, labels, count, ids, workspace, workspace_bytes);
#else
        fail("no CUDA support");
#endif
    }
    return cpu::select_ids(flags, labels, count, ids);
}

void gather_rows_by_id(const Place& place, const void* x, size_t row_bytes, const int32_t* ids,
                       int64_t m, void* out) {
    require(m >= 0 && (m == 0 || (x && ids && out && row_bytes > 0)),
            "gather_rows_by_id: null pointer or empty rows");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::gather_rows_by_id(place, x, row_bytes, ids, m, out));
        return;
    }
    cpu::gather_rows_by_id(x, row_bytes, ids, m, out);
}

int64_t merge_moved(const Place& place, Metric metric, int64_t n, const uint8_t* flags,
                    const int32_t* ids, const int32_t* cand_labels, const float* cand_distances,
                    const float* x_norms, const float* c_norms, double rel_tol, int32_t* labels,
                    float* distances, int64_t* scratch) {
    require(n >= 0 && (n == 0 || (flags && ids && cand_labels && cand_distances && x_norms &&
                                  c_norms && labels && distances)),
            "merge_moved: null pointer");
    (void)scratch; // CUDA only
    if (on_cuda(place)) {
#ifdef FLASHKMEANS_WITH_CUDA
        require(scratch != nullptr, "merge_moved: null scratch");
        return cuda::merge_moved(place, metric, n, flags, ids, cand_labels, cand_distances, x_norms,
                                 c_norms, rel_tol, labels, distances, scratch);
#else
        fail("no CUDA support");
#endif
    }
    return cpu::merge_moved(metric == Metric::L2, n, flags, ids, cand_labels, cand_distances,
                            x_norms, c_norms, rel_tol, labels, distances);
}

void scatter_assignment(const Place& place, const int32_t* ids, int64_t m, const int32_t* l,
                        const float* dist, int32_t* labels, float* distances) {
    require(m >= 0 && (m == 0 || (ids && l && dist && labels && distances)),
            "scatter_assignment: null pointer");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::scatter_assignment(place, ids, m, l, dist, labels, distances));
        return;
    }
    cpu::scatter_assignment(ids, m, l, dist, labels, distances);
}

void convert_from_float(const Place& place, const float* src, DType dtype, int64_t count,
                        void* dst) {
    require(count >= 0 && (count == 0 || (src && dst)), "convert_from_float: null pointer");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::convert_from_float(place, src, dtype, count, dst));
        return;
    }
    require_cpu_float32(dtype, "convert_from_float");
    std::copy(src, src + count, static_cast<float*>(dst));
}

void kmeanspp_init(const Place& place, const KMeansPPArgs& a) {
    if (a.n < 1 || a.d < 1) {
        fail("kmeanspp_init: need n >= 1 points and d >= 1, got n = " + std::to_string(a.n) +
             ", d = " + std::to_string(a.d));
    }
    if (!(a.n_given >= 0 && a.n_given < a.k)) {
        fail("kmeanspp_init: need 0 <= n_given < k, got n_given = " + std::to_string(a.n_given) +
             ", k = " + std::to_string(a.k));
    }
    require(a.x != nullptr, "kmeanspp_init: x is null");
    require(a.centroids != nullptr, "kmeanspp_init: centroids is null");
    require(a.draws != nullptr, "kmeanspp_init: draws is null");
    for (int64_t t = 0; t < a.k - a.n_given; t++) {
        if (!(a.draws[t] >= 0.0 && a.draws[t] < 1.0)) {
            fail("kmeanspp_init: draws must be in [0, 1), got draws[" + std::to_string(t) +
                 "] = " + std::to_string(a.draws[t]));
        }
    }
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::kmeanspp_init(place, a));
        return;
    }
    require_cpu_float32(a.dtype, "kmeanspp_init");
    cpu::kmeanspp_init(a);
}

int64_t kmeanspp_block_rows() {
    return cpu::kmeanspp_block_rows();
}

int64_t kmeanspp_uniform_pick(double u, int64_t n) {
    return cpu::kmeanspp_uniform_pick(u, n);
}

void kmeanspp_add_row(const float* x, int64_t n, int64_t d, const float* c, bool first, float* dist,
                      double* block_sums) {
    require(n >= 0 && d >= 1, "kmeanspp_add_row: need n >= 0 and d >= 1");
    require(n == 0 || (x && c && dist && block_sums), "kmeanspp_add_row: null pointer");
    cpu::kmeanspp_add_row(x, n, d, c, first, dist, block_sums);
}

int64_t kmeanspp_last_positive(const float* dist, int64_t n) {
    return cpu::kmeanspp_last_positive(dist, n);
}

void iteration_stats(const Place& place, const float* values, int64_t n, const int32_t* counts,
                     int64_t k, int64_t batch, double* out, double* scratch) {
    require(n >= 0 && k >= 0 && batch >= 0, "iteration_stats: negative size");
    require((out != nullptr || batch == 0) && (values != nullptr || n == 0 || batch == 0),
            "iteration_stats: null pointer");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::iteration_stats(place, values, n, counts, k, batch, out, scratch));
        return;
    }
    cpu::iteration_stats(values, n, counts, k, batch, out);
}

int64_t iteration_stats_scratch(const Place& place, int64_t n, int64_t k, int64_t batch) {
    require(n >= 0 && k >= 0 && batch >= 0, "iteration_stats_scratch: negative size");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(return cuda::iteration_stats_scratch(n, k, batch));
    }
    return 0;  // the CPU sums need none
}

void sum_slices(const Place& place, const void* slices, int64_t nslices, size_t slice_bytes,
                SumType type, int64_t count, void* out) {
    const size_t esz = type == SumType::Float64 ? 8 : 4;
    require(nslices >= 1 && count >= 0, "sum_slices: need nslices >= 1 and count >= 0");
    require(count == 0 || (slices && out), "sum_slices: null pointer");
    require(slice_bytes >= size_t(count) * esz && slice_bytes % esz == 0,
            "sum_slices: slice_bytes must hold count values and keep them aligned");
    if (on_cuda(place)) {
        FK_CUDA_OR_FAIL(cuda::sum_slices(place, slices, nslices, slice_bytes, type, count, out));
        return;
    }
    cpu::sum_slices(slices, nslices, slice_bytes, type, count, out);
}

} // namespace kernels
} // namespace flashkmeans
