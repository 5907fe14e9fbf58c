// bench_kernels: times the two CUDA kernels of one Lloyd iteration on random
// data, for the reference configurations (docs/benchmarks.md).
//
//   bench_kernels                 the built-in table (about a minute on an H100)
//   bench_kernels --quick         fewer repetitions, the three largest rows skipped
//   bench_kernels --only NAME     rows whose name contains NAME
//   bench_kernels N K d DTYPE [SKEW]   one custom row; DTYPE = fp16|bf16|fp32|fp32-tf32,
//                                      SKEW = fraction of points in 1% of clusters (0.9)
//
// For each row: FlashAssign ms (CUDA events, 3 warm-ups, median of 10) and
// TFLOP/s = 2 N K d / t; sort-inverse update ms and effective TB/s =
// (N d elem + N 4) / t for balanced and skewed labels (90% of points in 1% of
// clusters), with a preallocated workspace; and the label agreement of the
// tiled kernel with the plain reference kernel on the first 4096 points (a
// correctness smoke test at scale). Prints a Markdown table, then one JSON
// object per row.
//
// Tuning: FLASHKMEANS_FA_CONFIG / FLASHKMEANS_UPDATE_CONFIG pick a kernel
// variant (kernels/cuda/flash_assign.cu, update/heuristics.cu; bench/sweep.sh
// runs them all). When one is set to a variant, every row also runs the
// default configuration on the same data and reports in its JSON whether the
// variant's labels and distances (all N points), resp. sums, weight sums and
// counts (balanced and skewed labels), are bitwise those of the default:
// "fa_same_as_default" / "update_same_as_default" (1 = identical).
#include <flashkmeans/kernels.h>
#include <flashkmeans/variants.h>

#include "bench_data.h"
#include "tuning_env.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<int32_t> make_labels(int64_t n, int64_t k, double skew, uint64_t seed) {
    std::vector<int32_t> l(n);
    const int64_t hot = std::max<int64_t>(1, k / 100);
    for (int64_t i = 0; i < n; i++) {
        const uint64_t r = splitmix(seed + uint64_t(i));
        const double u = double(r >> 11) / double(uint64_t(1) << 53);
        if (u < skew) {
            l[i] = int32_t((r % uint64_t(hot)) * uint64_t(k / hot));
        } else {
            l[i] = int32_t(splitmix(r) % uint64_t(k));
        }
    }
    return l;
}

/// Median time in ms of `reps` runs of f after `warm` warm-ups.
template <typename F>
double time_ms(F&& f, int warm, int reps) {
    for (int i = 0; i < warm; i++) {
        f();
    }
    cudaEvent_t a, b;
    check(cudaEventCreate(&a), "event");
    check(cudaEventCreate(&b), "event");
    std::vector<double> ts;
    for (int i = 0; i < reps; i++) {
        check(cudaEventRecord(a, nullptr), "record");
        f();
        check(cudaEventRecord(b, nullptr), "record");
        check(cudaEventSynchronize(b), "sync");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, a, b), "elapsed");
        ts.push_back(ms);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
}

struct Row {
    std::string name;
    int64_t n, k, d;
    fk::DType dtype;
    fk::Precision precision;
    double skew = 0.9;
};

struct Result {
    double assign_ms = 0, tflops = 0, agree = 0;
    // the sm_80 kernel (AssignKernel::Tiled) on the same row, and how many of
    // its labels the default (Auto: the Hopper kernel where it runs) shares
    double tiled_ms = 0, tiled_same = 0;
    double fa_same = -1, upd_same = -1;  // -1: not checked (default configuration)
    double upd_bal_ms = 0, upd_bal_tbs = 0, upd_skew_ms = 0, upd_skew_tbs = 0;
    double finalize_ms = 0;
};

/// The variant an environment variable names; "default" when unset.
std::string env_config(const char* var) {
    const char* e = std::getenv(var);
    return (e == nullptr || *e == '\0') ? std::string("default") : std::string(e);
}

/// Runs f() with the default variant in `field`, then restores the variant.
template <typename F>
void with_default_config(const char* kn::Variants::*field, F&& f) {
    const kn::Variants saved = kn::default_variants();
    kn::Variants def = saved;
    def.*field = "";
    kn::set_default_variants(def);
    try {
        f();
    } catch (...) {
        kn::set_default_variants(saved);
        throw;
    }
    kn::set_default_variants(saved);
}

template <typename T>
std::vector<T> download(const T* p, size_t count) {
    std::vector<T> h(count);
    if (count > 0) {
        check(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost), "download");
    }
    return h;
}

template <typename T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

