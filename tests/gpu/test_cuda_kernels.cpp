// Tests of the CUDA kernels against the CPU kernels and float64 references.
// Every test skips cleanly when no GPU is visible. Outputs are poisoned before
// each run (labels -7, floats NaN or a marker) so a kernel that forgets to
// write an element fails. Tests whose name contains "Small" are quick enough
// to run under compute-sanitizer:
//   compute-sanitizer --tool memcheck  build/tests/flashkmeans_gpu_tests --gtest_filter='*Small*'
//   compute-sanitizer --tool racecheck build/tests/flashkmeans_gpu_tests --gtest_filter='*Small*'
#include <flashkmeans/kernels.h>
#include <flashkmeans/variants.h>

#include "tuning_env.h"

#include "../../kernels/cuda/cuda_check.h"
#include "test_util.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

// bench/sweep.sh runs these tests under a sweep configuration it names in
// the environment (FLASHKMEANS_FA_CONFIG, ...): the defaults they compare
// against are then that configuration's.
[[maybe_unused]] const bool kVariantsFromEnv = (fk_bench::apply_variants_from_env(), true);


namespace fk = flashkmeans;
namespace kn = flashkmeans::kernels;
using fk::DType;
using fk::Metric;
using fk::Precision;
using kn::AssignKernel;

const fk::Place kGpu{fk::Backend::CUDA, 0, nullptr};
const fk::Place kCpu{fk::Backend::CPU, 0, nullptr};

#define REQUIRE_GPU()                                  \
    do {                                               \
        if (flashkmeans::cuda_device_count() == 0) {   \
            GTEST_SKIP() << "no GPU";                  \
        }                                              \
    } while (0)

void cuda_ok(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
    }
}

/// A device array with synchronous upload/download (tests use the legacy
/// default stream, so every copy waits for the kernels before it).
template <typename T>
class Dev {
public:
    explicit Dev(size_t count) : n_(count) {
        if (n_ > 0) {
            cuda_ok(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)), "cudaMalloc");
        }
    }
    explicit Dev(const std::vector<T>& v) : Dev(v.size()) { upload(v); }
    ~Dev() { cudaFree(p_); }
    Dev(const Dev&) = delete;
    Dev& operator=(const Dev&) = delete;

    T* get() const { return p_; }
    size_t size() const { return n_; }
    void upload(const std::vector<T>& v) {
        if (n_ > 0) {
            cuda_ok(cudaMemcpy(p_, v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "upload");
        }
    }
    std::vector<T> download() const {
        std::vector<T> v(n_);
        cuda_ok(cudaDeviceSynchronize(), "kernel");
        if (n_ > 0) {
            cuda_ok(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
        }
        return v;
    }
    void fill(const T& value) { upload(std::vector<T>(n_, value)); }

private:
    T* p_ = nullptr;
    size_t n_ = 0;
};

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// ------------------------------------------------------------ dtype helpers

size_t elem_size(DType t) { return t == DType::Float32 ? 4 : 2; }

/// The bytes of `v` stored as `dtype` (round to nearest even, on the host).
std::vector<char> encode(const std::vector<float>& v, DType dtype) {
    std::vector<char> out(v.size() * elem_size(dtype));
    for (size_t i = 0; i < v.size(); i++) {
        if (dtype == DType::Float32) {
            std::memcpy(out.data() + 4 * i, &v[i], 4);
        } else if (dtype == DType::Float16) {
            const __half h = __float2half_rn(v[i]);
            std::memcpy(out.data() + 2 * i, &h, 2);
        } else {
            const __nv_bfloat16 h = __float2bfloat16_rn(v[i]);
            std::memcpy(out.data() + 2 * i, &h, 2);
        }
    }
    return out;
}

/// `v` rounded to `dtype` and back to fp32 (exact), for host references.
std::vector<float> rounded(const std::vector<float>& v, DType dtype) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); i++) {
        if (dtype == DType::Float32) {
            out[i] = v[i];
        } else if (dtype == DType::Float16) {
            out[i] = __half2float(__float2half_rn(v[i]));
        } else {
            out[i] = __bfloat162float(__float2bfloat16_rn(v[i]));
        }
    }
    return out;
}

// ------------------------------------------------------------ references

/// fk_test::reference_assign split over host threads (float64 brute force).
fk_test::RefAssign reference(const std::vector<float>& x, int64_t n, const std::vector<float>& c,
                             int64_t k, int64_t d, bool ip) {
    const int64_t threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
    const int64_t per = (n + threads - 1) / threads;
    std::vector<std::future<fk_test::RefAssign>> parts;
    for (int64_t i0 = 0; i0 < n; i0 += per) {
        const int64_t cnt = std::min(per, n - i0);
        parts.push_back(std::async(std::launch::async, [&, i0, cnt] {
            return fk_test::reference_assign(x.data() + i0 * d, cnt, c.data(), k, d, ip);
        }));
    }
    fk_test::RefAssign r;
    for (auto& f : parts) {
        fk_test::RefAssign p = f.get();
        r.labels.insert(r.labels.end(), p.labels.begin(), p.labels.end());
        r.best.insert(r.best.end(), p.best.begin(), p.best.end());
        r.rel_gap.insert(r.rel_gap.end(), p.rel_gap.begin(), p.rel_gap.end());
    }
    return r;
}

/// float64 score of point i against centroid j: squared distance (L2) or
/// inner product (IP), and the scale used for relative gaps
/// (||x||^2 + |best|, as in fk_test::reference_assign).
double score64(const float* xi, const float* cj, int64_t d, bool ip) {
    double s = 0;
    for (int64_t t = 0; t < d; t++) {
        const double a = xi[t], b = cj[t];
        s += ip ? a * b : (a - b) * (a - b);
    }
    return s;
}
double scale64(const float* xi, int64_t d, double best) {
    double s = 0;
    for (int64_t t = 0; t < d; t++) {
        s += double(xi[t]) * xi[t];
    }
    return s + std::fabs(best) + 1e-30;
}

struct Agreement {
    int64_t same = 0;      // label equal to the float64 argmin
    int64_t excused = 0;   // different, but a true near-tie
    int64_t bad = 0;       // different and not a near-tie (or not written)
    int64_t dist_bad = 0;  // distance off by more than dist_tol * scale
    double fraction(int64_t n) const { return n ? double(same) / double(n) : 1.0; }
};

/// Checks labels (and distances, if given) of one problem against the
/// float64 reference: a label may differ only if its exact score is within
/// tie_tol * scale of the best one.
Agreement check_assign(const std::vector<float>& x, int64_t n, const std::vector<float>& c,
                       int64_t k, int64_t d, bool ip, const fk_test::RefAssign& ref,
                       const int32_t* labels, const float* dist, double tie_tol,
                       double dist_tol) {
    Agreement a;
    for (int64_t i = 0; i < n; i++) {
        const float* xi = x.data() + i * d;
        const int32_t l = labels[i];
        const double scale = scale64(xi, d, ref.best[i]);
        if (l < 0 || l >= k) {
            a.bad++;
            continue;
        }
        if (l == ref.labels[i]) {
            a.same++;
        } else {
            const double s = score64(xi, c.data() + int64_t(l) * d, d, ip);
            const double loss = ip ? ref.best[i] - s : s - ref.best[i];
            if (loss <= tie_tol * scale) {
                a.excused++;
            } else {
                a.bad++;
            }
        }
        if (dist != nullptr && !(std::fabs(double(dist[i]) - ref.best[i]) <= dist_tol * scale)) {
            a.dist_bad++;
        }
    }
    return a;
}

// ------------------------------------------------------------ runners

struct AssignResult {
    std::vector<int32_t> labels;
    std::vector<float> dist;
};

/// Runs FlashAssign on the GPU on host data converted to `dtype`; centroid
/// and point norms are computed by the GPU row_norms of the same data.
AssignResult gpu_assign(const std::vector<float>& x, int64_t n, const std::vector<float>& c,
                        int64_t k, int64_t d, DType dtype, Metric metric, Precision prec,
                        AssignKernel kernel, int64_t batch = 1, size_t misalign_elems = 0,
                        const kn::Variants* variants = nullptr) {
    const std::vector<char> xb = encode(x, dtype), cb = encode(c, dtype);
    const size_t es = elem_size(dtype);
    // misalign_elems shifts both matrices off 16-byte alignment
    Dev<char> dx(xb.size() + misalign_elems * es), dc(cb.size() + misalign_elems * es);
    std::vector<char> xs(misalign_elems * es, 0);
    xs.insert(xs.end(), xb.begin(), xb.end());
    dx.upload(xs);
    std::vector<char> cs(misalign_elems * es, 0);
    cs.insert(cs.end(), cb.begin(), cb.end());
    dc.upload(cs);
    const void* px = dx.get() + misalign_elems * es;
    const void* pc = dc.get() + misalign_elems * es;

    Dev<float> cnorm(size_t(k * batch)), xnorm(size_t(n * batch));
    kn::row_norms(kGpu, pc, dtype, k, d, cnorm.get(), batch);
    kn::row_norms(kGpu, px, dtype, n, d, xnorm.get(), batch);
    Dev<int32_t> labels(size_t(n * batch));
    Dev<float> dist(size_t(n * batch));
    labels.fill(-7);
    dist.fill(kNaN);

    kn::AssignArgs a;
    a.variants = variants;
    a.x = px;
    a.dtype = dtype;
    a.n = n;
    a.d = d;
    a.centroids = pc;
    a.centroid_norms = cnorm.get();
    a.k = k;
    a.batch = batch;
    a.metric = metric;
    a.precision = prec;
    a.kernel = kernel;
    a.x_norms = xnorm.get();
    a.labels = labels.get();
    a.distances = dist.get();
    kn::flash_assign(kGpu, a);
    return {labels.download(), dist.download()};
}

AssignResult cpu_assign(const std::vector<float>& x, int64_t n, const std::vector<float>& c,
                        int64_t k, int64_t d, Metric metric) {
    std::vector<float> cnorm(k), xnorm(n);
    kn::row_norms(kCpu, c.data(), DType::Float32, k, d, cnorm.data());
    kn::row_norms(kCpu, x.data(), DType::Float32, n, d, xnorm.data());
    AssignResult r{std::vector<int32_t>(n, -7), std::vector<float>(n, kNaN)};
    kn::AssignArgs a;
    a.x = x.data();
    a.n = n;
    a.d = d;
    a.centroids = c.data();
    a.centroid_norms = cnorm.data();
    a.k = k;
    a.metric = metric;
    a.x_norms = xnorm.data();
    a.labels = r.labels.data();
    a.distances = r.dist.data();
    kn::flash_assign(kCpu, a);
    return r;
}

const char* metric_name(Metric m) { return m == Metric::L2 ? "L2" : "IP"; }

// ================================================================ FlashAssign

// fp32 Precision::Exact (3xTF32): labels equal the float64 argmin except true
// near-ties (loss < 1e-6 relative), as do the CPU kernel's; distances within
// 1e-4 relative; over awkward d, n and k (nothing a multiple of a tile).
TEST(CudaFlashAssign, TiledFp32ExactMatchesCpuAndFloat64Reference) {
    REQUIRE_GPU();
    const int64_t ds[] = {1, 8, 17, 96, 128, 256, 768, 2048};
    const int64_t ks[] = {1, 7, 300, 1000};
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
        for (int64_t d : ds) {
            for (int64_t k : ks) {
                const int64_t n = d >= 768 ? 1001 : 3001;  // keeps the float64 reference fast
                SCOPED_TRACE(std::string(metric_name(metric)) + " n=" + std::to_string(n) +
                             " k=" + std::to_string(k) + " d=" + std::to_string(d));
                const bool ip = metric == Metric::InnerProduct;
                const auto x = fk_test::random_matrix(n, d, 1000 + d);
                const auto c = fk_test::random_matrix(k, d, 2000 + d + k);
                const auto ref = reference(x, n, c, k, d, ip);
                const auto g = gpu_assign(x, n, c, k, d, DType::Float32, metric, Precision::Exact,
                                          AssignKernel::Tiled);
                const auto h = cpu_assign(x, n, c, k, d, metric);
                const Agreement ag = check_assign(x, n, c, k, d, ip, ref, g.labels.data(),
                                                  g.dist.data(), 1e-6, 1e-4);
                const Agreement ac = check_assign(x, n, c, k, d, ip, ref, h.labels.data(),
                                                  h.dist.data(), 1e-6, 1e-4);
                EXPECT_EQ(ag.bad, 0) << "GPU labels that are not near-ties";
                EXPECT_EQ(ag.dist_bad, 0) << "GPU distances off by more than 1e-4";
                EXPECT_EQ(ac.bad, 0) << "CPU labels that are not near-ties";
                int64_t same_as_cpu = 0;
                for (int64_t i = 0; i < n; i++) {
                    same_as_cpu += g.labels[i] == h.labels[i];
                }
                if (ag.excused > 0 || same_as_cpu != n) {
                    std::printf("  [%s n=%lld k=%lld d=%lld] exact: %.5f%% = float64, %.5f%% = CPU, "
                                "%lld near-ties\n",
                                metric_name(metric), (long long)n, (long long)k, (long long)d,
                                100.0 * ag.fraction(n), 100.0 * double(same_as_cpu) / double(n),
                                (long long)ag.excused);
                }
            }
        }
    }
}

