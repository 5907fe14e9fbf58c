// FusedAssign (CPU, AssignKernel::Fused): our own FMA micro-kernel with the
// argmin in its epilogue, instead of FAISS's sgemm blocks.
//
// Why: FAISS's blocks are kept for bitwise parity with faiss::Clustering
// (flash_assign.cpp), and that ties the CPU path to the installed BLAS's
// sgemm plus a single-threaded fold over a 4096 x 1024 block of scores. This
// kernel keeps a 6 x 16 tile of scores in registers, folds it into each row's
// running best while it is still there, and runs its own threads.
//
// The one rule that makes it useful beyond speed: every score is a pure
// function of (x_i, c_j, d). Each (i, j) product is one lane of one
// accumulator, summed as acc = fma(x_i[t], c_j[t], acc) for t = 0, 1, ...,
// d - 1, whatever the tile, thread, batch, chunk or gathered subset it is
// computed in (padding rows and columns have lanes of their own). So two
// copies of a centroid tie exactly, a centroid that did not move scores every
// point bitwise as before, and a subset of rows gets bitwise the labels it
// gets in the whole call: exact pruning then changes no label at all.
// Not FAISS's bits (FAISS sums in the BLAS's order), so not the default.
//
// Scores, as in flash_assign.cpp: L2 compares (||x||^2 + ||c||^2) - 2 x.c
// clamped at 0, IP compares x.c; ties go to the lowest index. Internally a
// smaller score is better: IP folds -x.c (negation is exact), and padding
// columns score +inf so they never win.
#include "cpu_kernels.h"

