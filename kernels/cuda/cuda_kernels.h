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
void iteration_stats(const Place& p, const float* values, int64_t n, const int32_t* counts,
                     int64_t k, int64_t batch, double* out, double* scratch);
int64_t iteration_stats_scratch(int64_t n, int64_t k, int64_t batch);
void sum_slices(const Place& p, const void* slices, int64_t nslices, size_t slice_bytes,
                kernels::SumType type, int64_t count, void* out);

} // namespace cuda
} // namespace flashkmeans