// Many centroid tiles (k = 65536 = 512 tiles) at small d.
TEST(CudaFlashAssign, TiledFp32ExactLargeKMatchesFloat64Reference) {
    REQUIRE_GPU();
    const int64_t n = 3001, k = 65536;
    for (int64_t d : {8, 17}) {
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            SCOPED_TRACE(std::string(metric_name(metric)) + " d=" + std::to_string(d));
            const bool ip = metric == Metric::InnerProduct;
            const auto x = fk_test::random_matrix(n, d, 31 + d);
            const auto c = fk_test::random_matrix(k, d, 32 + d);
            const auto ref = reference(x, n, c, k, d, ip);
            const auto g = gpu_assign(x, n, c, k, d, DType::Float32, metric, Precision::Exact,
                                      AssignKernel::Tiled);
            const Agreement a = check_assign(x, n, c, k, d, ip, ref, g.labels.data(),
                                             g.dist.data(), 1e-6, 1e-4);
            EXPECT_EQ(a.bad, 0);
            EXPECT_EQ(a.dist_bad, 0);
            std::printf("  [k=65536 %s d=%lld] exact agreement %.4f%%\n", metric_name(metric),
                        (long long)d, 100.0 * a.fraction(n));
        }
    }
}

/// Precision::TF32 is opt-in and approximate: at least 99% of labels equal
/// the float64 argmin on random data (measured agreement is printed).
void expect_tf32_agreement(AssignKernel kernel, std::initializer_list<int64_t> ds, uint64_t seed) {
    const int64_t n = 3001, k = 300;
    for (int64_t d : ds) {
        const auto x = fk_test::random_matrix(n, d, seed + d);
        const auto c = fk_test::random_matrix(k, d, seed + 1 + d);
        const auto ref = reference(x, n, c, k, d, false);
        const auto g = gpu_assign(x, n, c, k, d, DType::Float32, Metric::L2, Precision::TF32, kernel);
        const Agreement a = check_assign(x, n, c, k, d, false, ref, g.labels.data(), nullptr,
                                         1.0, 1.0);
        std::printf("  [%s TF32 n=%lld k=%lld d=%lld] agreement with float64: %.3f%%\n",
                    kernel == AssignKernel::Hopper ? "hopper" : "tiled", (long long)n,
                    (long long)k, (long long)d, 100.0 * a.fraction(n));
        EXPECT_GE(a.fraction(n), 0.99) << "d=" << d;
        EXPECT_EQ(a.bad, 0) << "unwritten or out-of-range labels, d=" << d;
    }
}

TEST(CudaFlashAssign, TiledTf32AgreesWithFloat64ReferenceOnAtLeast99Percent) {
    REQUIRE_GPU();
    expect_tf32_agreement(AssignKernel::Tiled, {32, 128, 768}, 41);
}

// fp16 / bf16 points and centroids: compared with the float64 argmin of the
// ROUNDED inputs (what the kernel was given), near-ties excused below 1e-3.
TEST(CudaFlashAssign, TiledHalfAndBf16MatchFloat64ReferenceOnRoundedInputs) {
    REQUIRE_GPU();
    const int64_t n = 3001;
    for (DType dtype : {DType::Float16, DType::BFloat16}) {
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            for (int64_t d : {8, 17, 128, 256, 768}) {
                for (int64_t k : {7, 300, 1000}) {
                    const bool ip = metric == Metric::InnerProduct;
                    SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " " + metric_name(metric) +
                                 " k=" + std::to_string(k) + " d=" + std::to_string(d));
                    const auto x = rounded(fk_test::random_matrix(n, d, 51 + d), dtype);
                    const auto c = rounded(fk_test::random_matrix(k, d, 52 + d + k), dtype);
                    const auto ref = reference(x, n, c, k, d, ip);
                    for (AssignKernel kernel : {AssignKernel::Tiled, AssignKernel::Reference}) {
                        if (kernel == AssignKernel::Reference && (d > 256 || k > 300)) {
                            continue;  // the reference kernel is slow
                        }
                        const auto g = gpu_assign(x, n, c, k, d, dtype, metric, Precision::Exact,
                                                  kernel);
                        const Agreement a = check_assign(x, n, c, k, d, ip, ref, g.labels.data(),
                                                         g.dist.data(), 1e-3, 1e-3);
                        EXPECT_EQ(a.bad, 0) << (kernel == AssignKernel::Tiled ? "tiled" : "reference");
                        EXPECT_EQ(a.dist_bad, 0);
                        if (kernel == AssignKernel::Tiled && (d == 128 || a.same != n)) {
                            std::printf("  [%s %s k=%lld d=%lld] agreement %.4f%%, %lld near-ties\n",
                                        fk::dtype_name(dtype), metric_name(metric), (long long)k,
                                        (long long)d, 100.0 * a.fraction(n),
                                        (long long)a.excused);
                        }
                    }
                }
            }
        }
    }
}

// The plain reference kernel (one thread per point) against float64.
TEST(CudaFlashAssign, ReferenceKernelMatchesFloat64Reference) {
    REQUIRE_GPU();
    const int64_t n = 1001;
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
        for (int64_t d : {1, 17, 128}) {
            for (int64_t k : {1, 7, 300}) {
                SCOPED_TRACE(std::string(metric_name(metric)) + " k=" + std::to_string(k) +
                             " d=" + std::to_string(d));
                const bool ip = metric == Metric::InnerProduct;
                const auto x = fk_test::random_matrix(n, d, 61 + d);
                const auto c = fk_test::random_matrix(k, d, 62 + d);
                const auto ref = reference(x, n, c, k, d, ip);
                const auto g = gpu_assign(x, n, c, k, d, DType::Float32, metric, Precision::Exact,
                                          AssignKernel::Reference);
                const Agreement a = check_assign(x, n, c, k, d, ip, ref, g.labels.data(),
                                                 g.dist.data(), 1e-6, 1e-4);
                EXPECT_EQ(a.bad, 0);
                EXPECT_EQ(a.dist_bad, 0);
            }
        }
    }
}

/// Identical centroids in different tiles, warps and lanes (centroids
/// half..2 half-1 repeat 0..half-1, the last repeats 3): every label must be
/// the lowest copy, i.e. below `half`.
void expect_ties_to_lowest(AssignKernel kernel, DType dtype, Metric metric) {
    const int64_t n = 2000, half = 150, k = 2 * half + 1, d = 40;
    const auto x = rounded(fk_test::random_matrix(n, d, 71), dtype);
    auto c = rounded(fk_test::random_matrix(k, d, 72), dtype);
    std::copy(c.begin(), c.begin() + half * d, c.begin() + half * d);
    std::copy(c.begin() + 3 * d, c.begin() + 4 * d, c.begin() + 2 * half * d);
    const auto g = gpu_assign(x, n, c, k, d, dtype, metric, Precision::Exact, kernel);
    for (int64_t i = 0; i < n; i++) {
        ASSERT_GE(g.labels[i], 0);
        ASSERT_LT(g.labels[i], half) << fk::dtype_name(dtype) << " " << metric_name(metric)
                                     << " point " << i;
    }
}

// Exact ties: the lowest index wins, for every dtype.
TEST(CudaFlashAssign, TiesGoToTheLowestCentroidIndex) {
    REQUIRE_GPU();
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            for (AssignKernel kernel : {AssignKernel::Tiled, AssignKernel::Reference}) {
                SCOPED_TRACE(kernel == AssignKernel::Tiled ? "tiled" : "reference");
                expect_ties_to_lowest(kernel, dtype, metric);
            }
        }
    }
}

// Base pointers off 16-byte alignment (and d not a multiple of 16 bytes) take
// the element-by-element load path and are as exact as the aligned path.
TEST(CudaFlashAssign, MisalignedInputsTakeTheScalarPathAndStayExact) {
    REQUIRE_GPU();
    const int64_t n = 1500, k = 333;
    for (DType dtype : {DType::Float32, DType::Float16}) {
        for (int64_t d : {64, 100}) {
            const auto x = rounded(fk_test::random_matrix(n, d, 81), dtype);
            const auto c = rounded(fk_test::random_matrix(k, d, 82), dtype);
            const auto ref = reference(x, n, c, k, d, false);
            const double tol = dtype == DType::Float32 ? 1e-6 : 1e-3;
            for (size_t shift : {0, 1}) {
                const auto g = gpu_assign(x, n, c, k, d, dtype, Metric::L2, Precision::Exact,
                                          AssignKernel::Tiled, 1, shift);
                const Agreement a = check_assign(x, n, c, k, d, false, ref, g.labels.data(),
                                                 g.dist.data(), tol, tol);
                EXPECT_EQ(a.bad, 0) << fk::dtype_name(dtype) << " d=" << d << " shift=" << shift;
                EXPECT_EQ(a.dist_bad, 0) << fk::dtype_name(dtype) << " d=" << d;
            }
        }
    }
}

/// B problems in one call give bitwise the labels and distances of B calls.
void expect_batch_equals_calls(AssignKernel kernel, DType dtype, int64_t n, int64_t k, int64_t d,
                               int64_t B) {
    const auto x = rounded(fk_test::random_matrix(B * n, d, 91), dtype);
    const auto c = rounded(fk_test::random_matrix(B * k, d, 92), dtype);
    const auto all = gpu_assign(x, n, c, k, d, dtype, Metric::L2, Precision::Exact, kernel, B);
    for (int64_t b = 0; b < B; b++) {
        const std::vector<float> xb(x.begin() + b * n * d, x.begin() + (b + 1) * n * d);
        const std::vector<float> cb(c.begin() + b * k * d, c.begin() + (b + 1) * k * d);
        const auto one = gpu_assign(xb, n, cb, k, d, dtype, Metric::L2, Precision::Exact, kernel);
        for (int64_t i = 0; i < n; i++) {
            ASSERT_EQ(all.labels[b * n + i], one.labels[i]) << "problem " << b << " point " << i;
            ASSERT_EQ(all.dist[b * n + i], one.dist[i]);
        }
    }
}

// A batch of 3 problems gives exactly the labels of 3 separate calls.
TEST(CudaFlashAssign, BatchOfThreeEqualsThreeSeparateCalls) {
    REQUIRE_GPU();
    for (DType dtype : {DType::Float32, DType::Float16}) {
        SCOPED_TRACE(fk::dtype_name(dtype));
        expect_batch_equals_calls(AssignKernel::Tiled, dtype, 1234, 77, 33, 3);
    }
}

// Quick (sanitizer) run of every kernel variant; every label written and right.
TEST(CudaFlashAssign, SmallEveryVariantWritesEveryLabel) {
    REQUIRE_GPU();
    const int64_t n = 300, k = 70, d = 40;
    const auto x0 = fk_test::random_matrix(n, d, 101);
    const auto c0 = fk_test::random_matrix(k, d, 102);
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        const auto x = rounded(x0, dtype), c = rounded(c0, dtype);
        const auto ref = reference(x, n, c, k, d, false);
        for (AssignKernel kernel : {AssignKernel::Tiled, AssignKernel::Reference}) {
            for (Precision prec : {Precision::Exact, Precision::TF32}) {
                const auto g = gpu_assign(x, n, c, k, d, dtype, Metric::L2, prec, kernel);
                const double tol = (dtype == DType::Float32 && prec == Precision::Exact) ? 1e-6 : 1e-3;
                const Agreement a = check_assign(x, n, c, k, d, false, ref, g.labels.data(),
                                                 g.dist.data(), tol, tol);
                EXPECT_EQ(a.bad, 0) << fk::dtype_name(dtype);
                EXPECT_EQ(a.dist_bad, 0) << fk::dtype_name(dtype);
            }
        }
    }
}

