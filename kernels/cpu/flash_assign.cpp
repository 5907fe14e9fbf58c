// FlashAssign (CPU): labels[i] = argmin_j ||x_i - c_j||^2 (L2) or
// argmax_j x_i.c_j (IP), ties to the lowest j, and optionally the distance.
//
// Why this shape: the n x k distance matrix is never stored. A tile of BM
// points meets the centroids one tile of BN at a time; OpenBLAS sgemm writes
// the BM x BN block of inner products into a per-thread buffer small enough to
// stay in cache, and the argmin epilogue folds it into a running (min, argmin)
// per row before the next centroid tile overwrites it. Memory traffic is
// O(n d + (n / BM) k d) instead of O(n k), and the only extra memory is
// BM x BN floats per thread.
//
// The pieces read as in the GPU kernel: the GEMM mainloop (one sgemm call), the
// argmin epilogue, and the scheduler (OpenMP over point tiles, sgemm kept
// single-threaded inside so the two thread pools do not oversubscribe). A plain
// reference kernel sits beside the tiled one; the tests check them against a
// float64 brute force and each other.
//
// Scores: L2 ranks ||c||^2 - 2 x.c (||x||^2 does not change the argmin), IP
// ranks -x.c. Scanning j in ascending order with a strict < gives the lowest
// index on ties. The reported L2 distance is ||x||^2 + min score clamped at 0,
// as IndexFlatL2 clamps round-off negatives. Precision::TF32 has no CPU
// meaning: the CPU is always exact fp32.
#include "cpu_kernels.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads();

namespace flashkmeans {
namespace cpu {

namespace {

/// centroids per tile: the BM x BN inner-product block (<= 256 KiB) stays in L2
constexpr int64_t kTileK = 256;
/// largest number of points per tile (smaller when n is small, so every
/// thread gets a tile)
constexpr int64_t kMaxTileN = 256;
constexpr int64_t kMinTileN = 16;

/// One problem of the batch, with the pointers already offset.
struct Problem {
    const float* x;
    const float* c;
    const float* c_norms; // null for IP
    const float* x_norms; // null unless L2 distances are wanted
    int64_t n, k, d;
    bool l2;
    int32_t* labels;
    float* distances; // optional
};

/// Keeps OpenBLAS single-threaded while OpenMP threads call it, and restores
/// the caller's setting even if something throws.
class SingleThreadedBlas {
public:
    SingleThreadedBlas() : saved_(openblas_get_num_threads()) {
        openblas_set_num_threads(1);
    }
    ~SingleThreadedBlas() {
        openblas_set_num_threads(saved_);
    }
    SingleThreadedBlas(const SingleThreadedBlas&) = delete;
    SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

private:
    int saved_;
};

/// Mainloop: ip[i * kc + j] = x_i . c_j for a tile of m points and kc centroids.
void tile_inner_products(const float* x, int64_t m, const float* c, int64_t kc, int64_t d,
                         float* ip) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(kc), int(d), 1.0f, x,
                int(d), c, int(d), 0.0f, ip, int(kc));
}

/// The L2 value compared: FAISS's clamped distance when ||x||^2 is known.
inline float l2_score(const float* x_norm, float c_norm, float ip) {
    if (!x_norm) {
        return c_norm - 2 * ip;
    }
    float s = *x_norm + c_norm - 2 * ip;
    return s < 0 ? 0 : s;
}

/// Epilogue: folds one m x kc block of inner products (centroids j0..j0+kc)
/// into the running (best, arg) of each row. Strict < with ascending j keeps
/// the lowest index on ties. With x_norms (L2), the compared value is FAISS's
/// own `||x||^2 + ||c||^2 - 2 x.c` clamped at 0, so labels round exactly as
/// IndexFlatL2's do; without, `||c||^2 - 2 x.c` ranks the same in exact math.
void argmin_epilogue(const float* ip, int64_t m, int64_t kc, int64_t j0, const float* c_norms,
                     const float* x_norms, bool l2, float* best, int32_t* arg) {
    for (int64_t i = 0; i < m; i++) {
        const float* row = ip + i * kc;
        float b = best[i];
        int32_t a = arg[i];
        if (l2) {
            const float* cn = c_norms + j0;
            const float* xn = x_norms ? x_norms + i : nullptr;
            for (int64_t j = 0; j < kc; j++) {
                const float s = l2_score(xn, cn[j], row[j]);
                if (s < b) {
                    b = s;
                    a = int32_t(j0 + j);
                }
            }
        } else {
            for (int64_t j = 0; j < kc; j++) {
                float s = -row[j];
                if (s < b) {
                    b = s;
                    a = int32_t(j0 + j);
                }
            }
        }
        best[i] = b;
        arg[i] = a;
    }
}

/// Writes labels and, if asked, distances for rows i0..i0+m of a problem.
void store_rows(const Problem& p, int64_t i0, int64_t m, const float* best, const int32_t* arg) {
    for (int64_t i = 0; i < m; i++) {
        p.labels[i0 + i] = arg[i];
    }
    if (!p.distances) {
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        float dis;
        if (p.l2) {
            dis = best[i]; // already ||x||^2 + ||c||^2 - 2 x.c, clamped
        } else {
            dis = -best[i];
        }
        p.distances[i0 + i] = dis;
    }
}

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
    return p;
}