const char* dtype_label(const Row& r) {
    if (r.dtype == fk::DType::Float16) return "fp16";
    if (r.dtype == fk::DType::BFloat16) return "bf16";
    return r.precision == fk::Precision::TF32 ? "fp32-tf32" : "fp32";
}

Result run_row(const Row& row, bool quick) {
    const fk::Place gpu{fk::Backend::CUDA, 0, nullptr};
    const int warm = quick ? 1 : 3, reps = quick ? 3 : 10;
    const size_t es = fk::dtype_size(row.dtype);
    const int64_t n = row.n, k = row.k, d = row.d;
    DevBuf<char> x(size_t(n * d) * es), c(size_t(k * d) * es);
    device_random(x.p, row.dtype, size_t(n * d), 1);
    device_random(c.p, row.dtype, size_t(k * d), 2);
    DevBuf<float> cnorm(k), xnorm(n), dist(n), ref_dist(4096);
    DevBuf<int32_t> labels(n), ref_labels(4096), counts(k), n_empty(1);
    DevBuf<float> sums(size_t(k * d)), wsums(k), centroids(size_t(k * d)), shift(1);
    kn::row_norms(gpu, c.p, row.dtype, k, d, cnorm.p);
    kn::row_norms(gpu, x.p, row.dtype, n, d, xnorm.p);
    check_launch("row_norms");

    kn::AssignArgs a;
    a.x = x.p;
    a.dtype = row.dtype;
    a.n = n;
    a.d = d;
    a.centroids = c.p;
    a.centroid_norms = cnorm.p;
    a.k = k;
    a.precision = row.precision;
    a.x_norms = xnorm.p;
    a.labels = labels.p;
    a.distances = dist.p;
    Result r;
    r.assign_ms = time_ms([&] { kn::flash_assign(gpu, a); check_launch("flash_assign"); }, warm, reps);
    r.tflops = 2.0 * double(n) * double(k) * double(d) / (r.assign_ms * 1e-3) / 1e12;
    {
        const auto auto_labels = download(labels.p, size_t(n));
        kn::AssignArgs t = a;
        t.kernel = kn::AssignKernel::Tiled;
        r.tiled_ms = time_ms([&] { kn::flash_assign(gpu, t); check_launch("flash_assign tiled"); },
                             warm, reps);
        const auto tiled_labels = download(labels.p, size_t(n));
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++) {
            same += auto_labels[i] == tiled_labels[i];
        }
        r.tiled_same = double(same) / double(n);
        kn::flash_assign(gpu, a);  // the default's labels for the checks below
        check_launch("flash_assign");
    }

    // a variant must give bitwise the default's labels and distances
    if (env_config("FLASHKMEANS_FA_CONFIG") != "default") {
        const auto var_labels = download(labels.p, size_t(n));
        const auto var_dist = download(dist.p, size_t(n));
        with_default_config(&kn::Variants::fa_config, [&] {
            kn::flash_assign(gpu, a);
            check_launch("flash_assign default");
        });
        const auto def_labels = download(labels.p, size_t(n));
        const auto def_dist = download(dist.p, size_t(n));
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++) {
            same += var_labels[i] == def_labels[i] &&
                    std::memcmp(&var_dist[i], &def_dist[i], sizeof(float)) == 0;
        }
        r.fa_same = double(same) / double(n);
        if (same != n) {
            std::fprintf(stderr, "bench_kernels: %s: FLASHKMEANS_FA_CONFIG=%s differs from the "
                                 "default on %lld of %lld points\n",
                         row.name.c_str(), env_config("FLASHKMEANS_FA_CONFIG").c_str(),
                         (long long)(n - same), (long long)n);
        }
    }

    // agreement with the reference kernel on the first points
    {
        kn::AssignArgs ra = a;
        ra.n = std::min<int64_t>(n, 4096);
        ra.kernel = kn::AssignKernel::Reference;
        ra.labels = ref_labels.p;
        ra.distances = ref_dist.p;
        kn::flash_assign(gpu, ra);
        check_launch("flash_assign reference");
        std::vector<int32_t> fast(ra.n), slow(ra.n);
        check(cudaMemcpy(fast.data(), labels.p, 4 * ra.n, cudaMemcpyDeviceToHost), "download");
        check(cudaMemcpy(slow.data(), ref_labels.p, 4 * ra.n, cudaMemcpyDeviceToHost), "download");
        int64_t same = 0;
        for (int64_t i = 0; i < ra.n; i++) {
            same += fast[i] == slow[i];
        }
        r.agree = double(same) / double(ra.n);
    }

    // update: balanced and skewed labels, preallocated workspace
    const size_t ws_bytes = kn::update_workspace_bytes(gpu, n, d, k, 1);
    DevBuf<char> ws(ws_bytes);
    const double bytes = double(n) * double(d) * double(es) + double(n) * 4.0;
    for (int skewed = 0; skewed < 2; skewed++) {
        const auto h = make_labels(n, k, skewed ? row.skew : 0.0, 7 + skewed);
        check(cudaMemcpy(labels.p, h.data(), 4 * size_t(n), cudaMemcpyHostToDevice), "labels");
        kn::UpdateArgs u;
        u.x = x.p;
        u.dtype = row.dtype;
        u.n = n;
        u.d = d;
        u.labels = labels.p;
        u.k = k;
        u.sums = sums.p;
        u.weight_sums = wsums.p;
        u.counts = counts.p;
        u.workspace = ws.p;
        u.workspace_bytes = ws_bytes;
        const double ms = time_ms([&] { kn::sort_inverse_update(gpu, u); check_launch("update"); },
                                  warm, reps);
        (skewed ? r.upd_skew_ms : r.upd_bal_ms) = ms;
        if (env_config("FLASHKMEANS_UPDATE_CONFIG") != "default") {
            // same pieces, same bits; another piece length changes the rounding of
            // cut clusters only (reported, not an error)
            const auto vs = download(sums.p, size_t(k * d));
            const auto vw = download(wsums.p, size_t(k));
            const auto vc = download(counts.p, size_t(k));
            with_default_config(&kn::Variants::update, [&] {
                kn::UpdateArgs ud = u;  // the default's own workspace size
                ud.workspace = nullptr;
                ud.workspace_bytes = 0;
                kn::sort_inverse_update(gpu, ud);
                check_launch("update default");
            });
            const bool same = same_bytes(vs, download(sums.p, size_t(k * d))) &&
                              same_bytes(vw, download(wsums.p, size_t(k))) &&
                              same_bytes(vc, download(counts.p, size_t(k)));
            r.upd_same = (r.upd_same != 0 && same) ? 1 : 0;
            if (!same) {
                std::fprintf(stderr, "bench_kernels: %s: FLASHKMEANS_UPDATE_CONFIG=%s differs from "
                                     "the default (%s labels)\n",
                             row.name.c_str(), env_config("FLASHKMEANS_UPDATE_CONFIG").c_str(),
                             skewed ? "skewed" : "balanced");
            }
        }
        (skewed ? r.upd_skew_tbs : r.upd_bal_tbs) = bytes / (ms * 1e-3) / 1e12;
    }
    kn::FinalizeArgs f;
    f.sums = sums.p;
    f.weight_sums = wsums.p;
    f.k = k;
    f.d = d;
    f.centroids = centroids.p;
    f.n_empty = n_empty.p;
    f.max_shift = shift.p;
    r.finalize_ms = time_ms([&] { kn::finalize_centroids(gpu, f); check_launch("finalize"); }, warm, reps);
    check(cudaDeviceSynchronize(), "sync");
    return r;
}