/// Runs the Hopper kernel on the same data with env_var = a, then = b (two
/// variants that must not change results) and asserts bitwise the same labels
/// and distances.
void expect_variants_bitwise(const char* kn::Variants::*field, const char* a, const char* b,
                             const std::vector<float>& x, int64_t n, const std::vector<float>& c,
                             int64_t k, int64_t d, DType dtype, Metric metric, Precision prec,
                             int64_t batch = 1) {
    kn::Variants va = kn::default_variants(), vb = va;
    va.*field = a;
    vb.*field = b;
    const AssignResult ra =
            gpu_assign(x, n, c, k, d, dtype, metric, prec, AssignKernel::Hopper, batch, 0, &va);
    const AssignResult rb =
            gpu_assign(x, n, c, k, d, dtype, metric, prec, AssignKernel::Hopper, batch, 0, &vb);
    ASSERT_EQ(ra.labels, rb.labels) << a << " vs " << b;
    ASSERT_EQ(0, std::memcmp(ra.dist.data(), rb.dist.data(), ra.dist.size() * sizeof(float)))
            << a << " vs " << b;
}

// ------------------------------------------------ the Hopper (sm_90a) kernel

/// The Hopper kernel must run on a compute capability 9.0 GPU (the GPU build
/// includes sm_90a code); elsewhere these tests skip.
#define REQUIRE_HOPPER()                                                          \
    do {                                                                          \
        REQUIRE_GPU();                                                            \
        int major = 0;                                                            \
        cuda_ok(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), \
                "compute capability");                                            \
        if (major != 9) {                                                         \
            GTEST_SKIP() << "not a compute capability 9.0 GPU";                   \
        }                                                                         \
    } while (0)

// fp16 / bf16 on the TMA + wgmma kernels: float64 argmin of the rounded inputs
// except near-ties, over d of 1 to 4 chunks (8 .. 256, incl. non-multiples of
// the 64-element chunk; points resident) and past them (264 .. 2048; the
// streamed kernel), k from 1 to 1000, n not a multiple of the 128-row tile;
// agreement with the sm_80 kernel printed.
TEST(CudaFlashAssign, HopperHalfAndBf16MatchFloat64Reference) {
    REQUIRE_HOPPER();
    for (DType dtype : {DType::Float16, DType::BFloat16}) {
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            for (int64_t d : {8, 16, 72, 128, 200, 256, 264, 520, 768, 2048}) {
                for (int64_t k : {1, 7, 300, 1000}) {
                    const int64_t n = d > 1000 ? 1001 : 3001;
                    const bool ip = metric == Metric::InnerProduct;
                    SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " " + metric_name(metric) +
                                 " k=" + std::to_string(k) + " d=" + std::to_string(d));
                    const auto x = rounded(fk_test::random_matrix(n, d, 151 + d), dtype);
                    const auto c = rounded(fk_test::random_matrix(k, d, 152 + d + k), dtype);
                    const auto ref = reference(x, n, c, k, d, ip);
                    const auto h = gpu_assign(x, n, c, k, d, dtype, metric, Precision::Exact,
                                              AssignKernel::Hopper);
                    const Agreement a = check_assign(x, n, c, k, d, ip, ref, h.labels.data(),
                                                     h.dist.data(), 1e-3, 1e-3);
                    EXPECT_EQ(a.bad, 0);
                    EXPECT_EQ(a.dist_bad, 0);
                    const auto t = gpu_assign(x, n, c, k, d, dtype, metric, Precision::Exact,
                                              AssignKernel::Tiled);
                    int64_t same = 0;
                    for (int64_t i = 0; i < n; i++) {
                        same += h.labels[i] == t.labels[i];
                    }
                    if (d == 128 || same != n) {
                        std::printf("  [hopper %s %s k=%lld d=%lld] %.4f%% = float64, %.4f%% = "
                                    "sm_80 kernel, %lld near-ties\n",
                                    fk::dtype_name(dtype), metric_name(metric), (long long)k,
                                    (long long)d, 100.0 * a.fraction(n),
                                    100.0 * double(same) / double(n), (long long)a.excused);
                    }
                }
            }
        }
    }
}

/// Rows of d zero-padded to dp columns.
std::vector<float> pad_rows(const std::vector<float>& x, int64_t d, int64_t dp) {
    std::vector<float> out(x.size() / d * dp, 0.f);
    for (size_t r = 0; r < x.size() / d; r++) {
        std::copy(x.begin() + r * d, x.begin() + (r + 1) * d, out.begin() + r * dp);
    }
    return out;
}

// The engine pads rows to 16 bytes so that any d runs on the Hopper kernel.
// Padding changes no result: on the unpadded sm_80 kernel, zero-padded rows
// give bitwise the labels and distances of the unpadded ones; the Hopper
// kernel on padded rows agrees with it and with float64 (up to near-ties).
TEST(CudaFlashAssign, HopperZeroPaddedRowsGiveTheUnpaddedResults) {
    REQUIRE_HOPPER();
    for (DType dtype : {DType::Float16, DType::BFloat16, DType::Float32}) {
        const int64_t per16 = int64_t(16 / elem_size(dtype));
        for (int64_t d : {1, 3, 5, 7, 13, 57, 61, 100, 127, 300}) {
            if (dtype == DType::Float32 && d > 128) {
                continue;  // 3xTF32 on the Hopper kernel takes d <= 128
            }
            const int64_t dp = (d + per16 - 1) / per16 * per16, n = 3001, k = 300;
            SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " d=" + std::to_string(d));
            const auto x = rounded(fk_test::random_matrix(n, d, 171 + d), dtype);
            const auto c = rounded(fk_test::random_matrix(k, d, 172 + d), dtype);
            const auto xp = pad_rows(x, d, dp), cp = pad_rows(c, d, dp);
            const auto t = gpu_assign(x, n, c, k, d, dtype, Metric::L2, Precision::Exact,
                                      AssignKernel::Tiled);
            const auto tp = gpu_assign(xp, n, cp, k, dp, dtype, Metric::L2, Precision::Exact,
                                       AssignKernel::Tiled);
            EXPECT_EQ(t.labels, tp.labels);
            for (int64_t i = 0; i < n; i++) {
                ASSERT_EQ(fk_test::float_bits(t.dist[i]), fk_test::float_bits(tp.dist[i])) << i;
            }
            const auto h = gpu_assign(xp, n, cp, k, dp, dtype, Metric::L2, Precision::Exact,
                                      AssignKernel::Hopper);
            const auto ref = reference(x, n, c, k, d, false);
            const double tie = dtype == DType::Float32 ? 1e-6 : 1e-3;
            const Agreement a = check_assign(x, n, c, k, d, false, ref, h.labels.data(),
                                             h.dist.data(), tie, dtype == DType::Float32 ? 1e-4 : 1e-3);
            EXPECT_EQ(a.bad, 0);
            EXPECT_EQ(a.dist_bad, 0);
        }
    }
}

// fp32 Precision::Exact on wgmma (3xTF32, d <= 128): labels equal the float64
// argmin except true near-ties (loss < 1e-6 relative), distances within 1e-4,
// as the sm_80 kernel's; d of 1 to 4 chunks of 32 values incl. non-multiples
// of the chunk, k from 1 to 1000 (one partial tile to 8 tiles), n not a
// multiple of the 128-row tile; agreement with the sm_80 kernel printed.
TEST(CudaFlashAssign, HopperFp32ExactMatchesFloat64Reference) {
    REQUIRE_HOPPER();
    for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
        for (int64_t d : {4, 8, 32, 36, 96, 100, 128}) {
            for (int64_t k : {1, 7, 300, 1000}) {
                const int64_t n = 3001;
                const bool ip = metric == Metric::InnerProduct;
                SCOPED_TRACE(std::string(metric_name(metric)) + " k=" + std::to_string(k) +
                             " d=" + std::to_string(d));
                const auto x = fk_test::random_matrix(n, d, 181 + d);
                const auto c = fk_test::random_matrix(k, d, 182 + d + k);
                const auto ref = reference(x, n, c, k, d, ip);
                const auto h = gpu_assign(x, n, c, k, d, DType::Float32, metric, Precision::Exact,
                                          AssignKernel::Hopper);
                const Agreement a = check_assign(x, n, c, k, d, ip, ref, h.labels.data(),
                                                 h.dist.data(), 1e-6, 1e-4);
                EXPECT_EQ(a.bad, 0) << "labels that are not near-ties";
                EXPECT_EQ(a.dist_bad, 0) << "distances off by more than 1e-4";
                const auto t = gpu_assign(x, n, c, k, d, DType::Float32, metric, Precision::Exact,
                                          AssignKernel::Tiled);
                int64_t same = 0;
                for (int64_t i = 0; i < n; i++) {
                    same += h.labels[i] == t.labels[i];
                }
                if (d == 128 || same != n || a.excused > 0) {
                    std::printf("  [hopper fp32 exact %s k=%lld d=%lld] %.4f%% = float64, %.4f%% "
                                "= sm_80 kernel, %lld near-ties\n",
                                metric_name(metric), (long long)k, (long long)d,
                                100.0 * a.fraction(n), 100.0 * double(same) / double(n),
                                (long long)a.excused);
                }
            }
        }
    }
}

// fp32 in TF32 (opt-in) on wgmma: >= 99% equal to float64, like the sm_80 TF32
// (d past 128: the streamed kernel).
TEST(CudaFlashAssign, HopperTf32AgreesWithFloat64ReferenceOnAtLeast99Percent) {
    REQUIRE_HOPPER();
    expect_tf32_agreement(AssignKernel::Hopper, {4, 32, 100, 128, 136, 768}, 161);
}

// Many centroid tiles (the rings wrap hundreds of times) and many row tiles
// per block (more tiles than SMs: the persistent loop and the double-buffered
// points; odd and even tile counts), against float64: fp16 (the resident
// kernel, and the streamed one at d = 520), and fp32 exact (3xTF32 kernel,
// d <= 128).
TEST(CudaFlashAssign, HopperManyTilesMatchFloat64Reference) {
    REQUIRE_HOPPER();
    struct Shape {
        int64_t n, k, d;
    };
    for (DType dtype : {DType::Float16, DType::Float32}) {
        const double tol = dtype == DType::Float32 ? 1e-6 : 1e-3;
        const double dist_tol = dtype == DType::Float32 ? 1e-4 : 1e-3;
        for (Shape s : {Shape{3001, 65536, 16}, Shape{200003, 64, 128}, Shape{100000, 1000, 40},
                        Shape{40000, 300, 520}}) {
            if (dtype == DType::Float32 && s.d > 128) {
                continue;  // beyond the exact kernel's d
            }
            SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " n=" + std::to_string(s.n) +
                         " k=" + std::to_string(s.k) + " d=" + std::to_string(s.d));
            const auto x = rounded(fk_test::random_matrix(s.n, s.d, 171 + s.d), dtype);
            const auto c = rounded(fk_test::random_matrix(s.k, s.d, 172 + s.k), dtype);
            const auto ref = reference(x, s.n, c, s.k, s.d, false);
            const auto h = gpu_assign(x, s.n, c, s.k, s.d, dtype, Metric::L2, Precision::Exact,
                                      AssignKernel::Hopper);
            const Agreement a = check_assign(x, s.n, c, s.k, s.d, false, ref, h.labels.data(),
                                             h.dist.data(), tol, dist_tol);
            EXPECT_EQ(a.bad, 0);
            EXPECT_EQ(a.dist_bad, 0);
            std::printf("  [hopper %s n=%lld k=%lld d=%lld] agreement %.4f%%\n",
                        fk::dtype_name(dtype), (long long)s.n, (long long)s.k, (long long)s.d,
                        100.0 * a.fraction(s.n));
        }
    }
}

// Exact ties across tiles, warps and lanes: the lowest index wins.
TEST(CudaFlashAssign, HopperTiesGoToTheLowestCentroidIndex) {
    REQUIRE_HOPPER();
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            expect_ties_to_lowest(AssignKernel::Hopper, dtype, metric);
        }
    }
}

// A batch of 3 equals 3 separate calls, bitwise (row tiles of one problem
// that run past its n read the next problem's points and must be ignored;
// centroid tiles past k read the next problem's centroids and must be masked).
TEST(CudaFlashAssign, HopperBatchOfThreeEqualsThreeSeparateCalls) {
    REQUIRE_HOPPER();
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        SCOPED_TRACE(fk::dtype_name(dtype));
        expect_batch_equals_calls(AssignKernel::Hopper, dtype, 1234, 77, 40, 3);
    }
}