#include <faiss/utils/distances.h>
#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace flashkmeans {
namespace cpu {

namespace {

constexpr int64_t kRows = 6;               // rows of a register tile
constexpr int64_t kCols = 16;              // centroids of a register tile (two 8-lane vectors)
constexpr int64_t kLanes = 8;              // lanes of one row's running best
constexpr int64_t kBlockRows = 96;         // rows a thread packs and owns at a time
constexpr int64_t kChunkBytes = 256 << 10; // centroids kept hot in L2 per pass

constexpr float kInf = std::numeric_limits<float>::infinity();

/// Centroids 16 to a panel, element t of column l of panel p at
/// data[(p*d + t)*16 + l]; column l of panel p is centroid index[p*16 + l],
/// bias = ||c||^2 (L2) or 0 (IP), and +inf for padding columns (which never
/// win). A run of panels holds ascending indices, so a strict comparison
/// keeps the lowest index among equal scores.
struct PackedCentroids {
    int64_t panels = 0;
    std::vector<float> data, bias;
    std::vector<int32_t> index;
};

/// Appends the centroids `ids` (ascending) as new panels.
void pack_panels(PackedCentroids& pc, const float* c, const float* c_norms, int64_t d,
                 const int32_t* ids, int64_t count) {
    const int64_t p0 = pc.panels, panels = (count + kCols - 1) / kCols;
    pc.panels += panels;
    pc.data.resize(size_t(pc.panels * kCols * d), 0.f);
    pc.bias.resize(size_t(pc.panels * kCols), kInf);
    pc.index.resize(size_t(pc.panels * kCols), std::numeric_limits<int32_t>::max());
    for (int64_t r = 0; r < count; r++) {
        const int64_t col = p0 * kCols + r, j = ids[r];
        float* panel = pc.data.data() + (col / kCols) * kCols * d + col % kCols;
        for (int64_t t = 0; t < d; t++) {
            panel[t * kCols] = c[j * d + t];
        }
        pc.bias[size_t(col)] = c_norms ? c_norms[j] : 0.f;
        pc.index[size_t(col)] = int32_t(j);
    }
}

PackedCentroids pack_centroids(const float* c, const float* c_norms, int64_t k, int64_t d) {
    std::vector<int32_t> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; j++) {
        ids[size_t(j)] = int32_t(j);
    }
    PackedCentroids pc;
    pack_panels(pc, c, c_norms, d, ids.data(), k);
    return pc;
}

/// Rows [i0, i0 + m) of x (m <= kRows), element t of row r at out[t*6 + r];
/// missing rows are zero (their lanes are computed and ignored).
void pack_rows(const float* x, int64_t i0, int64_t m, int64_t d, float* out) {
    for (int64_t t = 0; t < d; t++) {
        for (int64_t r = 0; r < kRows; r++) {
            out[t * kRows + r] = r < m ? x[(i0 + r) * d + t] : 0.f;
        }
    }
}

/// One row's best over its lanes: lane l has seen columns l and l + 8 of
/// every panel, in increasing order, so it holds its (smallest, first) pair.
struct RowState {
    float best[kLanes];
    float second[kLanes];
    int32_t arg[kLanes];
};

#if defined(__x86_64__)

#define FK_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline

/// One vector of products' scores, smaller is better: L2's clamped
/// (||x||^2 + bias) - 2 x.c, IP's -x.c + bias. The padding's +inf bias
/// survives both (inf - finite, -finite + inf).
template <bool kL2>
FK_AVX2 __m256 score(__m256 acc, __m256 bias, float x_norm) {
    if (kL2) {
        const __m256 s = _mm256_sub_ps(_mm256_add_ps(_mm256_set1_ps(x_norm), bias),
                                       _mm256_mul_ps(_mm256_set1_ps(2.f), acc));
        return _mm256_max_ps(s, _mm256_setzero_ps()); // the clamp: s < 0 ? 0 : s
    }
    return _mm256_add_ps(_mm256_sub_ps(_mm256_setzero_ps(), acc), bias);
}

/// Folds 8 scores (columns j) into a row's lanes; a strict comparison keeps
/// each lane's first index among equal values.
template <bool kSecond>
FK_AVX2 void fold(RowState& st, __m256 s, __m256i j) {
    const __m256 best = _mm256_loadu_ps(st.best);
    if (kSecond) { // the loser of (s, best) may be the new runner-up
        _mm256_storeu_ps(st.second,
                         _mm256_min_ps(_mm256_loadu_ps(st.second), _mm256_max_ps(s, best)));
    }
    const __m256 better = _mm256_cmp_ps(s, best, _CMP_LT_OQ);
    _mm256_storeu_ps(st.best, _mm256_blendv_ps(best, s, better));
    const __m256 arg = _mm256_loadu_ps(reinterpret_cast<const float*>(st.arg));
    _mm256_storeu_ps(reinterpret_cast<float*>(st.arg),
                     _mm256_blendv_ps(arg, _mm256_castsi256_ps(j), better));
}

/// The 6 x 16 tile of x.c by FMA, t in increasing order, then each row's 16
/// scores folded into its lanes. Row r's element t is xr[r][t * stride]:
/// packed rows (stride 6, one cache line feeds every row: the faster for a
/// tile that sees all the centroids) or rows read in place (stride 1: any
/// subset of rows makes a tile without a copy). `xn`: the rows' ||x||^2
/// (L2) or null (IP).
template <bool kL2, bool kSecond>
__attribute__((target("avx2,fma"))) void tile(const float* const* xr, int64_t stride,
                                              const float* cp, const float* bias, int64_t d,
                                              const int32_t* index, const float* xn,
                                              RowState* rows) {
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    for (int64_t t = 0, at = 0; t < d; t++, at += stride) {
        const __m256 c0 = _mm256_loadu_ps(cp + t * kCols);
        const __m256 c1 = _mm256_loadu_ps(cp + t * kCols + 8);
        __m256 xb = _mm256_broadcast_ss(x0 + at);
        a00 = _mm256_fmadd_ps(xb, c0, a00);
        a01 = _mm256_fmadd_ps(xb, c1, a01);
        xb = _mm256_broadcast_ss(x1 + at);
        a10 = _mm256_fmadd_ps(xb, c0, a10);
        a11 = _mm256_fmadd_ps(xb, c1, a11);
        xb = _mm256_broadcast_ss(x2 + at);
        a20 = _mm256_fmadd_ps(xb, c0, a20);
        a21 = _mm256_fmadd_ps(xb, c1, a21);
        xb = _mm256_broadcast_ss(x3 + at);
        a30 = _mm256_fmadd_ps(xb, c0, a30);
        a31 = _mm256_fmadd_ps(xb, c1, a31);
        xb = _mm256_broadcast_ss(x4 + at);
        a40 = _mm256_fmadd_ps(xb, c0, a40);
        a41 = _mm256_fmadd_ps(xb, c1, a41);
        xb = _mm256_broadcast_ss(x5 + at);
        a50 = _mm256_fmadd_ps(xb, c0, a50);
        a51 = _mm256_fmadd_ps(xb, c1, a51);
    }
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
    const __m256i ja = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index));
    const __m256i jb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index + 8));
    const float no_norm[kRows] = {};
    const float* norm = kL2 ? xn : no_norm;
    fold<kSecond>(rows[0], score<kL2>(a00, b0, norm[0]), ja);
    fold<kSecond>(rows[0], score<kL2>(a01, b1, norm[0]), jb);
    fold<kSecond>(rows[1], score<kL2>(a10, b0, norm[1]), ja);
    fold<kSecond>(rows[1], score<kL2>(a11, b1, norm[1]), jb);
    fold<kSecond>(rows[2], score<kL2>(a20, b0, norm[2]), ja);
    fold<kSecond>(rows[2], score<kL2>(a21, b1, norm[2]), jb);
    fold<kSecond>(rows[3], score<kL2>(a30, b0, norm[3]), ja);
    fold<kSecond>(rows[3], score<kL2>(a31, b1, norm[3]), jb);
    fold<kSecond>(rows[4], score<kL2>(a40, b0, norm[4]), ja);
    fold<kSecond>(rows[4], score<kL2>(a41, b1, norm[4]), jb);
    fold<kSecond>(rows[5], score<kL2>(a50, b0, norm[5]), ja);
    fold<kSecond>(rows[5], score<kL2>(a51, b1, norm[5]), jb);
}