std::vector<Row> builtin_rows() {
    using fk::DType;
    using fk::Precision;
    // "1M" = 2^20 points, as bench_lloyd and bench/flash_kmeans_ref.py (the
    // reference's assign ms in the results table); 10^6 until session 17
    const int64_t M = 1 << 20;
    return {
            {"1Mx1024x128-fp16", M, 1024, 128, DType::Float16, Precision::Exact},
            {"1Mx8192x128-fp16", M, 8192, 128, DType::Float16, Precision::Exact},
            {"8Mx1024x128-fp16", 8 * M, 1024, 128, DType::Float16, Precision::Exact},
            {"4Mx4096x128-fp16", 4 * M, 4096, 128, DType::Float16, Precision::Exact},
            {"100000x100x128-fp16", 100000, 100, 128, DType::Float16, Precision::Exact},
            {"1Mx4096x768-fp16", M, 4096, 768, DType::Float16, Precision::Exact},
            {"1Mx65536x128-fp16", M, 65536, 128, DType::Float16, Precision::Exact},
            {"1Mx1024x128-bf16", M, 1024, 128, DType::BFloat16, Precision::Exact},
            {"1Mx1024x128-fp32", M, 1024, 128, DType::Float32, Precision::Exact},
            {"1Mx1024x128-fp32-tf32", M, 1024, 128, DType::Float32, Precision::TF32},
    };
}

bool parse_dtype(const std::string& s, fk::DType& dt, fk::Precision& p) {
    p = fk::Precision::Exact;
    if (s == "fp16") {
        dt = fk::DType::Float16;
    } else if (s == "bf16") {
        dt = fk::DType::BFloat16;
    } else if (s == "fp32") {
        dt = fk::DType::Float32;
    } else if (s == "fp32-tf32" || s == "tf32") {
        dt = fk::DType::Float32;
        p = fk::Precision::TF32;
    } else {
        return false;
    }
    return true;
}

