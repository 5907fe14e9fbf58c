// FlashAssign (CPU): labels[i] = argmin_j ||x_i - c_j||^2 (L2) or
// argmax_j x_i.c_j (IP), and optionally the distance, computed exactly as
// faiss::IndexFlatL2 / IndexFlatIP::search(k = 1) computes them.
//
// Why FAISS's blocks: OpenBLAS's sgemm rounds a dot product differently
// depending on where its row sits in the micro-kernel (the Haswell and Zen
// kernels sum rows 8-15 of each 16-row panel in another order than rows 0-7)
// and on how OpenBLAS's own threads split the matrix. Two copies of a centroid
// then get different distances, and any tiling other than FAISS's rounds some
// near-ties the other way, after which a Lloyd run drifts from FAISS's. The
// one decomposition whose every rounding is FAISS's is FAISS's own: blocks of
// `distance_compute_blas_query_bs` points by `distance_compute_blas_database_bs`
// centroids, one sgemm each with FAISS's arguments, called from one thread so
// that OpenBLAS threads it exactly as it threads FAISS's call; below
// `distance_compute_blas_threshold` points, FAISS's direct fvec distances.
// The result is then bitwise FAISS's on every core type OpenBLAS dispatches to,
// and independent of our own thread count.
//
// What stays ours: the n x k matrix is never stored. The epilogue folds each
// block into a running (min, argmin) per row, four lanes at a time, where
// FAISS writes the distances back and scans them one by one.
//
// Scores: L2 compares FAISS's `||x||^2 + ||c||^2 - 2 x.c` clamped at 0; IP
// compares x.c. Ascending j with a strict comparison keeps the lowest index
// among equal values, as FAISS's SingleBestResultHandler does. Exact
// duplicate centroids are a true tie, but the kernel position dependence above
// can round the later copy lower, so each label is mapped to the lowest
// index holding the same centroid. Precision::TF32 has no CPU meaning.
#include "cpu_kernels.h"

#include <cblas.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <vector>