template <bool kL2, bool kSecond>
__attribute__((target("avx2,fma"))) void block(const float* const* xr, int64_t stride,
                                               const PackedCentroids& pc, int64_t d,
                                               int64_t panel_begin, int64_t panel_end,
                                               const float* xn, RowState* rows) {
    for (int64_t p = panel_begin; p < panel_end; p++) {
        tile<kL2, kSecond>(xr, stride, pc.data.data() + p * kCols * d, pc.bias.data() + p * kCols,
                           d, pc.index.data() + p * kCols, xn, rows);
    }
}

#endif

void reset(RowState& st) {
    std::fill(st.best, st.best + kLanes, kInf);
    std::fill(st.second, st.second + kLanes, kInf);
    std::fill(st.arg, st.arg + kLanes, -1);
}

/// A row's result, smaller is better: best score, its index (-1: none), and
/// the runner-up among the other columns seen.
struct Finished {
    float best, second;
    int32_t arg;
};

/// Combines one row's lanes: the smallest value, the lowest index among
/// equal ones (the serial scan's pick); the runner-up is the smallest of
/// every lane's runner-up and the other lanes' bests.
Finished finish(const RowState& st) {
    int lane = -1;
    for (int l = 0; l < kLanes; l++) {
        if (st.arg[l] < 0) {
            continue;
        }
        if (lane < 0 || st.best[l] < st.best[lane] ||
            (st.best[l] == st.best[lane] && st.arg[l] < st.arg[lane])) {
            lane = l;
        }
    }
    Finished f{kInf, kInf, -1};
    if (lane >= 0) {
        f.best = st.best[lane];
        f.arg = st.arg[lane];
    }
    for (int l = 0; l < kLanes; l++) {
        f.second = std::min(f.second, st.second[l]);
        if (l != lane) {
            f.second = std::min(f.second, st.best[l]);
        }
    }
    return f;
}

void finish_row(const RowState& st, bool l2, int64_t i, const kernels::AssignArgs& a, int64_t b) {
    const Finished f = finish(st);
    const int64_t at = b * a.n + i;
    const float sign = l2 ? 1.f : -1.f; // IP was folded as -x.c
    a.labels[at] = f.arg;
    if (a.distances) {
        a.distances[at] = sign * f.best;
    }
    if (a.second) {
        a.second[at] = sign * f.second;
    }
}

} // namespace

