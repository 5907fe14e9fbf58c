// Finalize (CPU): turns the cluster sums of sort_inverse_update into centroids,
// and FAISS's post-processing (spherical, int_centroids).
//
// Why this shape: it reproduces the tail of faiss compute_centroids to the bit
// (`float norm = 1 / hassign; c *= norm`, i.e. a multiply by the float
// reciprocal, not a division), leaves empty clusters at zero as FAISS does
// before split_clusters, and measures the shift in the same pass over the
// k x d values so the engine needs no second read of the centroids.
// Post-processing uses FAISS's own row norm (faiss::fvec_norm_L2sqr) so the
// rounding of the spherical renormalisation matches fvec_renorm_L2 exactly.
#include "cpu_kernels.h"

#include <faiss/utils/distances.h>

#include <algorithm>
#include <cmath>

namespace flashkmeans {
namespace cpu {

void finalize_centroids(const kernels::FinalizeArgs& a) {
    const int64_t k = a.k, d = a.d;
    for (int64_t b = 0; b < a.batch; b++) {
        const float* sums = a.sums + b * k * d;
        const float* weight_sums = a.weight_sums + b * k;
        float* centroids = a.centroids + b * k * d;
        int32_t n_empty = 0;
        double max_shift = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_empty) reduction(max : max_shift) \
        if ((k - a.k_begin) * d > (int64_t(1) << 15))
        for (int64_t j = a.k_begin; j < k; j++) {
            const float* s = sums + j * d;
            float* c = centroids + j * d;
            if (weight_sums[j] == 0) {
                std::fill(c, c + d, 0.0f);
                n_empty++;
                continue;
            }
            const float norm = 1 / weight_sums[j];
            double shift = 0;
            for (int64_t t = 0; t < d; t++) {
                const float v = s[t] * norm;
                const double delta = double(v) - double(c[t]);
                shift += delta * delta;
                c[t] = v;
            }
            max_shift = std::max(max_shift, shift);
        }
        if (a.norms) {
            // the next assignment's norms, as row_norms computes them
            row_norms(centroids + a.k_begin * d, k - a.k_begin, d, a.norms + b * k + a.k_begin);
        }
        if (a.n_empty) {
            a.n_empty[b] = n_empty;
        }
        if (a.max_shift) {
            a.max_shift[b] = float(max_shift);
        }
    }
}

void postprocess_centroids(float* c, int64_t k, int64_t d, bool spherical, bool round_to_int) {
    if (spherical) {
        // faiss fvec_renorm_L2: rows of norm 0 are left alone
#pragma omp parallel for schedule(static) if (k * d > (int64_t(1) << 15))
        for (int64_t i = 0; i < k; i++) {
            float* ci = c + i * d;
            const float nr = faiss::fvec_norm_L2sqr(ci, size_t(d));
            if (nr > 0) {
                const float inv_nr = 1.0 / sqrtf(nr);
                for (int64_t t = 0; t < d; t++) {
                    ci[t] *= inv_nr;
                }
            }
        }
    }
    if (round_to_int) {
        const int64_t total = k * d;
#pragma omp parallel for schedule(static) if (total > (int64_t(1) << 16))
        for (int64_t i = 0; i < total; i++) {
            c[i] = roundf(c[i]);
        }
    }
}

} // namespace cpu
} // namespace flashkmeans