// The streamed kernel issues the same MMAs in the same order as the resident
// one, so where both can run (d <= 4 chunks) they give bitwise the same labels
// and distances: many centroid tiles, many row tiles, every dtype.
TEST(CudaFlashAssign, HopperStreamedEqualsResidentBitwise) {
    REQUIRE_HOPPER();
    struct Shape {
        int64_t n, k, d;
    };
    for (DType dtype : {DType::Float16, DType::BFloat16, DType::Float32}) {
        const Precision prec = dtype == DType::Float32 ? Precision::TF32 : Precision::Exact;
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            for (Shape sh : {Shape{3001, 1000, 8}, Shape{3001, 300, 72}, Shape{200003, 64, 128},
                             Shape{3001, 20000, 128}, Shape{1001, 129, 256}}) {
                const int64_t d = dtype == DType::Float32 ? std::min<int64_t>(sh.d, 128) : sh.d;
                SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " " + metric_name(metric) +
                             " n=" + std::to_string(sh.n) + " k=" + std::to_string(sh.k) +
                             " d=" + std::to_string(d));
                const auto x = rounded(fk_test::random_matrix(sh.n, d, 191 + d), dtype);
                const auto c = rounded(fk_test::random_matrix(sh.k, d, 192 + sh.k), dtype);
                expect_variants_bitwise(&kn::Variants::sm90_x, "resident", "streamed", x, sh.n, c,
                                        sh.k, d, dtype, metric, prec);
            }
        }
    }
}

// The points as wgmma's register operand (the default for fp16/bf16, d <= 128)
// give bitwise the labels and distances of the shared-memory operand
// (the variant sm90_a = "smem").
TEST(CudaFlashAssign, HopperPointsInRegistersEqualSharedMemoryBitwise) {
    REQUIRE_HOPPER();
    struct Shape {
        int64_t n, k, d;
    };
    for (DType dtype : {DType::Float16, DType::BFloat16}) {
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            for (Shape sh : {Shape{3001, 1000, 8}, Shape{3001, 300, 72}, Shape{200003, 64, 128},
                             Shape{3001, 20000, 128}, Shape{1001, 129, 64},
                             // several row tiles per block (the points buffers and
                             // registers are reused), odd and even tile counts
                             Shape{100003, 300, 128}, Shape{50001, 1000, 64}}) {
                SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " " + metric_name(metric) +
                             " n=" + std::to_string(sh.n) + " k=" + std::to_string(sh.k) +
                             " d=" + std::to_string(sh.d));
                const auto x = rounded(fk_test::random_matrix(sh.n, sh.d, 221 + sh.d), dtype);
                const auto c = rounded(fk_test::random_matrix(sh.k, sh.d, 222 + sh.k), dtype);
                expect_variants_bitwise(&kn::Variants::sm90_a, "smem", "regs", x, sh.n, c, sh.k,
                                        sh.d, dtype, metric, Precision::Exact);
            }
        }
    }
}

// CTA pairs sharing centroid loads by TMA multicast (the default for the
// resident kernel with the points in registers and for the streamed kernel)
// give bitwise the labels and distances of single CTAs
// (the variant sm90_cluster = "1"): odd and even row-tile counts (an odd count
// leaves the last pair a spare tile, computed and not stored), one row tile,
// several per pair, and batches, where a spare tile reads the next problem;
// d of the resident kernel (<= 128 fp16/bf16) and of the streamed one (fp16/
// bf16 d > 128, TF32 d > 64).
TEST(CudaFlashAssign, HopperClusterPairsEqualSingleCtasBitwise) {
    REQUIRE_HOPPER();
    struct Shape {
        int64_t n, k, d, batch;
    };
    for (DType dtype : {DType::Float16, DType::BFloat16, DType::Float32}) {
        const bool fp32 = dtype == DType::Float32;
        const Precision prec = fp32 ? Precision::TF32 : Precision::Exact;
        for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
            for (Shape sh : {Shape{100, 300, 128, 1}, Shape{3001, 1000, 8, 1},
                             Shape{200003, 64, 128, 1}, Shape{100003, 300, 128, 1},
                             Shape{50001, 1000, 64, 1}, Shape{3001, 20000, 128, 1},
                             Shape{1234, 77, 40, 3}, Shape{257, 129, 128, 5},
                             Shape{3001, 300, 264, 1}, Shape{20001, 1000, 768, 1},
                             Shape{1234, 77, 520, 3}}) {
                if (fp32 && (sh.d <= 64 || sh.d > 520)) {
                    continue;  // TF32: the streamed kernel's d, kept small
                }
                SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " " + metric_name(metric) +
                             " n=" + std::to_string(sh.n) + " k=" + std::to_string(sh.k) +
                             " d=" + std::to_string(sh.d) + " batch=" + std::to_string(sh.batch));
                const auto x = rounded(fk_test::random_matrix(sh.batch * sh.n, sh.d, 231 + sh.d), dtype);
                const auto c = rounded(fk_test::random_matrix(sh.batch * sh.k, sh.d, 232 + sh.k), dtype);
                expect_variants_bitwise(&kn::Variants::sm90_cluster, "1", "2", x, sh.n, c, sh.k,
                                        sh.d, dtype, metric, prec, sh.batch);
            }
        }
    }
}

// The max-first fold (the variant sm90_fold = "max"; by default from k =
// 32768) against the scan (=scan) in the resident kernel with the points in
// registers (fp16/bf16, d <= 128): bitwise the same labels and distances, in
// CTA pairs and single CTAs, with k below, at and past one tile, not a
// multiple of it, batches, and exact ties (the second half of the centroids
// repeats the first, in the same tile and across tiles: the lowest index
// must win, as expect_ties_to_lowest checks once more with =max).
TEST(CudaFlashAssign, HopperMaxFirstFoldEqualsScanBitwise) {
    REQUIRE_HOPPER();
    struct Shape {
        int64_t n, k, d, batch;
    };
    for (const char* cluster : {"auto", "1"}) {
        fk_test::ScopedVariant pairs(&flashkmeans::kernels::Variants::sm90_cluster, cluster);
        for (DType dtype : {DType::Float16, DType::BFloat16}) {
            for (Metric metric : {Metric::L2, Metric::InnerProduct}) {
                for (Shape sh : {Shape{100, 100, 128, 1}, Shape{3001, 1000, 8, 1},
                                 Shape{20001, 5003, 64, 1}, Shape{257, 129, 128, 5},
                                 Shape{4000, 33000, 128, 1}}) {
                    for (bool ties : {false, true}) {
                        SCOPED_TRACE(std::string(cluster) + " " + fk::dtype_name(dtype) + " " +
                                     metric_name(metric) + " n=" + std::to_string(sh.n) +
                                     " k=" + std::to_string(sh.k) + " d=" + std::to_string(sh.d) +
                                     " batch=" + std::to_string(sh.batch) + (ties ? " ties" : ""));
                        const auto x = rounded(fk_test::random_matrix(sh.batch * sh.n, sh.d, 241 + sh.d), dtype);
                        auto c = rounded(fk_test::random_matrix(sh.batch * sh.k, sh.d, 242 + sh.k), dtype);
                        if (ties) {
                            const int64_t half = sh.k / 2;
                            for (int64_t b = 0; b < sh.batch; ++b) {
                                const auto first = c.begin() + b * sh.k * sh.d;
                                std::copy(first, first + half * sh.d, first + half * sh.d);
                            }
                        }
                        expect_variants_bitwise(&kn::Variants::sm90_fold, "scan", "max", x, sh.n,
                                                c, sh.k, sh.d, dtype, metric, Precision::Exact,
                                                sh.batch);
                    }
                }
            }
            fk_test::ScopedVariant maxf(&flashkmeans::kernels::Variants::sm90_fold, "max");
            expect_ties_to_lowest(AssignKernel::Hopper, dtype, Metric::L2);
        }
    }
}

// Batches on the streamed kernel: problems' row tiles and centroid tiles run
// past their ends into the next problem's data, which must not leak.
TEST(CudaFlashAssign, HopperStreamedBatchOfThreeEqualsThreeSeparateCalls) {
    REQUIRE_HOPPER();
    for (DType dtype : {DType::Float16, DType::BFloat16}) {
        SCOPED_TRACE(fk::dtype_name(dtype));
        expect_batch_equals_calls(AssignKernel::Hopper, dtype, 1234, 77, 520, 3);
    }
    fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::sm90_x, "streamed");
    expect_batch_equals_calls(AssignKernel::Hopper, DType::Float16, 1234, 77, 40, 3);
}

// Where the Hopper kernel cannot run, asking for it is an error that says
// why, and Auto quietly takes the sm_80 kernel (same labels as Tiled).
TEST(CudaFlashAssign, SmallHopperRefusesWhatItCannotRunAndAutoFallsBack) {
    REQUIRE_HOPPER();
    const int64_t n = 500, k = 50;
    struct Case {
        DType dtype;
        Precision prec;
        int64_t d;
        const char* why;
    };
    for (Case cs : {Case{DType::Float16, Precision::Exact, 17, "16 bytes"},
                    Case{DType::Float32, Precision::Exact, 136, "exact"}}) {
        SCOPED_TRACE(std::string(fk::dtype_name(cs.dtype)) + " d=" + std::to_string(cs.d));
        const auto x = rounded(fk_test::random_matrix(n, cs.d, 201), cs.dtype);
        const auto c = rounded(fk_test::random_matrix(k, cs.d, 202), cs.dtype);
        try {
            gpu_assign(x, n, c, k, cs.d, cs.dtype, Metric::L2, cs.prec, AssignKernel::Hopper);
            ADD_FAILURE() << "no error";
        } catch (const std::exception& e) {
            EXPECT_NE(std::string(e.what()).find(cs.why), std::string::npos) << e.what();
        }
        const auto au = gpu_assign(x, n, c, k, cs.d, cs.dtype, Metric::L2, cs.prec, AssignKernel::Auto);
        const auto ti = gpu_assign(x, n, c, k, cs.d, cs.dtype, Metric::L2, cs.prec, AssignKernel::Tiled);
        EXPECT_EQ(au.labels, ti.labels);
    }
}

// Quick (sanitizer) run of the Hopper kernels (resident, streamed, fp32 exact)
// in every dtype they take.
TEST(CudaFlashAssign, SmallHopperWritesEveryLabel) {
    REQUIRE_HOPPER();
    const int64_t n = 300, k = 140;
    for (int64_t d : {40, 264}) {
        const auto x0 = fk_test::random_matrix(n, d, 211);
        const auto c0 = fk_test::random_matrix(k, d, 212);
        for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
            SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " d=" + std::to_string(d));
            const auto x = rounded(x0, dtype), c = rounded(c0, dtype);
            const auto ref = reference(x, n, c, k, d, false);
            const Precision prec = dtype == DType::Float32 ? Precision::TF32 : Precision::Exact;
            const auto g = gpu_assign(x, n, c, k, d, dtype, Metric::L2, prec, AssignKernel::Hopper);
            // TF32 reads 10-bit mantissas: only labels, with a looser near-tie
            const bool tf32 = dtype == DType::Float32;
            const Agreement a = check_assign(x, n, c, k, d, false, ref, g.labels.data(),
                                             tf32 ? nullptr : g.dist.data(), tf32 ? 1e-2 : 1e-3,
                                             1e-3);
            EXPECT_EQ(a.bad, 0);
            EXPECT_EQ(a.dist_bad, 0);
        }
        if (d <= 128) {  // the 3xTF32 kernel
            const auto ref = reference(x0, n, c0, k, d, false);
            const auto g = gpu_assign(x0, n, c0, k, d, DType::Float32, Metric::L2,
                                      Precision::Exact, AssignKernel::Hopper);
            const Agreement a = check_assign(x0, n, c0, k, d, false, ref, g.labels.data(),
                                             g.dist.data(), 1e-6, 1e-4);
            EXPECT_EQ(a.bad, 0) << "fp32 exact d=" << d;
            EXPECT_EQ(a.dist_bad, 0) << "fp32 exact d=" << d;
        }
    }
}

// ================================================================ update

enum class Labels { Balanced, Skewed, OneCluster };

const char* labels_name(Labels l) {
    return l == Labels::Balanced ? "balanced" : l == Labels::Skewed ? "skewed" : "one-cluster";
}