bool fused_assign_supported() {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

namespace {

#if defined(__x86_64__)
/// Problem b of the batch.
void assign_problem(const kernels::AssignArgs& a, int64_t b) {
    const int64_t n = a.n, k = a.k, d = a.d;
    const bool l2 = a.metric == Metric::L2;
    const float* x = static_cast<const float*>(a.x) + b * n * d;
    const PackedCentroids pc = pack_centroids(static_cast<const float*>(a.centroids) + b * k * d,
                                              l2 ? a.centroid_norms + b * k : nullptr, k, d);
    const float* x_norms = (l2 && a.x_norms) ? a.x_norms + b * n : nullptr;
    // panels per pass: what stays in L2 while a thread's block of rows runs through it
    const int64_t chunk = std::max<int64_t>(1, kChunkBytes / (kCols * d * int64_t(sizeof(float))));
    const int64_t blocks = (n + kBlockRows - 1) / kBlockRows;
    auto run = [&](auto l2_tag, auto second_tag) {
        constexpr bool kL2 = decltype(l2_tag)::value, kSecond = decltype(second_tag)::value;
#pragma omp parallel
        {
            std::vector<float> xp(static_cast<size_t>(kBlockRows * d));
            std::vector<RowState> rows(static_cast<size_t>(kBlockRows));
            const float* xr[kBlockRows];
            float norms[kBlockRows];
#pragma omp for schedule(dynamic, 1)
            for (int64_t blk = 0; blk < blocks; blk++) {
                const int64_t i0 = blk * kBlockRows, m = std::min(kBlockRows, n - i0);
                const int64_t tiles = (m + kRows - 1) / kRows;
                for (int64_t tr = 0; tr < tiles; tr++) {
                    pack_rows(x, i0 + tr * kRows, std::min(kRows, m - tr * kRows), d,
                              xp.data() + tr * kRows * d);
                }
                for (int64_t r = 0; r < tiles * kRows; r++) {
                    xr[r] = xp.data() + (r / kRows) * kRows * d + r % kRows;
                    reset(rows[size_t(r)]);
                    norms[r] = 0.f;
                    if (kL2 && r < m) {
                        norms[r] = x_norms ? x_norms[i0 + r]
                                           : faiss::fvec_norm_L2sqr(x + (i0 + r) * d, size_t(d));
                    }
                }
                for (int64_t p0 = 0; p0 < pc.panels; p0 += chunk) {
                    const int64_t p1 = std::min(pc.panels, p0 + chunk);
                    for (int64_t tr = 0; tr < tiles; tr++) {
                        block<kL2, kSecond>(xr + tr * kRows, kRows, pc, d, p0, p1,
                                            norms + tr * kRows, rows.data() + tr * kRows);
                    }
                }
                for (int64_t r = 0; r < m; r++) {
                    finish_row(rows[size_t(r)], kL2, i0 + r, a, b);
                }
            }
        }
    };
    using T = std::true_type;
    using F = std::false_type;
    if (l2) {
        a.second ? run(T{}, T{}) : run(T{}, F{});
    } else {
        a.second ? run(F{}, T{}) : run(F{}, F{});
    }
}
#endif

} // namespace

#if defined(__x86_64__)
namespace {

/// Eight pairs' x.c at once, each its own chain of fma in increasing t: the
/// tile's arithmetic for one lane (a gather would cost more than it saves).
__attribute__((target("avx2,fma"))) void pair_dots(const float* const* xs, const float* const* cs,
                                                   int64_t d, float* out) {
    float acc[8] = {};
    for (int64_t t = 0; t < d; t++) {
        for (int p = 0; p < 8; p++) {
            acc[p] = __builtin_fmaf(xs[p][t], cs[p][t], acc[p]);
        }
    }
    std::copy(acc, acc + 8, out);
}

} // namespace
#endif

void fused_pair_scores(const float* x, const float* x_norms, const int64_t* x_rows, const float* c,
                       const float* c_norms, const int32_t* c_rows, int64_t m, int64_t d, bool l2,
                       float* out) {
#if defined(__x86_64__)
#pragma omp parallel for schedule(static)
    for (int64_t r0 = 0; r0 < m; r0 += 8) {
        const float* xs[8];
        const float* cs[8];
        for (int64_t p = 0; p < 8; p++) {
            const int64_t r = std::min(r0 + p, m - 1); // a short group repeats its last pair
            xs[p] = x + x_rows[r] * d;
            cs[p] = c + int64_t(c_rows[r]) * d;
        }
        float dot[8];
        pair_dots(xs, cs, d, dot);
        for (int64_t p = 0; p < 8 && r0 + p < m; p++) {
            const int64_t r = r0 + p;
            if (l2) { // the tile's formula, then the clamp
                const float s = (x_norms[x_rows[r]] + c_norms[c_rows[r]]) - 2.f * dot[p];
                out[r] = s < 0 ? 0.f : s;
            } else {
                out[r] = dot[p];
            }
        }
    }
#else
    (void)x, (void)x_norms, (void)x_rows, (void)c, (void)c_norms, (void)c_rows, (void)m, (void)d,
            (void)l2, (void)out;
#endif
}

void fused_group_assign(const kernels::GroupAssignArgs& a) {
#if defined(__x86_64__)
    const int64_t m = a.m, d = a.d, G = a.groups;
    const bool l2 = a.metric == Metric::L2;
    // the groups' panels, one run each, in group order
    PackedCentroids pc;
    std::vector<int64_t> first(static_cast<size_t>(G + 1), 0);
    for (int64_t g = 0; g < G; g++) {
        first[size_t(g)] = pc.panels;
        pack_panels(pc, a.centroids, l2 ? a.centroid_norms : nullptr, d,
                    a.members + a.group_begin[g], a.group_begin[g + 1] - a.group_begin[g]);
    }
    first[size_t(G)] = pc.panels;
    const int64_t blocks = (m + kBlockRows - 1) / kBlockRows;
    auto run = [&](auto l2_tag) {
        constexpr bool kL2 = decltype(l2_tag)::value;
#pragma omp parallel
        {
            std::vector<RowState> rows(static_cast<size_t>(kRows));
            const float* xr[kRows];
            float norms[kRows];
            int64_t sub[kBlockRows];
            const float sign = kL2 ? 1.f : -1.f;
#pragma omp for schedule(dynamic, 1)
            for (int64_t blk = 0; blk < blocks; blk++) {
                // per group, the block's rows that need it, six to a tile
                // (the tile reads rows in place, so any subset costs no copy)
                const int64_t i0 = blk * kBlockRows, mb = std::min(kBlockRows, m - i0);
                for (int64_t g = 0; g < G; g++) {
                    int64_t ms = 0;
                    for (int64_t r = 0; r < mb; r++) {
                        if (a.need[(i0 + r) * G + g]) {
                            sub[ms++] = i0 + r;
                        }
                    }
                    for (int64_t s0 = 0; s0 < ms; s0 += kRows) {
                        const int64_t mt = std::min(kRows, ms - s0);
                        for (int64_t r = 0; r < kRows; r++) {
                            const int64_t q = sub[s0 + std::min(r, mt - 1)];
                            const int64_t i = a.rows ? a.rows[q] : q;
                            xr[r] = a.x + i * d;
                            norms[r] = kL2 ? a.x_norms[i] : 0.f;
                            reset(rows[size_t(r)]);
                        }
                        block<kL2, true>(xr, 1, pc, d, first[size_t(g)], first[size_t(g + 1)],
                                         norms, rows.data());
                        for (int64_t r = 0; r < mt; r++) {
                            const Finished f = finish(rows[size_t(r)]);
                            const int64_t at = sub[s0 + r] * G + g;
                            a.best[at] = sign * f.best;
                            a.second[at] = sign * f.second;
                            a.arg[at] = f.arg;
                        }
                    }
                }
            }
        }
    };
    if (l2) {
        run(std::true_type{});
    } else {
        run(std::false_type{});
    }
#else
    (void)a;
#endif
}

void fused_assign(const kernels::AssignArgs& a) {
#if defined(__x86_64__)
    for (int64_t b = 0; b < a.batch; b++) {
        assign_problem(a, b);
    }
#else
    (void)a;
#endif
}

} // namespace cpu
} // namespace flashkmeans