/// Scheduler of the tiled kernel: one flat loop over (problem, point tile)
/// pairs so a batch of small problems still fills every thread.
void assign_tiled(const kernels::AssignArgs& a) {
    const int nt = std::max(1, omp_get_max_threads());
    const int64_t per_thread = (a.n + nt - 1) / nt;
    const int64_t tile_n =
            std::min(kMaxTileN, std::max(kMinTileN, (per_thread + kMinTileN - 1) / kMinTileN * kMinTileN));
    const int64_t tile_k = std::min(kTileK, a.k);
    const int64_t tiles_per_problem = (a.n + tile_n - 1) / tile_n;
    const int64_t n_tiles = tiles_per_problem * a.batch;

    // Per-thread buffers allocated up front so nothing inside the parallel
    // region can throw.
    std::vector<float> ip_all(size_t(nt) * tile_n * tile_k);
    std::vector<float> best_all(size_t(nt) * tile_n);
    std::vector<int32_t> arg_all(size_t(nt) * tile_n);

    SingleThreadedBlas single;
#pragma omp parallel num_threads(nt)
    {
        const int rank = omp_get_thread_num();
        float* ip = ip_all.data() + size_t(rank) * tile_n * tile_k;
        float* best = best_all.data() + size_t(rank) * tile_n;
        int32_t* arg = arg_all.data() + size_t(rank) * tile_n;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_tiles; t++) {
            const Problem p = problem(a, t / tiles_per_problem);
            const int64_t i0 = (t % tiles_per_problem) * tile_n;
            const int64_t m = std::min(tile_n, p.n - i0);
            std::fill(best, best + m, std::numeric_limits<float>::infinity());
            std::fill(arg, arg + m, 0);
            for (int64_t j0 = 0; j0 < p.k; j0 += tile_k) {
                const int64_t kc = std::min(tile_k, p.k - j0);
                tile_inner_products(p.x + i0 * p.d, m, p.c + j0 * p.d, kc, p.d, ip);
                argmin_epilogue(ip, m, kc, j0, p.c_norms, p.x_norms ? p.x_norms + i0 : nullptr, p.l2, best,
                                arg);
            }
            store_rows(p, i0, m, best, arg);
        }
    }
}

/// Reference kernel: the same scores from plain in-order fp32 dot products,
/// one point at a time. Slow (no BLAS) but obviously right.
void assign_reference(const kernels::AssignArgs& a) {
    for (int64_t b = 0; b < a.batch; b++) {
        const Problem p = problem(a, b);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < p.n; i++) {
            const float* xi = p.x + i * p.d;
            float best = std::numeric_limits<float>::infinity();
            int32_t arg = 0;
            for (int64_t j = 0; j < p.k; j++) {
                const float* cj = p.c + j * p.d;
                float ip = 0;
                for (int64_t t = 0; t < p.d; t++) {
                    ip += xi[t] * cj[t];
                }
                float s = p.l2 ? l2_score(p.x_norms ? p.x_norms + i : nullptr, p.c_norms[j], ip)
                               : -ip;
                if (s < best) {
                    best = s;
                    arg = int32_t(j);
                }
            }
            store_rows(p, i, 1, &best, &arg);
        }
    }
}

} // namespace

void flash_assign(const kernels::AssignArgs& a) {
    if (a.kernel == kernels::AssignKernel::Reference) {
        assign_reference(a);
    } else {
        assign_tiled(a);
    }
}

} // namespace cpu
} // namespace flashkmeans