/// Labels of one problem: uniform; 90% of points in 1% of the clusters; or all
/// in one cluster (k / 2).
std::vector<int32_t> make_labels(int64_t n, int64_t k, Labels kind, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> l(n);
    const int64_t hot = std::max<int64_t>(1, k / 100);
    std::uniform_int_distribution<int64_t> any(0, k - 1), pick_hot(0, hot - 1);
    std::uniform_real_distribution<double> u(0, 1);
    for (auto& v : l) {
        if (kind == Labels::OneCluster) {
            v = int32_t(k / 2);
        } else if (kind == Labels::Skewed && u(rng) < 0.9) {
            v = int32_t(pick_hot(rng) * (k / hot));  // spread the hot clusters out
        } else {
            v = int32_t(any(rng));
        }
    }
    return l;
}

struct UpdateResult {
    std::vector<float> sums, weight_sums;
    std::vector<int32_t> counts;
};

const float kFrozenMark = 777.0f;

/// GPU sort_inverse_update on host data in `dtype`; outputs poisoned first:
/// NaN / -7 everywhere, kFrozenMark in the frozen rows (must stay).
UpdateResult gpu_update(const std::vector<float>& x, DType dtype, int64_t n, int64_t d,
                        const std::vector<int32_t>& labels, const std::vector<float>* weights,
                        int64_t k, int64_t k_begin, int64_t batch = 1,
                        bool caller_workspace = false, size_t label_offset = 0) {
    Dev<char> dx(encode(x, dtype));
    // label_offset > 0 passes the labels off 16-byte alignment
    std::vector<int32_t> padded(label_offset, -1);
    padded.insert(padded.end(), labels.begin(), labels.end());
    Dev<int32_t> dl(padded);
    std::unique_ptr<Dev<float>> dw;
    if (weights) {
        dw.reset(new Dev<float>(*weights));
    }
    std::vector<float> sums0(size_t(batch * k * d), kNaN), ws0(size_t(batch * k), kNaN);
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t j = 0; j < k_begin; j++) {
            std::fill(sums0.begin() + (b * k + j) * d, sums0.begin() + (b * k + j + 1) * d,
                      kFrozenMark);
            ws0[b * k + j] = kFrozenMark;
        }
    }
    Dev<float> sums(sums0), wsums(ws0);
    Dev<int32_t> counts(size_t(batch * k));
    counts.fill(-7);
    kn::UpdateArgs a;
    a.x = dx.get();
    a.dtype = dtype;
    a.n = n;
    a.d = d;
    a.labels = dl.get() + label_offset;
    a.weights = dw ? dw->get() : nullptr;
    a.k = k;
    a.k_begin = k_begin;
    a.batch = batch;
    a.sums = sums.get();
    a.weight_sums = wsums.get();
    a.counts = counts.get();
    std::unique_ptr<Dev<char>> ws;
    if (caller_workspace) {
        const size_t bytes = kn::update_workspace_bytes(kGpu, n, d, k, batch);
        ws.reset(new Dev<char>(bytes));
        a.workspace = ws->get();
        a.workspace_bytes = bytes;
    }
    kn::sort_inverse_update(kGpu, a);
    return {sums.download(), wsums.download(), counts.download()};
}

UpdateResult cpu_update(const std::vector<float>& x, int64_t n, int64_t d,
                        const std::vector<int32_t>& labels, const std::vector<float>* weights,
                        int64_t k, int64_t k_begin, int64_t batch = 1) {
    UpdateResult r{std::vector<float>(size_t(batch * k * d), kNaN),
                   std::vector<float>(size_t(batch * k), kNaN), std::vector<int32_t>(size_t(batch * k), -7)};
    kn::UpdateArgs a;
    a.x = x.data();
    a.n = n;
    a.d = d;
    a.labels = labels.data();
    a.weights = weights ? weights->data() : nullptr;
    a.k = k;
    a.k_begin = k_begin;
    a.batch = batch;
    a.sums = r.sums.data();
    a.weight_sums = r.weight_sums.data();
    a.counts = r.counts.data();
    kn::sort_inverse_update(kCpu, a);
    return r;
}

/// Compares GPU and CPU updates of one batch: counts exactly; frozen rows
/// untouched on the GPU; sums and weight sums within 1e-5 of the sum of
/// absolute terms (the scale of float rounding in a sum).
void expect_update_close(const UpdateResult& g, const UpdateResult& c,
                         const std::vector<float>& x, int64_t n, int64_t d,
                         const std::vector<int32_t>& labels, const std::vector<float>* weights,
                         int64_t k, int64_t k_begin, int64_t batch) {
    ASSERT_EQ(g.counts, c.counts);
    std::vector<double> abssum(size_t(batch * k * d), 0.0), wabs(size_t(batch * k), 0.0);
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t i = 0; i < n; i++) {
            const int64_t row = b * k + labels[b * n + i];
            const double w = weights ? (*weights)[b * n + i] : 1.0;
            wabs[row] += std::fabs(w);
            for (int64_t t = 0; t < d; t++) {
                abssum[row * d + t] += std::fabs(w * x[(b * n + i) * d + t]);
            }
        }
    }
    int64_t worst_at = -1;
    double worst = 0;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t j = 0; j < k; j++) {
            const int64_t row = b * k + j;
            if (j < k_begin) {
                ASSERT_EQ(g.weight_sums[row], kFrozenMark) << "frozen weight row " << row;
                for (int64_t t = 0; t < d; t++) {
                    ASSERT_EQ(g.sums[row * d + t], kFrozenMark) << "frozen row " << row;
                }
                continue;
            }
            ASSERT_FALSE(std::isnan(g.weight_sums[row])) << "weight row " << row << " not written";
            EXPECT_LE(std::fabs(double(g.weight_sums[row]) - c.weight_sums[row]),
                      1e-5 * wabs[row] + 1e-6)
                    << "weight_sums row " << row;
            if (!weights) {
                EXPECT_EQ(g.weight_sums[row], float(g.counts[row]));
            }
            for (int64_t t = 0; t < d; t++) {
                const float v = g.sums[row * d + t];
                ASSERT_FALSE(std::isnan(v)) << "sums row " << row << " col " << t << " not written";
                const double err = std::fabs(double(v) - c.sums[row * d + t]) /
                                   (abssum[row * d + t] + 1e-6);
                if (err > worst) {
                    worst = err;
                    worst_at = row * d + t;
                }
            }
        }
    }
    EXPECT_LE(worst, 1e-5) << "worst relative sum error at element " << worst_at;
}

// GPU update equals the CPU kernel for balanced, skewed (90% of points in 1%
// of clusters) and single-cluster labels; weighted and not; frozen clusters;
// d on the vector and the scalar path; enough points that clusters are cut
// into many pieces.
TEST(CudaUpdate, MatchesCpuForBalancedSkewedAndSingleClusterLabels) {
    REQUIRE_GPU();
    for (Labels kind : {Labels::Balanced, Labels::Skewed, Labels::OneCluster}) {
        for (int64_t d : {3, 17, 128, 300}) {
            for (int weighted = 0; weighted < 2; weighted++) {
                for (int64_t k_begin : {0, 5}) {
                    const int64_t n = kind == Labels::OneCluster ? 60000 : 20000;
                    const int64_t k = 200;
                    SCOPED_TRACE(std::string(labels_name(kind)) + " d=" + std::to_string(d) +
                                 (weighted ? " weighted" : "") +
                                 " k_begin=" + std::to_string(k_begin));
                    const auto x = fk_test::random_matrix(n, d, 200 + d);
                    const auto labels = make_labels(n, k, kind, 300 + d);
                    const auto w = fk_test::random_weights(n, 400);
                    const std::vector<float>* pw = weighted ? &w : nullptr;
                    const auto g = gpu_update(x, DType::Float32, n, d, labels, pw, k, k_begin);
                    const auto c = cpu_update(x, n, d, labels, pw, k, k_begin);
                    expect_update_close(g, c, x, n, d, labels, pw, k, k_begin, 1);
                }
            }
        }
    }
}

// fp16 / bf16 points are accumulated in fp32: equal to the CPU update of the
// rounded points.
TEST(CudaUpdate, HalfAndBf16PointsMatchCpuOnRoundedInputs) {
    REQUIRE_GPU();
    const int64_t n = 20000, k = 100;
    for (DType dtype : {DType::Float16, DType::BFloat16}) {
        for (int64_t d : {17, 128}) {
            SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " d=" + std::to_string(d));
            const auto x = rounded(fk_test::random_matrix(n, d, 500 + d), dtype);
            const auto labels = make_labels(n, k, Labels::Skewed, 501);
            const auto g = gpu_update(x, dtype, n, d, labels, nullptr, k, 0);
            const auto c = cpu_update(x, n, d, labels, nullptr, k, 0);
            expect_update_close(g, c, x, n, d, labels, nullptr, k, 0, 1);
        }
    }
}

// No floating-point atomics: two runs give bitwise identical sums.
TEST(CudaUpdate, TwoRunsAreBitwiseIdentical) {
    REQUIRE_GPU();
    const int64_t n = 200000, k = 1000, d = 128;
    const auto x = fk_test::random_matrix(n, d, 600);
    const auto w = fk_test::random_weights(n, 601);
    for (Labels kind : {Labels::Balanced, Labels::Skewed, Labels::OneCluster}) {
        const auto labels = make_labels(n, k, kind, 602);
        const auto a = gpu_update(x, DType::Float32, n, d, labels, &w, k, 0);
        const auto b = gpu_update(x, DType::Float32, n, d, labels, &w, k, 0);
        EXPECT_EQ(0, std::memcmp(a.sums.data(), b.sums.data(), a.sums.size() * 4))
                << labels_name(kind);
        EXPECT_EQ(0, std::memcmp(a.weight_sums.data(), b.weight_sums.data(), a.weight_sums.size() * 4))
                << labels_name(kind);
        EXPECT_EQ(a.counts, b.counts);
    }
}

// Key and point packed in one word (the default where their bits fit in 32)
// sort the points into the same order as (key, id) pairs: bitwise the same
// sums, weight sums and counts, for one problem and a batch, every label kind.
TEST(CudaUpdate, PackedKeysEqualPairsBitwise) {
    REQUIRE_GPU();
    struct Case {
        int64_t n, k, d, B;
    };
    // 18 + 10 bits, 14 + 7, a batch of 3 x 9000 (15 + 8), and all 32 bits
    // (17 + 15: the top key bit set)
    for (Case c : {Case{200000, 1000, 128, 1}, Case{10007, 100, 17, 1}, Case{9000, 50, 20, 3},
                   Case{70000, 32767, 8, 1}}) {
        const auto x = fk_test::random_matrix(c.B * c.n, c.d, 650 + c.d);
        const auto w = fk_test::random_weights(c.B * c.n, 651);
        for (Labels kind : {Labels::Balanced, Labels::Skewed, Labels::OneCluster}) {
            SCOPED_TRACE(std::string(labels_name(kind)) + " n=" + std::to_string(c.n) +
                         " B=" + std::to_string(c.B));
            std::vector<int32_t> labels;
            for (int64_t b = 0; b < c.B; b++) {
                const auto l = make_labels(c.n, c.k, kind, 652 + b);
                labels.insert(labels.end(), l.begin(), l.end());
            }
            for (const std::vector<float>* pw : {static_cast<const std::vector<float>*>(nullptr), &w}) {
                const auto packed = gpu_update(x, DType::Float32, c.n, c.d, labels, pw, c.k, 0, c.B);
                fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::update, "pairs");
                const auto pairs = gpu_update(x, DType::Float32, c.n, c.d, labels, pw, c.k, 0, c.B);
                EXPECT_EQ(0, std::memcmp(packed.sums.data(), pairs.sums.data(), packed.sums.size() * 4));
                EXPECT_EQ(0, std::memcmp(packed.weight_sums.data(), pairs.weight_sums.data(),
                                         packed.weight_sums.size() * 4));
                EXPECT_EQ(packed.counts, pairs.counts);
                const auto cpu = cpu_update(x, c.n, c.d, labels, pw, c.k, 0, c.B);
                expect_update_close(packed, cpu, x, c.n, c.d, labels, pw, c.k, 0, c.B);
            }
        }
    }
}

