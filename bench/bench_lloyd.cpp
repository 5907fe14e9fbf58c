// bench_lloyd: end-to-end milliseconds per Lloyd iteration of flashkmeans on
// the GPU (assign + objective + update + finalize + the one host sync), for
// the rows of docs/REFERENCE.md, with the points already on the device as the
// reference's numbers are. Per-iteration time = (t(12 iters) - t(2 iters)) / 10
// so setup, upload of nothing, init and teardown cancel out; each is the
// median of 3 runs after a warm-up.
//
//   bench_lloyd [--only NAME]
#include <flashkmeans/batch.h>

#include "bench_data.h"

#include <chrono>
#include <cstdio>
#include <cstring>

namespace {

struct Config {
    const char* name;
    int64_t B, N, K, d;
    fk::DType dtype;
    fk::Precision precision;
};

double run_ms(const Config& c, const void* x, int niter) {
    fk::PointsView p{x, c.dtype, true, c.B, c.N, c.d};
    fk::BatchKMeansParams params;
    params.k = c.K;
    params.niter = niter;
    fk::Options o;
    o.backend = fk::Backend::CUDA;
    o.precision = c.precision;
    std::vector<float> cent(size_t(c.B) * c.K * c.d);
    check(cudaDeviceSynchronize(), "sync");
    auto t0 = std::chrono::steady_clock::now();
    fk::batch_kmeans(p, params, {false, cent.data(), nullptr, nullptr}, o);
    check(cudaDeviceSynchronize(), "sync");
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median3(double a, double b, double c) {
    return std::max(std::min(a, b), std::min(std::max(a, b), c));
}

} // namespace

int main(int argc, char** argv) {
    const char* only = nullptr;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
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
    printf("| config | ms/iter (end to end) |\n|---|---|\n");
    for (const Config& c : configs) {
        if (only && !strstr(c.name, only)) continue;
        try {
            const size_t count = size_t(c.B) * c.N * c.d;
            DevBuf<uint8_t> x(count * fk::dtype_size(c.dtype));
            device_random(x.p, c.dtype, count, 7);
            run_ms(c, x.p, 2); // warm-up
            double a[3];
            for (double& t : a) t = (run_ms(c, x.p, 12) - run_ms(c, x.p, 2)) / 10;
            double ms = median3(a[0], a[1], a[2]);
            printf("| %s | %.3f |\n", c.name, ms);
            printf("{\"bench\":\"lloyd\",\"config\":\"%s\",\"ms_per_iter\":%.4f}\n", c.name, ms);
        } catch (const std::exception& e) {
            printf("| %s | error: %s |\n", c.name, e.what());
        }
        fflush(stdout);
    }
    return 0;
}
