// CUDA implementations of the kernels in <flashkmeans/kernels.h>. Arguments
// were validated by kernels/dispatch.cpp (pointers are device pointers);
// these enqueue work on place.stream and return without synchronising.
#pragma once

#include <flashkmeans/kernels.h>

namespace flashkmeans {
namespace cuda {

int device_count();
void row_norms(const Place& p, const void* x, DType dtype, int64_t n, int64_t d, float* out);
void flash_assign(const Place& p, const kernels::AssignArgs& a);
size_t update_workspace_bytes(int64_t n, int64_t d, int64_t k, int64_t batch, bool accumulate);
void sort_inverse_update(const Place& p, const kernels::UpdateArgs& a);
void finalize_centroids(const Place& p, const kernels::FinalizeArgs& a);
void postprocess_centroids(const Place& p, float* c, int64_t k, int64_t d, bool spherical,
                           bool round_to_int, int64_t batch);
void gather_rows(const Place& p, const void* x, DType dtype, int64_t d, const int64_t* host_ids,
                 int64_t m, float* out);
void scatter_rows(const Place& p, const float* rows, int64_t m, int64_t d, const int64_t* host_ids,
                  float* x);
void pad_rows(const Place& p, const void* x, DType dtype, int64_t rows, int64_t d, int64_t dp,
              void* out);
void widen_labels(const Place& p, const int32_t* src, int64_t count, int64_t* dst);
void convert_from_float(const Place& p, const float* src, DType dtype, int64_t count, void* dst);
void kmeanspp_init(const Place& p, const kernels::KMeansPPArgs& a);
// moved_filter.cu
void rows_differ(const Place& p, const void* a, const void* b, int64_t rows, size_t row_bytes,
                 uint8_t* flags);
int64_t select_ids(const Place& p, const uint8_t* flags, const int32_t* labels, int64_t count,
                   int32_t* ids, void* workspace, size_t workspace_bytes);
size_t select_ids_workspace(int64_t count);
void gather_rows_by_id(const Place& p, const void* x, size_t row_bytes, const int32_t* ids,
                       int64_t m, void* out);
int64_t merge_moved(const Place& p, Metric metric, int64_t n, const uint8_t* flags,
                    const int32_t* ids, const int32_t* cand_labels, const float* cand_distances,
                    const float* x_norms, const float* c_norms, double rel_tol, int32_t* labels,
                    float* distances, int64_t* scratch);
void scatter_assignment(const Place& p, const int32_t* ids, int64_t m, const int32_t* l,
                        const float* dist, int32_t* labels, float* distances);
void iteration_stats(const Place& p, const float* values, int64_t n, const int32_t* counts,
                     int64_t k, int64_t batch, double* out, double* scratch);
int64_t iteration_stats_scratch(int64_t n, int64_t k, int64_t batch);
void sum_slices(const Place& p, const void* slices, int64_t nslices, size_t slice_bytes,
                kernels::SumType type, int64_t count, void* out);

} // namespace cuda
} // namespace flashkmeans