// The sort's smaller digits (6 or 7 bits where they make as many passes as
// CUB's 8) sort into the same stable order: bitwise the sums, weight sums
// and counts of CUB's own tuning ("sort8"), packed and in pairs.
TEST(CudaUpdate, SortDigitsEqualCubTuningBitwise) {
    REQUIRE_GPU();
    struct Case {
        int64_t n, k, d;
    };
    // key bits + id bits: 13 + 18 (packed, 7-bit digits), 13 + 20 (pairs,
    // 7), 17 + 18 (pairs, 6), 19 + 17 (pairs, 7)
    for (Case c : {Case{200000, 4096, 16}, Case{600000, 5000, 8}, Case{200000, 70000, 8},
                   Case{100000, 300000, 4}}) {
        const auto x = fk_test::random_matrix(c.n, c.d, 660 + c.d);
        const auto w = fk_test::random_weights(c.n, 661);
        for (Labels kind : {Labels::Balanced, Labels::Skewed}) {
            SCOPED_TRACE(std::string(labels_name(kind)) + " n=" + std::to_string(c.n) +
                         " k=" + std::to_string(c.k));
            const auto labels = make_labels(c.n, c.k, kind, 662);
            const auto tuned = gpu_update(x, DType::Float32, c.n, c.d, labels, &w, c.k, 0);
            fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::update, "sort8");
            const auto cub8 = gpu_update(x, DType::Float32, c.n, c.d, labels, &w, c.k, 0);
            EXPECT_EQ(0, std::memcmp(tuned.sums.data(), cub8.sums.data(), tuned.sums.size() * 4));
            EXPECT_EQ(0, std::memcmp(tuned.weight_sums.data(), cub8.weight_sums.data(),
                                     tuned.weight_sums.size() * 4));
            EXPECT_EQ(tuned.counts, cub8.counts);
        }
    }
    const int64_t n = 600000, k = 5000, d = 8;  // the pairs case against the CPU too
    const auto x = fk_test::random_matrix(n, d, 668);
    const auto labels = make_labels(n, k, Labels::Skewed, 669);
    expect_update_close(gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0),
                        cpu_update(x, n, d, labels, nullptr, k, 0), x, n, d, labels, nullptr, k,
                        0, 1);
}

// A batch of 3 gives bitwise the results of 3 separate calls (pieces restart
// at every problem), and matches the CPU kernel.
/// A batch of B problems gives bitwise the sums, weights and counts of B
/// separate calls, and is close to the CPU's.
void expect_batch_equals_separate_calls(const std::vector<float>& x, const std::vector<float>& w,
                                        const std::vector<int32_t>& labels, int64_t n, int64_t d,
                                        int64_t k, int64_t k_begin, int64_t B) {
    const auto all = gpu_update(x, DType::Float32, n, d, labels, &w, k, k_begin, B);
    const auto cpu = cpu_update(x, n, d, labels, &w, k, k_begin, B);
    expect_update_close(all, cpu, x, n, d, labels, &w, k, k_begin, B);
    for (int64_t b = 0; b < B; b++) {
        const std::vector<float> xb(x.begin() + b * n * d, x.begin() + (b + 1) * n * d);
        const std::vector<float> wb(w.begin() + b * n, w.begin() + (b + 1) * n);
        const std::vector<int32_t> lb(labels.begin() + b * n, labels.begin() + (b + 1) * n);
        const auto one = gpu_update(xb, DType::Float32, n, d, lb, &wb, k, k_begin);
        EXPECT_EQ(0, std::memcmp(one.sums.data(), all.sums.data() + b * k * d, 4 * size_t(k * d)))
                << "problem " << b;
        EXPECT_EQ(0, std::memcmp(one.weight_sums.data(), all.weight_sums.data() + b * k, 4 * size_t(k)));
        EXPECT_TRUE(std::equal(one.counts.begin(), one.counts.end(), all.counts.begin() + b * k));
    }
}

TEST(CudaUpdate, BatchOfThreeEqualsThreeSeparateCallsBitwise) {
    REQUIRE_GPU();
    const int64_t n = 9000, k = 50, d = 20, B = 3, k_begin = 2;
    const auto x = fk_test::random_matrix(B * n, d, 700);
    const auto w = fk_test::random_weights(B * n, 701);
    std::vector<int32_t> labels;
    for (int64_t b = 0; b < B; b++) {
        const auto l = make_labels(n, k, b == 1 ? Labels::OneCluster : Labels::Skewed, 702 + b);
        labels.insert(labels.end(), l.begin(), l.end());
    }
    expect_batch_equals_separate_calls(x, w, labels, n, d, k, k_begin, B);
}

// Keys wider than 16 bits: two problems of k = 40000 (80002 keys, most
// clusters empty) equal their separate calls bitwise, and k = 70000 matches
// the CPU for balanced and skewed labels.
TEST(CudaUpdate, ManyClustersMatchCpuAndBatchEqualsSeparateCalls) {
    REQUIRE_GPU();
    {
        const int64_t n = 30000, k = 40000, d = 8, B = 2;
        const auto x = fk_test::random_matrix(B * n, d, 710);
        const auto w = fk_test::random_weights(B * n, 711);
        std::vector<int32_t> labels = make_labels(n, k, Labels::Balanced, 712);
        const auto l1 = make_labels(n, k, Labels::Skewed, 713);
        labels.insert(labels.end(), l1.begin(), l1.end());
        expect_batch_equals_separate_calls(x, w, labels, n, d, k, 0, B);
    }
    const int64_t n = 200000, k = 70000, d = 12;
    const auto x = fk_test::random_matrix(n, d, 714);
    for (Labels kind : {Labels::Balanced, Labels::Skewed}) {
        SCOPED_TRACE(labels_name(kind));
        const auto labels = make_labels(n, k, kind, 715);
        const auto g = gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0);
        const auto c = cpu_update(x, n, d, labels, nullptr, k, 0);
        expect_update_close(g, c, x, n, d, labels, nullptr, k, 0, 1);
    }
}

// A caller-provided workspace of update_workspace_bytes() gives the same bits
// as the internal allocation; a smaller one is refused.
TEST(CudaUpdate, CallerWorkspaceGivesSameBitsAndTooSmallThrows) {
    REQUIRE_GPU();
    const int64_t n = 30000, k = 300, d = 64;
    const auto x = fk_test::random_matrix(n, d, 800);
    const auto labels = make_labels(n, k, Labels::Skewed, 801);
    const auto a = gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0, 1, false);
    const auto b = gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0, 1, true);
    EXPECT_EQ(0, std::memcmp(a.sums.data(), b.sums.data(), a.sums.size() * 4));

    Dev<float> dx(x), sums{size_t(k * d)}, wsums{size_t(k)};
    Dev<int32_t> dl(labels);
    const size_t bytes = kn::update_workspace_bytes(kGpu, n, d, k, 1);
    Dev<char> ws(bytes);
    kn::UpdateArgs args;
    args.x = dx.get();
    args.n = n;
    args.d = d;
    args.labels = dl.get();
    args.k = k;
    args.sums = sums.get();
    args.weight_sums = wsums.get();
    args.workspace = ws.get();
    args.workspace_bytes = bytes - 1;
    EXPECT_THROW(kn::sort_inverse_update(kGpu, args), fk::KernelError);
}

// Labels outside [0, k) (invalid input) are ignored: no crash, no
// out-of-bounds write, the valid points are still summed.
TEST(CudaUpdate, SmallOutOfRangeLabelsAreIgnored) {
    REQUIRE_GPU();
    const int64_t n = 1000, k = 10, d = 8;
    const auto x = fk_test::random_matrix(n, d, 900);
    auto labels = make_labels(n, k, Labels::Balanced, 901);
    labels[3] = -1;
    labels[500] = int32_t(k);
    labels[999] = 1 << 30;
    const auto g = gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0);
    int64_t total = 0;
    for (int32_t c : g.counts) {
        total += c;
    }
    EXPECT_EQ(total, n - 3);
}

// Labels off 16-byte alignment take the keys' scalar path and give bitwise
// the sums of aligned labels (n not a multiple of 4: a partial last group).
TEST(CudaUpdate, SmallMisalignedLabelsGiveTheAlignedBits) {
    REQUIRE_GPU();
    const int64_t n = 5003, k = 37, d = 16;
    const auto x = fk_test::random_matrix(n, d, 910);
    const auto labels = make_labels(n, k, Labels::Skewed, 911);
    const auto aligned = gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0);
    for (size_t off : {1, 2, 3}) {
        const auto g = gpu_update(x, DType::Float32, n, d, labels, nullptr, k, 0, 1, false, off);
        EXPECT_EQ(g.counts, aligned.counts) << "offset " << off;
        EXPECT_EQ(0, std::memcmp(g.sums.data(), aligned.sums.data(), g.sums.size() * sizeof(float)))
                << "offset " << off;
        EXPECT_EQ(g.weight_sums, aligned.weight_sums) << "offset " << off;
    }
    const auto c = cpu_update(x, n, d, labels, nullptr, k, 0);
    expect_update_close(aligned, c, x, n, d, labels, nullptr, k, 0, 1);
}

// Quick (sanitizer) run: empty clusters get zero rows and weights, frozen rows
// stay, counts cover every cluster; scalar and vector paths; many pieces.
TEST(CudaUpdate, SmallEmptyAndFrozenClustersMatchCpu) {
    REQUIRE_GPU();
    for (int64_t d : {5, 32}) {
        for (int weighted = 0; weighted < 2; weighted++) {
            const int64_t n = 3000, k = 40, k_begin = 3;
            auto labels = make_labels(n, k, Labels::Skewed, 1000 + d);
            for (auto& l : labels) {
                if (l == 7 || l == 8) {
                    l = 9;  // clusters 7 and 8 empty
                }
            }
            const auto x = fk_test::random_matrix(n, d, 1001);
            const auto w = fk_test::random_weights(n, 1002);
            const std::vector<float>* pw = weighted ? &w : nullptr;
            const auto g = gpu_update(x, DType::Float32, n, d, labels, pw, k, k_begin);
            const auto c = cpu_update(x, n, d, labels, pw, k, k_begin);
            expect_update_close(g, c, x, n, d, labels, pw, k, k_begin, 1);
            EXPECT_EQ(g.counts[7], 0);
            EXPECT_EQ(g.weight_sums[7], 0.0f);
            EXPECT_EQ(g.sums[7 * d], 0.0f);
        }
    }
}

// ================================================================ finalize

// finalize equals the CPU kernel bitwise (same FAISS rounding), counts empty
// clusters, leaves frozen rows, and reports the largest shift; batch of 2.
TEST(CudaFinalize, SmallMatchesCpuWithEmptyAndFrozenClusters) {
    REQUIRE_GPU();
    const int64_t k = 37, d = 19, B = 2, k_begin = 4;
    auto sums = fk_test::random_matrix(B * k, d, 1100);
    auto wsums = fk_test::random_weights(B * k, 1101);
    for (int64_t j : {5, 6, 20, 40, 41, 73}) {
        // empties: 5, 6, 20 in problem 0; 41, 73 (j = 4, 36) in problem 1,
        // and 40 (j = 3) is frozen, so not counted
        wsums[j] = 0.0f;
    }
    for (auto& v : wsums) {
        v *= 50.0f;
    }
    const auto old_c = fk_test::random_matrix(B * k, d, 1102);

    std::vector<float> cpu_c = old_c;
    std::vector<int32_t> cpu_empty(B, -7);
    std::vector<float> cpu_shift(B, kNaN);
    kn::FinalizeArgs a;
    a.sums = sums.data();
    a.weight_sums = wsums.data();
    a.k = k;
    a.d = d;
    a.k_begin = k_begin;
    a.batch = B;
    a.centroids = cpu_c.data();
    a.n_empty = cpu_empty.data();
    a.max_shift = cpu_shift.data();
    kn::finalize_centroids(kCpu, a);

    Dev<float> ds(sums), dw(wsums), dc(old_c), dshift(B);
    Dev<int32_t> dempty(B);
    dempty.fill(-7);
    dshift.fill(kNaN);
    a.sums = ds.get();
    a.weight_sums = dw.get();
    a.centroids = dc.get();
    a.n_empty = dempty.get();
    a.max_shift = dshift.get();
    kn::finalize_centroids(kGpu, a);
    const auto gpu_c = dc.download();
    EXPECT_EQ(0, std::memcmp(gpu_c.data(), cpu_c.data(), gpu_c.size() * 4));
    EXPECT_EQ(dempty.download(), cpu_empty);
    const auto gshift = dshift.download();
    for (int64_t b = 0; b < B; b++) {
        EXPECT_NEAR(gshift[b], cpu_shift[b], 1e-6 * cpu_shift[b]) << "problem " << b;
        EXPECT_GT(gshift[b], 0.0f);
    }
    EXPECT_EQ(cpu_empty[0], 3);
    EXPECT_EQ(cpu_empty[1], 2);
    // null n_empty / max_shift are allowed
    a.n_empty = nullptr;
    a.max_shift = nullptr;
    dc.upload(old_c);
    kn::finalize_centroids(kGpu, a);
    EXPECT_EQ(0, std::memcmp(dc.download().data(), cpu_c.data(), gpu_c.size() * 4));
}