namespace flashkmeans {
namespace cpu {

namespace {

/// One problem of the batch, with the pointers already offset.
struct Problem {
    const float* x;
    const float* c;
    const float* c_norms; // null for IP
    const float* x_norms; // null: computed per block (L2 only)
    int64_t n, k, d;
    bool l2;
    int32_t* labels;
    float* distances; // optional
    float* second;    // optional: the runner-up's value
};

Problem problem(const kernels::AssignArgs& a, int64_t b) {
    Problem p;
    p.n = a.n;
    p.k = a.k;
    p.d = a.d;
    p.l2 = a.metric == Metric::L2;
    p.x = static_cast<const float*>(a.x) + b * a.n * a.d;
    p.c = static_cast<const float*>(a.centroids) + b * a.k * a.d;
    p.c_norms = p.l2 ? a.centroid_norms + b * a.k : nullptr;
    p.x_norms = (p.l2 && a.x_norms) ? a.x_norms + b * a.n : nullptr;
    p.labels = a.labels + b * a.n;
    p.distances = a.distances ? a.distances + b * a.n : nullptr;
    p.second = a.second ? a.second + b * a.n : nullptr;
    return p;
}

/// FAISS's L2 value: `||x||^2 + ||c||^2 - 2 x.c`, round-off negatives to 0.
inline float l2_distance(float x_norm, float c_norm, float ip) {
    const float s = x_norm + c_norm - 2 * ip;
    return s < 0 ? 0 : s;
}

/// Running best of one row: L2 keeps the smallest distance, IP the largest
/// inner product; the first index wins among equal values. `second` is the
/// best value among the others (equal to `value` after a tie).
struct Best {
    float value, second;
    int32_t arg = -1;
    explicit Best(bool l2)
            : value(l2 ? std::numeric_limits<float>::infinity()
                       : -std::numeric_limits<float>::infinity()),
              second(value) {}
    void fold(bool l2, float v, int64_t j) {
        if (l2 ? v < value : v > value) {
            second = value;
            value = v;
            arg = int32_t(j);
        } else if (l2 ? v < second : v > second) {
            second = v;
        }
    }
};

/// canonical[j] = the lowest index whose centroid equals centroid j, element
/// by element (so +0 and -0 match): a label on a later copy moves there.
std::vector<int32_t> canonical_copies(const Problem& p) {
    std::vector<int32_t> canon(size_t(p.k));
    std::unordered_multimap<uint64_t, int32_t> seen;
    seen.reserve(size_t(p.k));
    for (int64_t j = 0; j < p.k; j++) {
        const float* cj = p.c + j * p.d;
        uint64_t h = 1469598103934665603ull;
        for (int64_t t = 0; t < p.d; t++) {
            uint32_t bits;
            const float v = cj[t] == 0 ? 0.f : cj[t];
            std::memcpy(&bits, &v, 4);
            h = (h ^ bits) * 1099511628211ull;
        }
        canon[size_t(j)] = int32_t(j);
        auto range = seen.equal_range(h);
        for (auto it = range.first; it != range.second; ++it) {
            const float* ci = p.c + int64_t(it->second) * p.d;
            if (std::equal(cj, cj + p.d, ci)) {
                canon[size_t(j)] = it->second;
                break;
            }
        }
        if (canon[size_t(j)] == j) {
            seen.emplace(h, int32_t(j));
        }
    }
    return canon;
}

/// Writes row i's label (moved to the first copy of its centroid) and value.
/// A row whose every distance is inf or NaN keeps FAISS's "no result", -1.
inline void store(const Problem& p, const std::vector<int32_t>& canon, int64_t i, const Best& b) {
    p.labels[i] = b.arg < 0 ? -1 : canon[size_t(b.arg)];
    if (p.distances) {
        p.distances[i] = b.value;
    }
    if (p.second) {
        p.second[i] = b.second;
    }
}

/// Fewer points than FAISS's BLAS threshold: FAISS's direct distances.
void assign_direct(const Problem& p, const std::vector<int32_t>& canon) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < p.n; i++) {
        const float* xi = p.x + i * p.d;
        Best b(p.l2);
        for (int64_t j = 0; j < p.k; j++) {
            const float* cj = p.c + j * p.d;
            b.fold(p.l2, p.l2 ? faiss::fvec_L2sqr(xi, cj, size_t(p.d))
                              : faiss::fvec_inner_product(xi, cj, size_t(p.d)),
                   j);
        }
        store(p, canon, i, b);
    }
}

/// Folds one row of a block (inner products of centroids j0..j0+kc) into
/// its running best. Four lanes each keep their own (best, first index); the
/// lanes then combine by (value, index), which is the serial scan's result.
/// The arithmetic is the scalar formula's, one operation at a time (no FMA),
/// so every value rounds as FAISS's does. kSecond: also the runner-up, each
/// lane keeping its own, the others' bests joining them at the end.
template <bool kSecond>
void fold_row(const float* ip, int64_t kc, int64_t j0, const float* c_norms, float x_norm, bool l2,
              Best& best) {
    int64_t j = 0;
#if defined(__SSE2__)
    const __m128 xn = _mm_set1_ps(x_norm), two = _mm_set1_ps(2.f), zero = _mm_setzero_ps();
    __m128 lane_best = _mm_set1_ps(best.value), lane_second = _mm_set1_ps(best.second);
    __m128i lane_arg = _mm_set1_epi32(-1), jv = _mm_setr_epi32(0, 1, 2, 3);
    const __m128i four = _mm_set1_epi32(4);
    for (; j + 4 <= kc; j += 4) {
        __m128 s = _mm_loadu_ps(ip + j);
        __m128 better;
        if (l2) {
            s = _mm_sub_ps(_mm_add_ps(xn, _mm_loadu_ps(c_norms + j)), _mm_mul_ps(two, s));
            s = _mm_max_ps(s, zero); // the clamp: s < 0 ? 0 : s (no -0 or NaN here)
            better = _mm_cmplt_ps(s, lane_best);
            if (kSecond) { // the loser of (s, best) may be the new runner-up
                lane_second = _mm_min_ps(lane_second, _mm_max_ps(s, lane_best));
            }
        } else {
            better = _mm_cmpgt_ps(s, lane_best);
            if (kSecond) {
                lane_second = _mm_max_ps(lane_second, _mm_min_ps(s, lane_best));
            }
        }
        lane_best = _mm_or_ps(_mm_and_ps(better, s), _mm_andnot_ps(better, lane_best));
        const __m128i b = _mm_castps_si128(better);
        lane_arg = _mm_or_si128(_mm_and_si128(b, jv), _mm_andnot_si128(b, lane_arg));
        jv = _mm_add_epi32(jv, four);
    }
    alignas(16) float v[4], v2[4];
    alignas(16) int32_t a[4];
    _mm_store_ps(v, lane_best);
    _mm_store_ps(v2, lane_second);
    _mm_store_si128(reinterpret_cast<__m128i*>(a), lane_arg);
    int lane = -1;
    for (int l = 0; l < 4; l++) {
        if (a[l] < 0) {
            continue; // this lane found nothing better than the running best
        }
        if (lane < 0 || (l2 ? v[l] < v[lane] : v[l] > v[lane]) || (v[l] == v[lane] && a[l] < a[lane])) {
            lane = l;
        }
    }
    if (kSecond) {
        // every lane's runner-up, and the bests of the lanes not chosen (a
        // lane that found nothing holds the running best, a real value too)
        for (int l = 0; l < 4; l++) {
            float c = v2[l];
            if (lane >= 0 && l != lane && (l2 ? v[l] < c : v[l] > c)) {
                c = v[l];
            }
            if (l2 ? c < best.second : c > best.second) {
                best.second = c;
            }
        }
    }
    if (lane >= 0) {
        best.value = v[lane];
        best.arg = int32_t(j0 + a[lane]);
    }
#endif
    for (; j < kc; j++) {
        best.fold(l2, l2 ? l2_distance(x_norm, c_norms[j], ip[j]) : ip[j], j0 + j);
    }
}

/// FAISS's blocks: sgemm of bs_y centroids by bs_x points (column-major
/// ip[i][j] = x_i . c_j), then each row of the block folded into its running
/// best. The fold runs on this thread: OpenBLAS's threads are still spinning
/// after the sgemm, and OpenMP threads beside them make it slower, not faster.
void assign_blocks(const Problem& p, const std::vector<int32_t>& canon) {
    const int64_t bs_x = faiss::distance_compute_blas_query_bs;
    const int64_t bs_y = faiss::distance_compute_blas_database_bs;
    std::vector<float> ip(size_t(std::min(bs_x, p.n)) * size_t(std::min(bs_y, p.k)));
    std::vector<float> block_norms;
    std::vector<Best> best;
    for (int64_t i0 = 0; i0 < p.n; i0 += bs_x) {
        const int64_t m = std::min(bs_x, p.n - i0);
        const float* xn = nullptr;
        if (p.l2) {
            if (p.x_norms) {
                xn = p.x_norms + i0;
            } else {
                block_norms.resize(size_t(m));
                faiss::fvec_norms_L2sqr(block_norms.data(), p.x + i0 * p.d, size_t(p.d), size_t(m));
                xn = block_norms.data();
            }
        }
        best.assign(size_t(m), Best(p.l2));
        for (int64_t j0 = 0; j0 < p.k; j0 += bs_y) {
            const int64_t kc = std::min(bs_y, p.k - j0);
            cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, int(kc), int(m), int(p.d), 1.0f,
                        p.c + j0 * p.d, int(p.d), p.x + i0 * p.d, int(p.d), 0.0f, ip.data(),
                        int(kc));
            for (int64_t i = 0; i < m; i++) {
                const float* row = ip.data() + i * kc;
                const float* cn = p.l2 ? p.c_norms + j0 : nullptr;
                const float xni = p.l2 ? xn[i] : 0.f;
                if (p.second) {
                    fold_row<true>(row, kc, j0, cn, xni, p.l2, best[size_t(i)]);
                } else {
                    fold_row<false>(row, kc, j0, cn, xni, p.l2, best[size_t(i)]);
                }
            }
        }
        for (int64_t i = 0; i < m; i++) {
            store(p, canon, i0 + i, best[size_t(i)]);
        }
    }
}

