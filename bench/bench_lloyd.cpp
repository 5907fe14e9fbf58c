// bench_lloyd: end-to-end milliseconds per Lloyd iteration of flashkmeans on
// the GPU (assign + objective + update + finalize + the one host sync), for
// the reference rows (docs/benchmarks.md), with the points already on the device as the
// reference's numbers are. It drives the engine (faiss_plugin/engine/lloyd.h) that
// batch_kmeans runs, so setup, init and teardown are outside the clock: each
// iteration ends with the engine's one host sync, and the time between two
// iteration ends is one iteration. Reported: the median of 20 (--iters) iterations after
// 3 warm-up iterations (whole runs timed against each other were noisy: their
// allocation and init time varied by more than an iteration).
//
//   bench_lloyd [--only NAME] [--kmeanspp] [--iters N] [--trace]
//
// --kmeanspp also times k-means++ seeding on the device (Lloyd::kmeanspp_init:
// K rows from problem 0, host clock around the call, which ends with the copy
// of the K x d rows to the host), once after a warm-up seeding.
// --iters N times N iterations instead of 20; --trace prints each one's end
// to end and assign milliseconds. Why it exists: at k >= 4096 the H200 reaches
// its 700 W cap within ~10 iterations and lowers its clock, so the assign of
// a long run is ~10% slower than bench_kernels' short bursts (session 10).
#include <flashkmeans/batch.h>

#include "bench_data.h"
#include "tuning_env.h"
#include "engine/lloyd.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

struct Config {
    const char* name;
    int64_t B, N, K, d;
    fk::DType dtype;
    fk::Precision precision;
};

struct Timing {
    double ms;         // median end-to-end milliseconds per iteration
    double assign_ms;  // median of the engine's own assign timer (CUDA events)
};

double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

/// The engine on the device points `x` of config `c`.
std::unique_ptr<fk::Lloyd> make_lloyd(const Config& c, const void* x) {
    fk::LloydData data{x, c.dtype, true, c.N, c.d, c.B, nullptr};
    fk::LloydConfig cfg;
    cfg.k = c.K;
    cfg.compute_dtype = c.dtype;
    cfg.precision = c.precision;
    return std::make_unique<fk::Lloyd>(fk::Place{fk::Backend::CUDA, 0, nullptr}, data, cfg);
}

/// Median milliseconds of one iteration of the engine on `x` (on the device),
/// started from K evenly spaced points of each problem.
Timing iteration_ms(const Config& c, const void* x, int iters, bool trace) {
    const auto engine = make_lloyd(c, x);
    fk::Lloyd& lloyd = *engine;
    std::vector<float> cent(size_t(c.B) * c.K * c.d);
    std::vector<int64_t> ids(c.K);
    for (int64_t j = 0; j < c.K; j++) {
        ids[j] = j * (c.N / c.K);
    }
    for (int64_t b = 0; b < c.B; b++) {
        lloyd.gather_points(b, ids.data(), c.K, cent.data() + size_t(b) * c.K * c.d);
    }
    lloyd.set_centroids(cent.data());
    for (int i = 0; i < 3; i++) {
        lloyd.iterate();  // warm-up
    }
    std::vector<double> ms, assign_ms;
    auto t = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; i++) {
        const fk::LloydStep step = lloyd.iterate();
        const auto now = std::chrono::steady_clock::now();
        ms.push_back(std::chrono::duration<double, std::milli>(now - t).count());
        assign_ms.push_back(1e3 * step.seconds_assign);
        if (trace) {
            printf("%s iteration %d: %.3f ms, assign %.3f ms\n", c.name, i, ms.back(),
                   assign_ms.back());
        }
        t = now;
    }
    return {median(ms), median(assign_ms)};
}

/// Milliseconds of one k-means++ seeding of problem 0 (after one warm-up).
double kmeanspp_ms(const Config& c, const void* x) {
    const auto engine = make_lloyd(c, x);
    fk::Lloyd& lloyd = *engine;
    std::vector<double> draws(size_t(c.K));
    for (int64_t j = 0; j < c.K; j++) {
        draws[j] = double((j * 7919) % 10007) / 10007.0;  // fixed, spread in [0, 1)
    }
    std::vector<float> cent(size_t(c.K) * c.d);
    lloyd.kmeanspp_init(0, c.K, 0, draws.data(), cent.data());
    const auto t = std::chrono::steady_clock::now();
    lloyd.kmeanspp_init(0, c.K, 0, draws.data(), cent.data());
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

int main(int argc, char** argv) {
    fk_bench::apply_variants_from_env();
    const char* only = nullptr;
    bool kmeanspp = false, trace = false;
    int iters = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        if (!strcmp(argv[i], "--kmeanspp")) kmeanspp = true;
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::max(1, atoi(argv[++i]));
        if (!strcmp(argv[i], "--trace")) trace = true;
    }
    const int64_t M = 1 << 20;
    const fk::DType H = fk::DType::Float16, F = fk::DType::Float32;
    const Config configs[] = {
            {"32x65536x1024x128-fp16", 32, 65536, 1024, 128, H, fk::Precision::Exact},
            {"1Mx1024x128-fp16", 1, M, 1024, 128, H, fk::Precision::Exact},
            {"1Mx8192x128-fp16", 1, M, 8192, 128, H, fk::Precision::Exact},
            {"8Mx1024x128-fp16", 1, 8 * M, 1024, 128, H, fk::Precision::Exact},
            {"4Mx4096x128-fp16", 1, 4 * M, 4096, 128, H, fk::Precision::Exact},
            {"100000x100x128-fp16", 1, 100000, 100, 128, H, fk::Precision::Exact},
            {"1Mx1024x128-fp32-exact", 1, M, 1024, 128, F, fk::Precision::Exact},
            {"1Mx1024x128-fp32-tf32", 1, M, 1024, 128, F, fk::Precision::TF32},
            {"1Mx4096x768-fp16", 1, M, 4096, 768, H, fk::Precision::Exact},
            {"1Mx65536x128-fp16", 1, M, 65536, 128, H, fk::Precision::Exact},
    };
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    printf("# bench_lloyd on %s\n", prop.name);
    // the rest = update + finalize + statistics + the host sync
    printf("| config | ms/iter (end to end) | assign ms | rest ms |\n|---|---|---|---|\n");
    for (const Config& c : configs) {
        if (only && !strstr(c.name, only)) continue;
        try {
            const size_t count = size_t(c.B) * c.N * c.d;
            DevBuf<uint8_t> x(count * fk::dtype_size(c.dtype));
            device_random(x.p, c.dtype, count, 7);
            const Timing t = iteration_ms(c, x.p, iters, trace);
            printf("| %s | %.3f | %.3f | %.3f |\n", c.name, t.ms, t.assign_ms, t.ms - t.assign_ms);
            if (kmeanspp && c.B == 1) {
                printf("| %s k-means++ seeding (K rows) | %.1f ms |\n", c.name, kmeanspp_ms(c, x.p));
            }
            printf("{\"bench\":\"lloyd\",\"config\":\"%s\",\"ms_per_iter\":%.4f,"
                   "\"assign_ms\":%.4f}\n",
                   c.name, t.ms, t.assign_ms);
        } catch (const std::exception& e) {
            printf("| %s | error: %s |\n", c.name, e.what());
        }
        fflush(stdout);
    }
    return 0;
}
