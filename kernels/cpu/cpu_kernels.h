// CPU implementations of the kernels in <flashkmeans/kernels.h>. Arguments
// were validated by kernels/dispatch.cpp; these only compute.
#pragma once

#include <flashkmeans/kernels.h>

namespace flashkmeans {
namespace cpu {

void row_norms(const float* x, int64_t n, int64_t d, float* out);
void flash_assign(const kernels::AssignArgs& a);
/// AssignKernel::Fused (fused_assign.cpp), where fused_assign_supported()
bool fused_assign_supported();
void fused_assign(const kernels::AssignArgs& a);
void fused_group_assign(const kernels::GroupAssignArgs& a);
void fused_pair_scores(const float* x, const float* x_norms, const int64_t* x_rows, const float* c,
                       const float* c_norms, const int32_t* c_rows, int64_t m, int64_t d, bool l2,
                       float* out);
/// FAISS's BLAS block of points (kernels::assign_block_rows)
int64_t assign_block_rows();
void sort_inverse_update(const kernels::UpdateArgs& a);
void finalize_centroids(const kernels::FinalizeArgs& a);
void postprocess_centroids(float* c, int64_t k, int64_t d, bool spherical, bool round_to_int);
void gather_rows(const float* x, int64_t d, const int64_t* ids, int64_t m, float* out);
void scatter_rows(const float* rows, int64_t m, int64_t d, const int64_t* ids, float* x);
void kmeanspp_init(const kernels::KMeansPPArgs& a);
/// kmeanspp_init's steps (kernels::kmeanspp_add_row and its companions)
int64_t kmeanspp_block_rows();
int64_t kmeanspp_uniform_pick(double u, int64_t n);
void kmeanspp_add_row(const float* x, int64_t n, int64_t d, const float* c, bool first, float* dist,
                      double* block_sums);
int64_t kmeanspp_last_positive(const float* dist, int64_t n);
// moved_filter.cpp
void rows_differ(const void* a, const void* b, int64_t rows, size_t row_bytes, uint8_t* flags);
int64_t select_ids(const uint8_t* flags, const int32_t* labels, int64_t count, int32_t* ids);
void gather_rows_by_id(const void* x, size_t row_bytes, const int32_t* ids, int64_t m, void* out);
int64_t merge_moved(bool l2, int64_t n, const uint8_t* flags, const int32_t* ids,
                    const int32_t* cand_labels, const float* cand_distances, const float* x_norms,
                    const float* c_norms, double rel_tol, int32_t* labels, float* distances);
void scatter_assignment(const int32_t* ids, int64_t m, const int32_t* l, const float* dist,
                        int32_t* labels, float* distances);
void iteration_stats(const float* values, int64_t n, const int32_t* counts, int64_t k,
                     int64_t batch, double* out);
void sum_slices(const void* slices, int64_t nslices, size_t slice_bytes, kernels::SumType type,
                int64_t count, void* out);

} // namespace cpu
} // namespace flashkmeans
