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
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cpu {

namespace {

constexpr int64_t kRows = 6;               // rows of a register tile
constexpr int64_t kCols = 16;              // centroids of a register tile (two 8-lane vectors)
constexpr int64_t kLanes = 16;             // lanes of one row's running best (AVX2 uses 8)
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

/// One row's best over its lanes: lane l has seen columns l and l + 8 (AVX2)
/// or column l (AVX-512) of every panel, in increasing order, so it holds its
/// (smallest, first) pair. Lanes AVX2 does not use stay empty (index -1).
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

#define FK_AVX512 __attribute__((target("avx512f"), always_inline)) inline

// max and min through their zero-masked forms: the plain ones start from
// _mm512_undefined_ps(), which GCC 12 warns of as uninitialized
constexpr __mmask16 kAll = 0xFFFF;

/// score<kL2> on 16 lanes.
template <bool kL2>
FK_AVX512 __m512 score512(__m512 acc, __m512 bias, float x_norm) {
    if (kL2) {
        const __m512 s = _mm512_sub_ps(_mm512_add_ps(_mm512_set1_ps(x_norm), bias),
                                       _mm512_mul_ps(_mm512_set1_ps(2.f), acc));
        return _mm512_maskz_max_ps(kAll, s, _mm512_setzero_ps());
    }
    return _mm512_add_ps(_mm512_sub_ps(_mm512_setzero_ps(), acc), bias);
}

/// fold<kSecond> on 16 lanes: one panel's 16 columns, column l into lane l.
template <bool kSecond>
FK_AVX512 void fold512(RowState& st, __m512 s, __m512i j) {
    const __m512 best = _mm512_loadu_ps(st.best);
    if (kSecond) {
        _mm512_storeu_ps(st.second, _mm512_maskz_min_ps(kAll, _mm512_loadu_ps(st.second),
                                                        _mm512_maskz_max_ps(kAll, s, best)));
    }
    const __mmask16 better = _mm512_cmp_ps_mask(s, best, _CMP_LT_OQ);
    _mm512_storeu_ps(st.best, _mm512_mask_blend_ps(better, best, s));
    _mm512_storeu_si512(st.arg, _mm512_mask_blend_epi32(better, _mm512_loadu_si512(st.arg), j));
}

/// tile() with AVX-512: 6 rows x kP panels (16 columns each, one vector), the
/// same fma chain per (row, column) in increasing t, so the same bits; two
/// panels give 12 independent accumulators, enough to keep both FMA units
/// busy while the loads stay below them.
template <int kP, bool kL2, bool kSecond>
__attribute__((target("avx512f"))) void tile512(const float* const* xr, int64_t stride,
                                                const float* cp, const float* bias, int64_t d,
                                                const int32_t* index, const float* xn,
                                                RowState* rows) {
    __m512 acc[kRows][kP];
#pragma GCC unroll 6
    for (int r = 0; r < kRows; r++) {
#pragma GCC unroll 2
        for (int p = 0; p < kP; p++) {
            acc[r][p] = _mm512_setzero_ps();
        }
    }
    const int64_t panel = kCols * d;
    for (int64_t t = 0, at = 0; t < d; t++, at += stride) {
        __m512 c[kP];
#pragma GCC unroll 2
        for (int p = 0; p < kP; p++) {
            c[p] = _mm512_loadu_ps(cp + p * panel + t * kCols);
        }
#pragma GCC unroll 6
        for (int r = 0; r < kRows; r++) {
            const __m512 xb = _mm512_set1_ps(xr[r][at]);
#pragma GCC unroll 2
            for (int p = 0; p < kP; p++) {
                acc[r][p] = _mm512_fmadd_ps(xb, c[p], acc[r][p]);
            }
        }
    }
    const float no_norm[kRows] = {};
    const float* norm = kL2 ? xn : no_norm;
#pragma GCC unroll 2
    for (int p = 0; p < kP; p++) { // panel by panel: each lane sees increasing columns
        const __m512 b = _mm512_loadu_ps(bias + p * kCols);
        const __m512i j = _mm512_loadu_si512(index + p * kCols);
#pragma GCC unroll 6
        for (int r = 0; r < kRows; r++) {
            fold512<kSecond>(rows[r], score512<kL2>(acc[r][p], b, norm[r]), j);
        }
    }
}

template <bool kL2, bool kSecond>
__attribute__((target("avx512f"))) void block512(const float* const* xr, int64_t stride,
                                                 const PackedCentroids& pc, int64_t d,
                                                 int64_t panel_begin, int64_t panel_end,
                                                 const float* xn, RowState* rows) {
    int64_t p = panel_begin;
    for (; p + 2 <= panel_end; p += 2) {
        tile512<2, kL2, kSecond>(xr, stride, pc.data.data() + p * kCols * d,
                                 pc.bias.data() + p * kCols, d, pc.index.data() + p * kCols, xn,
                                 rows);
    }
    if (p < panel_end) {
        tile512<1, kL2, kSecond>(xr, stride, pc.data.data() + p * kCols * d,
                                 pc.bias.data() + p * kCols, d, pc.index.data() + p * kCols, xn,
                                 rows);
    }
}

/// The vector width the kernel runs: AVX-512 where the CPU has it, unless
/// FLASHKMEANS_CPU_ISA=avx2 asks for the narrower one. Both give the same
/// bits (each score is its own fma chain); the variable lets the tests run
/// both paths on one machine, as OPENBLAS_CORETYPE does for OpenBLAS.
bool use_avx512() {
    const bool have = __builtin_cpu_supports("avx512f");
    const char* env = std::getenv("FLASHKMEANS_CPU_ISA");
    if (env == nullptr || *env == 0) {
        return have;
    }
    const std::string want(env);
    if (want == "avx2") {
        return false;
    }
    if (want == "avx512") {
        if (!have) {
            throw KernelError("FLASHKMEANS_CPU_ISA=avx512, but this CPU has no AVX-512 (avx512f)");
        }
        return true;
    }
    throw KernelError("FLASHKMEANS_CPU_ISA='" + want +
                      "': expected 'avx2' or 'avx512' (or unset: the widest this CPU has)");
}

/// block() of the width `wide` picks.
template <bool kL2, bool kSecond>
void run_block(bool wide, const float* const* xr, int64_t stride, const PackedCentroids& pc,
               int64_t d, int64_t panel_begin, int64_t panel_end, const float* xn, RowState* rows) {
    if (wide) {
        block512<kL2, kSecond>(xr, stride, pc, d, panel_begin, panel_end, xn, rows);
    } else {
        block<kL2, kSecond>(xr, stride, pc, d, panel_begin, panel_end, xn, rows);
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
Finished finish_lanes(const RowState& st, int lanes) {
    int lane = -1;
    for (int l = 0; l < lanes; l++) {
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
    for (int l = 0; l < lanes; l++) {
        f.second = std::min(f.second, st.second[l]);
        if (l != lane) {
            f.second = std::min(f.second, st.best[l]);
        }
    }
    return f;
}

#if defined(__x86_64__)
/// Lane l of v swapped with lane l ^ h (h = 8, 4, 2, 1), for the reductions
/// below; the zero-masked forms keep GCC 12 from warning of the plain ones'
/// undefined start (as kAll above).
FK_AVX512 __m512i swap_index(int h) {
    alignas(64) int32_t idx[16];
    for (int l = 0; l < 16; l++) {
        idx[l] = l ^ h;
    }
    return _mm512_load_si512(idx);
}

/// The smallest of v's lanes in `mask` (+inf where none).
FK_AVX512 float min_lanes(__mmask16 mask, __m512 v) {
    v = _mm512_mask_blend_ps(mask, _mm512_set1_ps(kInf), v);
    for (int h = 8; h >= 1; h /= 2) {
        v = _mm512_maskz_min_ps(kAll, v, _mm512_maskz_permutexvar_ps(kAll, swap_index(h), v));
    }
    return v[0]; // GCC vector subscript: lane 0
}

/// The smallest of v's lanes in `mask` (INT32_MAX where none).
FK_AVX512 int32_t min_lanes(__mmask16 mask, __m512i v) {
    v = _mm512_mask_blend_epi32(mask, _mm512_set1_epi32(std::numeric_limits<int32_t>::max()), v);
    for (int h = 8; h >= 1; h /= 2) {
        v = _mm512_maskz_min_epi32(kAll, v, _mm512_maskz_permutexvar_epi32(kAll, swap_index(h), v));
    }
    return int32_t(v[0]); // the low half of the first 64-bit element: lane 0
}

/// finish_lanes() over 16 lanes with AVX-512 reductions: pruning finishes a
/// row once per centroid group, where a scalar pass would cost as much as
/// the group's arithmetic. Each column index sits in one lane only, so the
/// lowest index among the lanes holding the smallest value names one lane.
__attribute__((target("avx512f"))) Finished finish16(const RowState& st) {
    const __m512 best = _mm512_loadu_ps(st.best);
    const __m512i arg = _mm512_loadu_si512(st.arg);
    const __mmask16 valid = _mm512_cmpge_epi32_mask(arg, _mm512_setzero_si512());
    Finished f{kInf, min_lanes(kAll, _mm512_loadu_ps(st.second)), -1};
    if (valid == 0) {
        f.second = std::min(f.second, min_lanes(kAll, best));
        return f;
    }
    f.best = min_lanes(valid, best);
    const __mmask16 at_best = valid & _mm512_cmp_ps_mask(best, _mm512_set1_ps(f.best), _CMP_EQ_OQ);
    f.arg = min_lanes(at_best, arg);
    const __mmask16 chosen = _mm512_cmpeq_epi32_mask(arg, _mm512_set1_epi32(f.arg));
    f.second = std::min(f.second, min_lanes(__mmask16(~chosen), best));
    return f;
}
#endif

Finished finish(const RowState& st, int lanes) {
#if defined(__x86_64__)
    if (lanes == 16) {
        return finish16(st);
    }
#endif
    return finish_lanes(st, lanes);
}

void finish_row(const RowState& st, int lanes, bool l2, int64_t i, const kernels::AssignArgs& a,
                int64_t b) {
    const Finished f = finish(st, lanes);
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
    const bool wide = use_avx512();
    const int lanes = wide ? 16 : 8; // the lanes the tiles fill
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
                        run_block<kL2, kSecond>(wide, xr + tr * kRows, kRows, pc, d, p0, p1,
                                                norms + tr * kRows, rows.data() + tr * kRows);
                    }
                }
                for (int64_t r = 0; r < m; r++) {
                    finish_row(rows[size_t(r)], lanes, kL2, i0 + r, a, b);
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
    const bool wide = use_avx512();
    const int lanes = wide ? 16 : 8; // the lanes the tiles fill
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
                        run_block<kL2, true>(wide, xr, 1, pc, d, first[size_t(g)],
                                             first[size_t(g + 1)], norms, rows.data());
                        for (int64_t r = 0; r < mt; r++) {
                            const Finished f = finish(rows[size_t(r)], lanes);
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