// finalize's optional outputs for the next assignment (the rows rounded to
// fp16 / bf16, and their norms) have bitwise what convert_from_float and
// row_norms give for the new rows, in each of row_norms' orders: serial
// (d = 19), warp (d = 66), 4-wide warp (d = 100, 128; also with sums and
// centroids off 16-byte alignment, element-wise); frozen rows are left
// untouched, empty rows get zeros.
TEST(CudaFinalize, SmallTypedRowsAndNormsAreThoseOfConvertAndRowNorms) {
    REQUIRE_GPU();
    const int64_t k = 37, B = 2, k_begin = 4;
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        for (int64_t d : {19, 66, 100, 128}) {
            for (int64_t off : {0, 1}) {
                const bool typed = dtype != DType::Float32;
                if (off == 1 && !typed) {
                    continue;  // fp32 norms are of the centroids themselves
                }
                SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " d=" + std::to_string(d) +
                             " offset " + std::to_string(off));
                const auto sums = fk_test::random_matrix(B * k, d, 1110 + d);
                auto wsums = fk_test::random_weights(B * k, 1111);
                wsums[6] = 0.0f;      // empty in problem 0
                wsums[k + 9] = 0.0f;  // empty in problem 1
                auto old_c = fk_test::random_matrix(B * k, d, 1112);
                std::vector<float> pad_s(off, 0.0f), pad_c(off, 0.0f);
                pad_s.insert(pad_s.end(), sums.begin(), sums.end());
                pad_c.insert(pad_c.end(), old_c.begin(), old_c.end());
                Dev<float> ds(pad_s), dw(wsums), dc(pad_c), dnorms(B * k);
                Dev<uint16_t> dtyped(typed ? B * k * d : 0);
                dnorms.fill(kNaN);
                if (typed) {
                    dtyped.fill(0x7777);
                }
                kn::FinalizeArgs a;
                a.sums = ds.get() + off;
                a.weight_sums = dw.get();
                a.k = k;
                a.d = d;
                a.k_begin = k_begin;
                a.batch = B;
                a.centroids = dc.get() + off;
                a.typed_dtype = dtype;
                a.typed = typed ? dtyped.get() : nullptr;
                a.norms = dnorms.get();
                kn::finalize_centroids(kGpu, a);

                Dev<uint16_t> ref_typed(typed ? B * k * d : 0);
                Dev<float> ref_norms(B * k);
                if (typed) {
                    kn::convert_from_float(kGpu, dc.get() + off, dtype, B * k * d, ref_typed.get());
                }
                kn::row_norms(kGpu, typed ? static_cast<const void*>(ref_typed.get()) : dc.get(),
                              dtype, k, d, ref_norms.get(), B);
                const auto got_t = dtyped.download(), want_t = ref_typed.download();
                const auto got_n = dnorms.download(), want_n = ref_norms.download();
                for (int64_t b = 0; b < B; b++) {
                    for (int64_t j = 0; j < k; j++) {
                        const int64_t row = b * k + j;
                        if (j < k_begin) {
                            EXPECT_TRUE(std::isnan(got_n[row])) << "frozen row " << row << " touched";
                            if (typed) {
                                EXPECT_EQ(got_t[row * d], 0x7777) << "frozen row " << row << " touched";
                            }
                            continue;
                        }
                        EXPECT_EQ(fk_test::float_bits(got_n[row]), fk_test::float_bits(want_n[row]))
                                << "row " << row;
                        if (wsums[row] == 0.0f) {
                            EXPECT_EQ(got_n[row], 0.0f);
                        } else {
                            EXPECT_GT(got_n[row], 0.0f);
                        }
                        if (typed) {
                            EXPECT_TRUE(std::equal(got_t.begin() + row * d,
                                                   got_t.begin() + (row + 1) * d,
                                                   want_t.begin() + row * d))
                                    << "typed row " << row;
                        }
                    }
                }
            }
        }
    }
}

// spherical: unit rows (zero rows untouched) within float rounding of the
// CPU; round_to_int: exactly roundf.
TEST(CudaPostprocess, SmallSphericalAndRoundMatchCpu) {
    REQUIRE_GPU();
    const int64_t k = 33, d = 45, B = 2;
    auto c = fk_test::random_matrix(B * k, d, 1200);
    std::fill(c.begin() + 5 * d, c.begin() + 6 * d, 0.0f);  // a zero row
    for (auto& v : c) {
        v *= 3.7f;
    }
    {
        std::vector<float> cpu = c;
        kn::postprocess_centroids(kCpu, cpu.data(), k, d, true, false, B);
        Dev<float> dc(c);
        kn::postprocess_centroids(kGpu, dc.get(), k, d, true, false, B);
        const auto g = dc.download();
        for (size_t i = 0; i < g.size(); i++) {
            ASSERT_NEAR(g[i], cpu[i], 1e-6f) << i;
        }
        for (int64_t t = 0; t < d; t++) {
            EXPECT_EQ(g[5 * d + t], 0.0f);
        }
    }
    {
        std::vector<float> cpu = c;
        kn::postprocess_centroids(kCpu, cpu.data(), k, d, false, true, B);
        Dev<float> dc(c);
        kn::postprocess_centroids(kGpu, dc.get(), k, d, false, true, B);
        EXPECT_EQ(dc.download(), cpu);
    }
}

// ================================================================ small ops

TEST(CudaSmallOps, SmallRowNormsMatchFloat64ForEveryDtype) {
    REQUIRE_GPU();
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        for (int64_t d : {1, 8, 17, 128, 300}) {
            const int64_t n = 513, B = 2;
            const auto x = rounded(fk_test::random_matrix(B * n, d, 1300 + d), dtype);
            Dev<char> dx(encode(x, dtype));
            Dev<float> out(size_t(B * n));
            out.fill(kNaN);
            kn::row_norms(kGpu, dx.get(), dtype, n, d, out.get(), B);
            const auto g = out.download();
            for (int64_t i = 0; i < B * n; i++) {
                const double s = fk_test::norm2_f64(&x[i * d], d);
                ASSERT_NEAR(g[i], s, 1e-5 * s + 1e-30) << fk::dtype_name(dtype) << " d=" << d << " row " << i;
            }
        }
    }
}

TEST(CudaSmallOps, SmallGatherRowsConvertsToFloat) {
    REQUIRE_GPU();
    const int64_t n = 400, d = 21;
    const std::vector<int64_t> ids = {0, 399, 17, 17, 250, 3};
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        const auto x = rounded(fk_test::random_matrix(n, d, 1400), dtype);
        Dev<char> dx(encode(x, dtype));
        Dev<float> out(ids.size() * d);
        out.fill(kNaN);
        kn::gather_rows(kGpu, dx.get(), dtype, n, d, ids.data(), int64_t(ids.size()), out.get());
        const auto g = out.download();
        for (size_t i = 0; i < ids.size(); i++) {
            for (int64_t t = 0; t < d; t++) {
                ASSERT_EQ(g[i * d + t], x[ids[i] * d + t]) << fk::dtype_name(dtype);
            }
        }
    }
}

TEST(CudaSmallOps, SmallScatterRowsWritesOnlyTheGivenRows) {
    REQUIRE_GPU();
    const int64_t n = 400, d = 21;
    const std::vector<int64_t> ids = {0, 399, 17, 250, 3};
    auto x = fk_test::random_matrix(n, d, 1450);
    const auto rows = fk_test::random_matrix(int64_t(ids.size()), d, 1451);
    Dev<float> dx(x), drows(rows);
    kn::scatter_rows(kGpu, drows.get(), int64_t(ids.size()), d, ids.data(), n, dx.get());
    kn::scatter_rows(kCpu, rows.data(), int64_t(ids.size()), d, ids.data(), n, x.data());
    EXPECT_EQ(dx.download(), x);
}

// Every element copied bit for bit into its padded row, zeros after d,
// whatever was in the output before; the CPU gives the same bytes.
TEST(CudaSmallOps, SmallPadRowsCopiesTheBitsAndZeroesThePadding) {
    REQUIRE_GPU();
    const int64_t n = 300;
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        for (const auto& [d, dp] : std::vector<std::pair<int64_t, int64_t>>{{1, 8},
                                                                            {3, 8},
                                                                            {100, 104},
                                                                            {13, 16},
                                                                            {21, 21}}) {
            SCOPED_TRACE(std::string(fk::dtype_name(dtype)) + " d=" + std::to_string(d));
            const std::vector<char> x = encode(fk_test::random_matrix(n, d, 1470 + d), dtype);
            Dev<char> dx(x);
            Dev<char> out(std::vector<char>(size_t(n * dp) * elem_size(dtype), char(0x7f)));
            kn::pad_rows(kGpu, dx.get(), dtype, n, d, dp, out.get());
            std::vector<char> want(size_t(n * dp) * elem_size(dtype), char(0x7f));
            kn::pad_rows(kCpu, x.data(), dtype, n, d, dp, want.data());
            EXPECT_EQ(out.download(), want);
            const size_t esz = elem_size(dtype);
            {
                // the source one element off its allocation's alignment:
                // narrower words, the same bits
                const int64_t m = n - 1;
                Dev<char> shifted(std::vector<char>(size_t(m * dp) * esz, char(0x7f)));
                kn::pad_rows(kGpu, dx.get() + esz, dtype, m, d, dp, shifted.get());
                std::vector<char> want_shifted(size_t(m * dp) * esz, char(0x7f));
                kn::pad_rows(kCpu, x.data() + esz, dtype, m, d, dp, want_shifted.data());
                EXPECT_EQ(shifted.download(), want_shifted) << "source off by one element";
            }
            for (int64_t r : {int64_t(0), n / 2, n - 1}) {
                EXPECT_EQ(0, std::memcmp(&want[size_t(r * dp) * esz], &x[size_t(r * d) * esz],
                                         size_t(d) * esz));
                for (size_t b = size_t(r * dp + d) * esz; b < size_t(r + 1) * dp * esz; b++) {
                    EXPECT_EQ(want[b], 0);
                }
            }
        }
    }
}

TEST(CudaSmallOps, SmallWidenLabelsKeepsEveryValue) {
    REQUIRE_GPU();
    // more elements than one grid's threads, so the grid-stride loop wraps
    for (const int64_t n : {int64_t(1), int64_t(1000), (int64_t(1) << 20) * 300 + 7}) {
        std::vector<int32_t> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; i++) {
            x[size_t(i)] = int32_t(uint32_t(i) * 2654435761u); // negatives and large values
        }
        Dev<int32_t> dx(x);
        Dev<int64_t> out(std::vector<int64_t>(size_t(n), -7));
        kn::widen_labels(kGpu, dx.get(), n, out.get());
        const std::vector<int64_t> got = out.download();
        ASSERT_EQ(got.size(), x.size());
        for (size_t i = 0; i < x.size(); i++) {
            ASSERT_EQ(got[i], int64_t(x[i])) << "element " << i;
        }
    }
}

TEST(CudaSmallOps, SmallConvertFromFloatRoundsToNearestEven) {
    REQUIRE_GPU();
    auto v = fk_test::random_matrix(1, 5000, 1500);
    v.push_back(65504.0f);
    v.push_back(1.0f + 1.0f / 2048.0f);  // a tie in fp16: rounds to even (1.0)
    v.push_back(-3.0e-6f);               // fp16 subnormal
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        Dev<float> src(v);
        Dev<char> dst(v.size() * elem_size(dtype));
        kn::convert_from_float(kGpu, src.get(), dtype, int64_t(v.size()), dst.get());
        EXPECT_EQ(dst.download(), encode(v, dtype)) << fk::dtype_name(dtype);
        // one element in: both pointers off 16 bytes, the scalar path (the
        // first element is never written, so the buffer starts zeroed)
        Dev<char> dst1(std::vector<char>(v.size() * elem_size(dtype), 0));
        kn::convert_from_float(kGpu, src.get() + 1, dtype, int64_t(v.size()) - 1,
                               dst1.get() + elem_size(dtype));
        const std::vector<char> got = dst1.download();
        const std::vector<char> want = encode(std::vector<float>(v.begin() + 1, v.end()), dtype);
        EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin() + elem_size(dtype)))
                << fk::dtype_name(dtype) << " misaligned";
    }
}