/// Reference kernel: plain in-order fp32 dot products, one point at a time,
/// the same score formulas. Slow (no BLAS) but obviously right.
void assign_reference(const Problem& p, const std::vector<int32_t>& canon) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < p.n; i++) {
        const float* xi = p.x + i * p.d;
        const float xn = p.l2 ? (p.x_norms ? p.x_norms[i] : faiss::fvec_norm_L2sqr(xi, size_t(p.d)))
                              : 0.f;
        Best b(p.l2);
        for (int64_t j = 0; j < p.k; j++) {
            const float* cj = p.c + j * p.d;
            float ip = 0;
            for (int64_t t = 0; t < p.d; t++) {
                ip += xi[t] * cj[t];
            }
            b.fold(p.l2, p.l2 ? l2_distance(xn, p.c_norms[j], ip) : ip, j);
        }
        store(p, canon, i, b);
    }
}

} // namespace

int64_t assign_block_rows() {
    return int64_t(faiss::distance_compute_blas_query_bs);
}

void flash_assign(const kernels::AssignArgs& a) {
    // a window of a larger call (streaming) takes that call's path; its
    // blocks are the call's since it starts at a multiple of the block
    if (a.kernel == kernels::AssignKernel::Fused) {
        fused_assign(a); // every row computed alone: call_rows does not matter
        return;
    }
    const int64_t call_rows = a.call_rows != 0 ? a.call_rows : a.n;
    for (int64_t b = 0; b < a.batch; b++) {
        const Problem p = problem(a, b);
        const std::vector<int32_t> canon = canonical_copies(p);
        if (a.kernel == kernels::AssignKernel::Reference) {
            assign_reference(p, canon);
        } else if (call_rows < faiss::distance_compute_blas_threshold) {
            assign_direct(p, canon);
        } else {
            assign_blocks(p, canon);
        }
    }
}

} // namespace cpu
} // namespace flashkmeans