int usage() {
    std::fprintf(stderr,
                 "usage: bench_kernels [--quick] [--only NAME]\n"
                 "       bench_kernels N K d fp16|bf16|fp32|fp32-tf32 [SKEW]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    fk_bench::apply_variants_from_env();
    bool quick = false;
    std::string only;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--quick") {
            quick = true;
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "-h" || a == "--help") {
            return usage();
        } else {
            pos.push_back(a);
        }
    }
    if (fk::cuda_device_count() == 0) {
        std::fprintf(stderr, "bench_kernels: no CUDA device visible\n");
        return 1;
    }
    std::vector<Row> rows;
    if (!pos.empty()) {
        if (pos.size() < 4) {
            return usage();
        }
        Row r;
        r.n = std::atoll(pos[0].c_str());
        r.k = std::atoll(pos[1].c_str());
        r.d = std::atoll(pos[2].c_str());
        if (!parse_dtype(pos[3], r.dtype, r.precision) || r.n <= 0 || r.k <= 0 || r.d <= 0) {
            return usage();
        }
        r.skew = pos.size() > 4 ? std::atof(pos[4].c_str()) : 0.9;
        r.name = pos[0] + "x" + pos[1] + "x" + pos[2] + "-" + pos[3];
        rows.push_back(r);
    } else {
        for (const Row& r : builtin_rows()) {
            if (!only.empty() && r.name.find(only) == std::string::npos) {
                continue;
            }
            if (quick && only.empty() && double(r.n) * r.k * r.d > 2e12) {
                continue;  // --quick skips the three largest rows
            }
            rows.push_back(r);
        }
    }

    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    std::printf("# bench_kernels on %s (%d SMs)%s\n\n", prop.name, prop.multiProcessorCount,
                quick ? " --quick" : "");
    std::printf("| row | N | K | d | dtype | assign ms | TFLOP/s | agree (ref kernel) | update ms "
                "balanced | TB/s | update ms skewed | TB/s | finalize ms | sm_80 kernel ms | same labels |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);
    std::vector<std::string> json;
    int failures = 0;
    for (const Row& row : rows) {
        try {
            const Result r = run_row(row, quick);
            std::printf("| %s | %lld | %lld | %lld | %s | %.3f | %.1f | %.4f%% | %.3f | %.2f | %.3f "
                        "| %.2f | %.3f | %.3f | %.4f%% |\n",
                        row.name.c_str(), (long long)row.n, (long long)row.k, (long long)row.d,
                        dtype_label(row), r.assign_ms, r.tflops, 100.0 * r.agree, r.upd_bal_ms,
                        r.upd_bal_tbs, r.upd_skew_ms, r.upd_skew_tbs, r.finalize_ms, r.tiled_ms,
                        100.0 * r.tiled_same);
            std::fflush(stdout);
            char buf[1536];
            std::snprintf(buf, sizeof(buf),
                          "{\"row\": \"%s\", \"device\": \"%s\", \"n\": %lld, \"k\": %lld, \"d\": %lld, "
                          "\"dtype\": \"%s\", \"assign_ms\": %.4f, \"assign_tflops\": %.2f, "
                          "\"agree_ref\": %.6f, \"update_balanced_ms\": %.4f, "
                          "\"update_balanced_tbs\": %.3f, \"update_skewed_ms\": %.4f, "
                          "\"update_skewed_tbs\": %.3f, \"skew\": %.2f, \"finalize_ms\": %.4f, "
                          "\"fa_config\": \"%s\", \"update_config\": \"%s\", "
                          "\"fa_same_as_default\": %.6f, \"update_same_as_default\": %.0f, "
                          "\"tiled_ms\": %.4f, \"tiled_same_labels\": %.6f}",
                          row.name.c_str(), prop.name, (long long)row.n, (long long)row.k,
                          (long long)row.d, dtype_label(row), r.assign_ms, r.tflops, r.agree,
                          r.upd_bal_ms, r.upd_bal_tbs, r.upd_skew_ms, r.upd_skew_tbs, row.skew,
                          r.finalize_ms, env_config("FLASHKMEANS_FA_CONFIG").c_str(),
                          env_config("FLASHKMEANS_UPDATE_CONFIG").c_str(), r.fa_same, r.upd_same,
                          r.tiled_ms, r.tiled_same);
            json.push_back(buf);
        } catch (const std::exception& e) {
            failures++;
            std::printf("| %s | failed: %s |\n", row.name.c_str(), e.what());
            std::fflush(stdout);
            cudaGetLastError();
        }
    }
    std::printf("\n");
    for (const auto& j : json) {
        std::printf("%s\n", j.c_str());
    }
    return failures == 0 ? 0 : 1;
}