// The CUDA sums agree with the CPU's in-order double sums (to rounding for the
// distances, exactly for the integer counts) and are bitwise the same on
// every run, for one problem and a batch, with and without counts.
TEST(CudaSmallOps, SmallIterationStatsMatchCpuAndAreDeterministic) {
    REQUIRE_GPU();
    struct Case { int64_t n, k, B; };
    for (Case c : {Case{1, 1, 1}, Case{1000, 7, 1}, Case{1000003, 65536, 1}, Case{65536, 1024, 32},
                   Case{5000, 300000, 2}}) {
        auto v = fk_test::random_matrix(c.B, c.n, 1600 + c.n);
        std::vector<int32_t> counts(c.k * c.B);
        for (size_t j = 0; j < counts.size(); j++) {
            counts[j] = int32_t((j * 7919 + c.n) % 100003);
        }
        std::vector<double> cpu(3 * c.B);
        kn::iteration_stats(kCpu, v.data(), c.n, counts.data(), c.k, c.B, cpu.data());
        Dev<float> dv(v);
        Dev<int32_t> dc(counts);
        Dev<double> out(std::vector<double>(3 * c.B, -1.0));
        kn::iteration_stats(kGpu, dv.get(), c.n, dc.get(), c.k, c.B, out.get());
        const std::vector<double> a = out.download();
        kn::iteration_stats(kGpu, dv.get(), c.n, dc.get(), c.k, c.B, out.get());
        const std::vector<double> b = out.download();
        const std::string what = "n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) +
                                 " B=" + std::to_string(c.B);
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(double))) << what;
        for (int64_t p = 0; p < c.B; p++) {
            EXPECT_NEAR(a[3 * p], cpu[3 * p], 1e-12 * c.n) << what << " b=" << p;
            EXPECT_EQ(a[3 * p + 1], cpu[3 * p + 1]) << what << " b=" << p;
            EXPECT_EQ(a[3 * p + 2], cpu[3 * p + 2]) << what << " b=" << p;
        }
        kn::iteration_stats(kGpu, dv.get(), c.n, nullptr, c.k, 1, out.get());
        const std::vector<double> nc = out.download();
        EXPECT_NEAR(nc[0], cpu[0], 1e-12 * c.n) << what;
        EXPECT_EQ(nc[1], 0.0) << what;
        EXPECT_EQ(nc[2], 0.0) << what;
    }
}

// ================================================================ k-means++ seeding

using fk_test::small_ints;
using fk_test::uniform_draws;

struct Seeded {
    std::vector<float> centroids; // k x d
    std::vector<int64_t> picks;   // k - n_given
};

/// kmeanspp_init on `place`: x (exact in `dtype`) stored as `dtype`, the
/// first rows of the centroids = `given`, the others poisoned with NaN.
Seeded run_kpp(const fk::Place& place, const std::vector<float>& x, DType dtype, int64_t n,
               int64_t d, int64_t k, const std::vector<float>& given,
               const std::vector<double>& draws) {
    const int64_t n_given = int64_t(given.size()) / d;
    std::vector<float> c0 = given;
    c0.resize(k * d, kNaN);
    Seeded s{c0, std::vector<int64_t>(k - n_given, -7)};
    kn::KMeansPPArgs a;
    a.dtype = dtype;
    a.n = n;
    a.d = d;
    a.k = k;
    a.n_given = n_given;
    a.draws = draws.data();
    a.picked = s.picks.data();
    if (place.backend == fk::Backend::CPU) {
        a.x = x.data();
        a.centroids = s.centroids.data();
        kn::kmeanspp_init(place, a);
        return s;
    }
    Dev<char> dx(encode(x, dtype));
    Dev<float> dc(c0);
    // a pageable cudaMemcpy may return before its DMA lands; `place` may be
    // a non-blocking stream that would not wait for it
    cuda_ok(cudaDeviceSynchronize(), "upload");
    a.x = dx.get();
    a.centroids = dc.get();
    kn::kmeanspp_init(place, a);
    s.centroids = dc.download();
    return s;
}

/// Rows [n_given, k) are x[pick] (x as the kernel saw it) and the given rows
/// are untouched.
void expect_rows_are_picked_points(const Seeded& s, const std::vector<float>& x, int64_t d,
                                   const std::vector<float>& given, const std::string& what) {
    const int64_t n_given = int64_t(given.size()) / d;
    EXPECT_TRUE(std::equal(given.begin(), given.end(), s.centroids.begin())) << what;
    EXPECT_EQ(fk_test::first_row_not_its_pick(s.centroids, x, d, n_given, s.picks), -1) << what;
}

// Small integers are exact in every dtype and every sum: the CUDA picks equal
// the CPU's, for d below, at and above a warp, n not a multiple of a block of
// points, with and without given rows (d = 1 has 17 distinct values, so k = 40
// also runs the every-point-on-a-centroid branch).
TEST(CudaKMeansPP, SmallIntegerDataPicksEqualCpuForEveryDtype) {
    REQUIRE_GPU();
    const int64_t n = 3001, k = 40;
    for (DType dtype : {DType::Float32, DType::Float16, DType::BFloat16}) {
        for (int64_t d : {1, 7, 128, 300}) {
            for (int64_t n_given : {0, 5}) {
                const auto x = small_ints(n, d, 2000 + d);
                const auto given = small_ints(n_given, d, 2001);
                const auto draws = uniform_draws(k - n_given, 2002 + d + n_given);
                const std::string what = std::string(fk::dtype_name(dtype)) + " d=" +
                                         std::to_string(d) + " n_given=" + std::to_string(n_given);
                const Seeded cpu = run_kpp(kCpu, x, DType::Float32, n, d, k, given, draws);
                const Seeded gpu = run_kpp(kGpu, x, dtype, n, d, k, given, draws);
                EXPECT_EQ(gpu.picks, cpu.picks) << what;
                expect_rows_are_picked_points(gpu, x, d, given, what);
            }
        }
    }
}

// Many blocks of points (n = 70001), and n large enough that a block holds
// more than the smallest block size (n > 16384 * 1024): the two-level search
// still finds the CPU's picks.
TEST(CudaKMeansPP, ManyAndLargeBlocksOfPointsPickAsTheCpu) {
    REQUIRE_GPU();
    struct Case { int64_t n, d, k; };
    for (Case c : {Case{70001, 7, 60}, Case{20000003, 2, 12}}) {
        const auto x = small_ints(c.n, c.d, 2100 + c.d);
        const auto draws = uniform_draws(c.k, 2101);
        const std::string what = "n=" + std::to_string(c.n);
        const Seeded cpu = run_kpp(kCpu, x, DType::Float32, c.n, c.d, c.k, {}, draws);
        const Seeded gpu = run_kpp(kGpu, x, DType::Float16, c.n, c.d, c.k, {}, draws);
        EXPECT_EQ(gpu.picks, cpu.picks) << what;
        expect_rows_are_picked_points(gpu, x, c.d, {}, what);
    }
}

// On random data the picks are distinct valid points, copied exactly, and the
// same bits on every run (fixed reduction trees, no atomics), on the default
// stream and on a stream of the caller's.
TEST(CudaKMeansPP, RandomDataPicksAreValidDistinctAndBitwiseRepeatable) {
    REQUIRE_GPU();
    const int64_t n = 100003, k = 50;
    cudaStream_t stream = nullptr;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    const fk::Place on_stream{fk::Backend::CUDA, 0, stream};
    for (DType dtype : {DType::Float32, DType::BFloat16}) {
        for (int64_t d : {64, 300}) {
            const auto x = rounded(fk_test::random_matrix(n, d, 2200 + d), dtype);
            const auto draws = uniform_draws(k, 2201);
            const std::string what = std::string(fk::dtype_name(dtype)) + " d=" + std::to_string(d);
            const Seeded a = run_kpp(kGpu, x, dtype, n, d, k, {}, draws);
            const Seeded b = run_kpp(on_stream, x, dtype, n, d, k, {}, draws);
            for (int64_t p : a.picks) {
                ASSERT_TRUE(p >= 0 && p < n) << what << ": pick " << p;
            }
            EXPECT_EQ(std::set<int64_t>(a.picks.begin(), a.picks.end()).size(), size_t(k)) << what;
            expect_rows_are_picked_points(a, x, d, {}, what);
            EXPECT_EQ(a.picks, b.picks) << what;
            EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), sizeof(float) * k * d))
                    << what;
        }
    }
    cuda_ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
}

// Every point identical: total == 0, each pick is floor(u n) (u just below 1
// gives n - 1). Zero draws with x[0] given: r = 0 picks the first points not
// yet chosen, never one with D == 0.
TEST(CudaKMeansPP, SmallIdenticalPointsAndZeroDrawsPickAsTheRuleSays) {
    REQUIRE_GPU();
    {
        const int64_t n = 1000, d = 5, k = 8;
        const std::vector<float> x(n * d, 1.5f);
        auto draws = uniform_draws(k, 2300);
        draws[3] = 0.0;
        draws[4] = std::nextafter(1.0, 0.0);
        const Seeded s = run_kpp(kGpu, x, DType::Float32, n, d, k, {}, draws);
        for (int64_t t = 0; t < k; t++) {
            EXPECT_EQ(s.picks[t], int64_t(std::floor(draws[t] * n))) << "row " << t;
        }
        EXPECT_EQ(s.centroids, std::vector<float>(k * d, 1.5f));
    }
    {
        const int64_t n = 300, d = 4, k = 6;
        const auto x = fk_test::random_matrix(n, d, 2301);
        const std::vector<float> given(x.begin(), x.begin() + d);
        const Seeded s = run_kpp(kGpu, x, DType::Float32, n, d, k, given,
                                 std::vector<double>(k - 1, 0.0));
        EXPECT_EQ(s.picks, (std::vector<int64_t>{1, 2, 3, 4, 5}));
    }
}

// ================================================================ errors

// An absurd allocation is an OutOfMemoryError saying "out of memory" with the
// size, not a crash, and the device keeps working afterwards.
TEST(CudaErrors, SmallAbsurdAllocationThrowsOutOfMemory) {
    REQUIRE_GPU();
    const size_t petabyte = size_t(1) << 50;
    try {
        fk::cuda::device_alloc(petabyte, nullptr);
        FAIL() << "a 1 PB allocation succeeded";
    } catch (const fk::OutOfMemoryError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(petabyte)), std::string::npos) << msg;
        std::printf("  message: %s\n", msg.c_str());
    }
    try {
        void* p = nullptr;
        FK_CUDA_CHECK(cudaMalloc(&p, petabyte));
        FAIL() << "cudaMalloc of 1 PB succeeded";
    } catch (const fk::KernelError& e) {
        EXPECT_NE(std::string(e.what()).find("out of memory"), std::string::npos) << e.what();
    }
    // the error was cleared: kernels still run and report no stale error
    std::vector<float> v(100, 1.0f);
    Dev<float> dv(v);
    Dev<double> s(std::vector<double>(3, -1.0));
    kn::iteration_stats(kGpu, dv.get(), 100, nullptr, 0, 1, s.get());
    EXPECT_EQ(s.download()[0], 100.0);
}

// The kernels' scratch comes from the same caching pool as the engine's
// buffers: freed memory stays for the next call (no cudaMalloc), reusing it
// reserves nothing more, and empty_cache() gives it back.
TEST(CudaMemory, SmallKernelScratchIsCachedAndEmptyCacheReturnsIt) {
    REQUIRE_GPU();
    fk::cuda::release_cached_memory();
    const size_t bytes = size_t(64) << 20;
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaSuccess, cudaStreamCreate(&stream));
    void* p = fk::cuda::device_alloc(bytes, stream);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(cudaSuccess, cudaMemsetAsync(p, 1, bytes, stream));
    fk::cuda::device_free(p, stream);
    ASSERT_EQ(cudaSuccess, cudaStreamSynchronize(stream));
    const size_t kept = fk::cuda::cached_memory_bytes();
    EXPECT_GE(kept, bytes);
    void* q = fk::cuda::device_alloc(bytes, stream);
    EXPECT_LE(fk::cuda::cached_memory_bytes(), kept - bytes);  // taken from the cache
    fk::cuda::device_free(q, stream);
    ASSERT_EQ(cudaSuccess, cudaStreamSynchronize(stream));
    fk::cuda::release_cached_memory();
    EXPECT_LT(fk::cuda::cached_memory_bytes(), bytes);
    ASSERT_EQ(cudaSuccess, cudaStreamDestroy(stream));
}

TEST(CudaErrors, SmallDeviceCountIsPositiveWhenTestsRun) {
    REQUIRE_GPU();
    EXPECT_GE(fk::cuda_device_count(), 1);
    EXPECT_TRUE(fk::cuda_compiled());
}

} // namespace
