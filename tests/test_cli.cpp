// Tests of the flashkmeans program itself: each runs the built binary
// (FLASHKMEANS_CLI_PATH) in a fresh directory and checks its files, its exit
// status and, for failures, the single "flashkmeans: error: ..." line.
#include "../tools/vector_io.h"

#include "test_util.h"

#include <flashkmeans/kernels.h>

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_io.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#ifdef FLASHKMEANS_CLI_PATH

namespace fs = std::filesystem;
using namespace flashkmeans::io;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "fk_cli_XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        if (!p) {
            throw std::runtime_error("mkdtemp failed");
        }
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const {
        return (path / name).string();
    }
};

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct CliRun {
    int status = -1;
    std::string out, err;
};

/// Runs `flashkmeans <args>` in `dir` (args are passed through the shell).
CliRun run_cli(const TempDir& dir, const std::string& args) {
    std::string cmd = "cd '" + dir.path.string() + "' && '" FLASHKMEANS_CLI_PATH "' " + args +
                      " >cli_stdout.txt 2>cli_stderr.txt </dev/null";
    int st = std::system(cmd.c_str());
    CliRun r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    r.out = slurp(dir / "cli_stdout.txt");
    r.err = slurp(dir / "cli_stderr.txt");
    fs::remove(dir / "cli_stdout.txt");
    fs::remove(dir / "cli_stderr.txt");
    return r;
}

struct LimitedRun : CliRun {
    long peak_rss_kb = 0; ///< the program's peak resident set (ru_maxrss)
};

/** Runs `flashkmeans <args>` in `dir` as run_cli does, with its private
 * writable memory (RLIMIT_DATA: heap and anonymous mappings, not read-only
 * file mappings) limited to `data_limit` bytes, one OpenMP and one OpenBLAS
 * thread, and SIGALRM after `seconds` (OpenBLAS spins, retrying, when it
 * cannot allocate its buffer). */
LimitedRun run_cli_limited(const TempDir& dir, const std::vector<std::string>& args,
                           rlim_t data_limit, unsigned seconds) {
    // everything the child needs is built before fork: between fork and exec
    // only async-signal-safe calls
    std::vector<std::string> argv_s = {FLASHKMEANS_CLI_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s = {"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"};
    for (char** e = environ; *e; e++) {
        std::string v = *e;
        if (v.rfind("OMP_NUM_THREADS=", 0) != 0 && v.rfind("OPENBLAS_NUM_THREADS=", 0) != 0) {
            env_s.push_back(v);
        }
    }
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) {
        argv.push_back(a.data());
    }
    for (auto& e : env_s) {
        envp.push_back(e.data());
    }
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    const std::string wd = dir.path.string(), out = dir / "cli_stdout.txt",
                      err = dir / "cli_stderr.txt";
    const rlimit lim = {data_limit, data_limit};

    pid_t pid = ::fork();
    if (pid == 0) {
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = ::open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 || ::dup2(in, 0) < 0 ||
            ::chdir(wd.c_str()) != 0 || ::setrlimit(RLIMIT_DATA, &lim) != 0) {
            ::_exit(126);
        }
        ::alarm(seconds); // kept across exec
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    LimitedRun r;
    if (pid < 0) {
        return r;
    }
    int st = 0;
    rusage ru{};
    ::wait4(pid, &st, 0, &ru);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    r.peak_rss_kb = ru.ru_maxrss;
    r.out = slurp(out);
    r.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return r;
}

/// A version 1.0 .npy header for header dict `dict`, padded as NumPy pads it:
/// the data that follows starts at a multiple of 64 bytes.
std::string npy_header(std::string dict) {
    dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
    dict += '\n';
    return std::string("\x93NUMPY\x01\x00", 8) + char(dict.size() & 0xff) + char(dict.size() >> 8) +
           dict;
}

/// A failed run: status `code`, and stderr exactly one line
/// "flashkmeans: error: ..." containing every string in `wants`.
void expect_error(const CliRun& r, int code, std::initializer_list<std::string> wants) {
    EXPECT_EQ(r.status, code) << "stderr: " << r.err << "\nstdout: " << r.out;
    EXPECT_EQ(r.err.rfind("flashkmeans: error: ", 0), 0u) << "stderr: " << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.back(), '\n');
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    for (const auto& w : wants) {
        EXPECT_NE(r.err.find(w), std::string::npos) << "'" << w << "' missing from: " << r.err;
    }
}

/// float64 nearest centroid of each point must equal `labels`, except where
/// the best two centroids are a near-tie.
void expect_nearest(const std::vector<float>& x, int64_t n, int64_t d, const std::vector<float>& c,
                    int64_t k, const std::vector<int64_t>& labels, bool ip = false) {
    ASSERT_EQ(int64_t(labels.size()), n);
    auto ref = fk_test::reference_assign(x.data(), n, c.data(), k, d, ip);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labels[size_t(i)] != ref.labels[size_t(i)] && ref.rel_gap[size_t(i)] > 1e-5) {
            if (mismatches++ < 5) {
                ADD_FAILURE() << "point " << i << ": label " << labels[size_t(i)] << ", nearest "
                              << ref.labels[size_t(i)];
            }
        }
    }
    EXPECT_EQ(mismatches, 0);
}

bool gpu_visible() {
    return flashkmeans::cuda_compiled() && flashkmeans::cuda_device_count() > 0;
}

} // namespace

// ---- help and version ------------------------------------------------------------------

TEST(Cli, HelpNamesEveryCommandAndEveryTrainFlag) {
    TempDir dir;
    CliRun r = run_cli(dir, "--help");
    EXPECT_EQ(r.status, 0);
    for (const char* w : {"train", "assign", "ivf"}) {
        EXPECT_NE(r.out.find(w), std::string::npos) << w;
    }
    r = run_cli(dir, "train --help");
    EXPECT_EQ(r.status, 0);
    for (const char* w : {"-k",
                          "--niter",
                          "--nredo",
                          "--seed",
                          "--max-points-per-centroid",
                          "--min-points-per-centroid",
                          "--spherical",
                          "--int-centroids",
                          "--metric",
                          "--weights",
                          "--init",
                          "--backend",
                          "--device",
                          "--dtype",
                          "--precision",
                          "--memory-budget",
                          "--prune",
                          "--output",
                          "--labels",
                          "--quiet",
                          "--n ",
                          "--d ",
                          "--centers"}) {
        EXPECT_NE(r.out.find(w), std::string::npos) << w;
    }
    r = run_cli(dir, "assign --help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--centroids"), std::string::npos);
    EXPECT_NE(r.out.find("--distances"), std::string::npos);
    r = run_cli(dir, "ivf --help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--factory"), std::string::npos);
    EXPECT_NE(r.out.find("--add"), std::string::npos);
    r = run_cli(dir, "--version");
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out.rfind("flashkmeans ", 0), 0u) << r.out;
}

// ---- train ---------------------------------------------------------------------------------

TEST(Cli, TrainWithoutInputRecoversTheBuiltInCentres) {
    TempDir dir;
    CliRun r = run_cli(dir, "train --n 2000 --d 32 --centers 5 --init kmeans++ --nredo 3 -o c.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("recovered 5 / 5 true centres"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("n=2000 d=32 k=5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ms/iteration"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Iteration"), std::string::npos) << "no progress lines: " << r.out;
    FloatMatrix c = read_vectors(dir / "c.npy");
    EXPECT_EQ(c.n, 5);
    EXPECT_EQ(c.d, 32);
}

TEST(Cli, TrainQuietPrintsOnlyTheSummary) {
    TempDir dir;
    CliRun r = run_cli(dir, "train -q --n 1000 --d 8 --centers 4 --niter 5");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.find("Iteration"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("final objective"), std::string::npos) << r.out;
}

TEST(Cli, TrainOnFvecsWritesKxDCentroidsAndLabelsForEveryPoint) {
    TempDir dir;
    const int64_t n = 3000, d = 12, k = 10;
    auto x = fk_test::blobs(n, d, k, 21);
    write_vectors(dir / "x.fvecs", x.data(), n, d);
    // 50 points per centroid: k-means sees a 500-point subsample, labels cover all 3000
    CliRun r = run_cli(dir, "train x.fvecs -k 10 --max-points-per-centroid 50 -o c.npy --labels l.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("n=3000 d=12 k=10"), std::string::npos) << r.out;
    FloatMatrix c = read_vectors(dir / "c.npy");
    ASSERT_EQ(c.n, k);
    ASSERT_EQ(c.d, d);
    NpyArray l = read_npy(dir / "l.npy");
    EXPECT_EQ(l.dtype, NpyDType::Int64);
    EXPECT_EQ(l.shape, std::vector<int64_t>{n});
    IntMatrix labels = read_ints(dir / "l.npy");
    expect_nearest(x, n, d, c.data, k, labels.data);
}

TEST(Cli, TrainOnNpyWritesFvecsCentroidsThatReload) {
    TempDir dir;
    const int64_t n = 1500, d = 6, k = 7;
    auto x = fk_test::blobs(n, d, k, 22);
    write_vectors(dir / "x.npy", x.data(), n, d);
    CliRun r = run_cli(dir, "train x.npy -k 7 --niter 10 -o c.fvecs --labels l.ivecs --quiet");
    ASSERT_EQ(r.status, 0) << r.err;
    FloatMatrix c = read_vectors(dir / "c.fvecs");
    EXPECT_EQ(c.n, k);
    EXPECT_EQ(c.d, d);
    for (float v : c.data) {
        EXPECT_TRUE(std::isfinite(v));
    }
    IntMatrix l = read_ints(dir / "l.ivecs");
    EXPECT_EQ(l.n, n);
    EXPECT_EQ(l.d, 1);
    expect_nearest(x, n, d, c.data, k, l.data);
}

TEST(Cli, TrainOnMappedNpyGivesTheCentroidsOfTheSamePointsReadFromFvecs) {
    TempDir dir;
    const int64_t n = 3000, d = 12, k = 9;
    auto x = fk_test::blobs(n, d, k, 26);
    write_vectors(dir / "x.npy", x.data(), n, d);
    write_vectors(dir / "x.fvecs", x.data(), n, d);
    CliRun r =
            run_cli(dir, "train x.npy -k 9 --max-points-per-centroid 100 -o a.npy --labels la.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("read x.npy: 3000 vectors of dimension 12 in"), std::string::npos)
            << r.out;
    EXPECT_NE(r.out.find("(memory-mapped)"), std::string::npos) << r.out;
    r = run_cli(dir, "train x.fvecs -k 9 --max-points-per-centroid 100 -o b.npy --labels lb.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.find("(memory-mapped)"), std::string::npos) << r.out;
    EXPECT_EQ(slurp(dir / "a.npy"), slurp(dir / "b.npy")) << "centroids differ";
    EXPECT_EQ(slurp(dir / "la.npy"), slurp(dir / "lb.npy")) << "labels differ";
}

// A float32 .npy is mapped, and no step of a run copies the points into
// private memory. Peak RSS cannot show this: the program checks every value
// for NaN and Inf before training (FAISS checks all points, sampled or not),
// so every page of the mapping is touched and counts in RSS, as a read copy
// would (both ~271 MB here for this 256 MiB file). What differs is the kind
// of memory: mapped pages are clean page cache, which the system drops and
// reads again under pressure, while a read copy is private memory that
// stays. RLIMIT_DATA limits private writable memory only (heap and anonymous
// mappings; since Linux 4.7 also mmap, but not read-only file mappings), so
// the run is limited to the data's size: reading the file into memory cannot
// even allocate its buffer (exit 1, "out of memory"), while the mapped run
// needs about 135 MB (OpenBLAS's 128 MiB buffer for its one thread, the
// sample of 16 x 256 points, the program).
TEST(Cli, TrainOnFloat32NpyMapsThePointsAndCopiesNone) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "AddressSanitizer reserves its shadow memory as private mappings, which "
                    "RLIMIT_DATA counts";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || \
        __has_feature(thread_sanitizer)
    GTEST_SKIP() << "sanitizers reserve their shadow memory as private mappings, which "
                    "RLIMIT_DATA counts";
#endif
#endif
    TempDir dir;
    const int64_t n = int64_t(1) << 21, d = 32; // 256 MiB of float32
    const size_t data_bytes = size_t(n * d) * sizeof(float);
    {
        // written a block at a time, so the test itself holds no copy either
        std::ofstream f(dir / "x.npy", std::ios::binary);
        f << npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) +
                        ", " + std::to_string(d) + "), }");
        const int64_t block = 1 << 16;
        std::vector<float> rows(size_t(block * d));
        for (int64_t i0 = 0; i0 < n; i0 += block) {
            for (int64_t i = 0; i < block; i++) {
                for (int64_t j = 0; j < d; j++) {
                    uint32_t h = uint32_t(i0 + i) * 2654435761u + uint32_t(j) * 40503u;
                    rows[size_t(i * d + j)] = float(h >> 16) / 65536.f;
                }
            }
            f.write(reinterpret_cast<const char*>(rows.data()), std::streamsize(rows.size() * 4));
        }
        ASSERT_TRUE(f.good());
    }
    LimitedRun r = run_cli_limited(dir,
                                   {"train", "x.npy", "-k", "16", "--max-points-per-centroid",
                                    "256", "--backend", "cpu", "-o", "c.npy"},
                                   rlim_t(data_bytes), 120);
    RecordProperty("peak_rss_kb", int(r.peak_rss_kb));
    ASSERT_EQ(r.status, 0) << "with private memory limited to the data's size (" << data_bytes
                           << " bytes); status " << r.status << " (" << 128 + SIGALRM
                           << ": timed out), stderr: " << r.err << "\nstdout: " << r.out;
    EXPECT_NE(r.out.find("(memory-mapped)"), std::string::npos) << r.out;
    FloatMatrix c = read_vectors(dir / "c.npy");
    EXPECT_EQ(c.n, 16);
    EXPECT_EQ(c.d, d);
}

// --memory-budget streams the points in chunks: the same centroids and
// labels as a resident run, and the summary says how it ran.
TEST(Cli, TrainWithAMemoryBudgetStreamsAndGivesTheResidentCentroids) {
    TempDir dir;
    const int64_t n = 5000, d = 16, k = 10;
    auto x = fk_test::blobs(n, d, k, 27);
    write_vectors(dir / "x.npy", x.data(), n, d);
    CliRun r = run_cli(dir, "train x.npy -k 10 --backend cpu -o a.npy --labels la.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("  points: resident"), std::string::npos) << r.out;
    r = run_cli(dir,
                "train x.npy -k 10 --backend cpu --memory-budget 100K -o b.npy --labels lb.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("  points: streamed in "), std::string::npos) << r.out;
    EXPECT_EQ(slurp(dir / "a.npy"), slurp(dir / "b.npy")) << "centroids differ";
    EXPECT_EQ(slurp(dir / "la.npy"), slurp(dir / "lb.npy")) << "labels differ";
    // too small: one error line naming the minimum
    r = run_cli(dir, "train x.npy -k 10 --backend cpu --memory-budget 1000");
    expect_error(r, 1, {"memory_budget of 1000 bytes is too small", "at least"});
    r = run_cli(dir, "train x.npy -k 10 --memory-budget 12X");
    expect_error(r, 2, {"--memory-budget"});
}

// --prune: the same clustering on data without near-ties, the skipped share
// on every iteration line and in the summary.
TEST(Cli, TrainWithPruneGivesTheUnprunedCentroidsAndSaysWhatItSkipped) {
    TempDir dir;
    // --prune takes the fused kernel where the CPU runs it: compare with that
    const std::string kernel =
            flashkmeans::kernels::cpu_fused_assign_available() ? "fused" : "faiss";
    CliRun a = run_cli(dir, "train --n 20000 --d 16 --centers 8 --niter 12 --backend cpu -o a.npy "
                            "--cpu-kernel " +
                                    kernel);
    ASSERT_EQ(a.status, 0) << a.err;
    CliRun b =
            run_cli(dir,
                    "train --n 20000 --d 16 --centers 8 --niter 12 --backend cpu --prune -o b.npy");
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_NE(b.out.find("skipped="), std::string::npos) << b.out;
    EXPECT_NE(b.out.find("  pruning: "), std::string::npos) << b.out;
    EXPECT_EQ(a.out.find("pruning"), std::string::npos) << a.out;
    ASSERT_NE(b.out.find("; 0 near-ties"), std::string::npos)
            << "the data have near-ties: " << b.out;
    EXPECT_EQ(slurp(dir / "a.npy"), slurp(dir / "b.npy")) << "centroids differ";
    EXPECT_NE(b.out.find("kernel " + kernel), std::string::npos) << b.out;
}

TEST(Cli, CpuKernelChoosesTheKernelAndRejectsAnUnknownOne) {
    TempDir dir;
    CliRun faiss = run_cli(dir, "train --n 5000 --d 8 --centers 8 --niter 3 --backend cpu "
                                "--cpu-kernel faiss");
    ASSERT_EQ(faiss.status, 0) << faiss.err;
    EXPECT_NE(faiss.out.find("kernel faiss"), std::string::npos) << faiss.out;
    if (flashkmeans::kernels::cpu_fused_assign_available()) {
        CliRun fused = run_cli(dir, "train --n 5000 --d 8 --centers 8 --niter 3 --backend cpu "
                                    "--cpu-kernel fused");
        ASSERT_EQ(fused.status, 0) << fused.err;
        EXPECT_NE(fused.out.find("kernel fused"), std::string::npos) << fused.out;
    }
    CliRun bad = run_cli(dir, "train --n 5000 --d 8 --niter 3 --cpu-kernel blas");
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.err.find("cpu_kernel 'blas'"), std::string::npos) << bad.err;
}

TEST(Cli, TrainOnBvecsWritesCentroidsOfTheRightShape) {
    TempDir dir;
    const int64_t n = 1200, d = 16, k = 5;
    auto blobs = fk_test::blobs(n, d, k, 23, 1.0f);
    std::vector<float> x(blobs.size());
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = std::round(std::min(255.f, std::max(1.f, 128.f + 10.f * blobs[i])));
    }
    write_vectors(dir / "x.bvecs", x.data(), n, d);
    CliRun r = run_cli(dir, "train x.bvecs -k 5 --int-centroids -o c.npy -q");
    ASSERT_EQ(r.status, 0) << r.err;
    FloatMatrix c = read_vectors(dir / "c.npy");
    EXPECT_EQ(c.n, k);
    EXPECT_EQ(c.d, d);
    for (float v : c.data) {
        EXPECT_EQ(v, std::round(v)) << "--int-centroids not honoured";
        EXPECT_GE(v, 0.f);
        EXPECT_LE(v, 255.f);
    }
}

TEST(Cli, TrainWithWeightsAndInnerProductRuns) {
    TempDir dir;
    const int64_t n = 800, d = 8, k = 4;
    auto x = fk_test::blobs(n, d, k, 24);
    auto w = fk_test::random_weights(n, 25);
    write_vectors(dir / "x.npy", x.data(), n, d);
    write_vectors(dir / "w.npy", w.data(), n, 1, /*as_1d=*/true);
    CliRun r = run_cli(dir, "train x.npy -k 4 --weights w.npy --metric ip --spherical -o c.npy -q");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("metric=ip"), std::string::npos) << r.out;
    FloatMatrix c = read_vectors(dir / "c.npy");
    ASSERT_EQ(c.n, k);
    for (int64_t j = 0; j < k; j++) {
        double s = 0;
        for (int64_t t = 0; t < d; t++) {
            s += double(c.data[size_t(j * d + t)]) * c.data[size_t(j * d + t)];
        }
        EXPECT_NEAR(s, 1.0, 1e-4) << "--spherical centroid " << j << " is not unit length";
    }
}

// ---- assign --------------------------------------------------------------------------------

TEST(Cli, AssignWritesLabelsEqualToBruteForceNearestCentroid) {
    TempDir dir;
    const int64_t n = 2000, d = 20, k = 37;
    auto x = fk_test::random_matrix(n, d, 31);
    auto c = fk_test::random_matrix(k, d, 32);
    write_vectors(dir / "x.npy", x.data(), n, d);
    write_vectors(dir / "c.npy", c.data(), k, d);
    CliRun r = run_cli(dir, "assign x.npy --centroids c.npy -o l.npy --distances dist.npy");
    ASSERT_EQ(r.status, 0) << r.err;
    IntMatrix l = read_ints(dir / "l.npy");
    expect_nearest(x, n, d, c, k, l.data);
    FloatMatrix dist = read_vectors(dir / "dist.npy", /*allow_1d=*/true);
    ASSERT_EQ(dist.n, n);
    auto ref = fk_test::reference_assign(x.data(), n, c.data(), k, d);
    for (int64_t i = 0; i < n; i++) {
        EXPECT_NEAR(dist.data[size_t(i)], ref.best[size_t(i)], 1e-4 * (1 + ref.best[size_t(i)]));
    }
    // .fvecs points and .ivecs labels; inner product
    write_vectors(dir / "x.fvecs", x.data(), n, d);
    r = run_cli(dir, "assign x.fvecs -c c.npy -o l.ivecs --metric ip -q");
    ASSERT_EQ(r.status, 0) << r.err;
    IntMatrix li = read_ints(dir / "l.ivecs");
    expect_nearest(x, n, d, c, k, li.data, /*ip=*/true);
}

// ---- ivf -----------------------------------------------------------------------------------

TEST(Cli, IvfWritesATrainedIndexThatFaissReads) {
    TempDir dir;
    const int64_t n = 2000, d = 16;
    auto x = fk_test::blobs(n, d, 20, 41);
    write_vectors(dir / "x.npy", x.data(), n, d);
    CliRun r = run_cli(dir, "ivf x.npy --factory IVF16,Flat -o a.faissindex --add -q");
    ASSERT_EQ(r.status, 0) << r.err;
    std::unique_ptr<faiss::Index> a(faiss::read_index((dir / "a.faissindex").c_str()));
    EXPECT_TRUE(a->is_trained);
    EXPECT_EQ(a->ntotal, n);
    EXPECT_EQ(a->d, d);
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(a.get());
    ASSERT_NE(ivf, nullptr);
    EXPECT_EQ(ivf->nlist, 16u);
    EXPECT_EQ(ivf->quantizer->ntotal, 16);
    // a PQ encoder, not filled ("np": no polysemous training, which is slow)
    r = run_cli(dir, "ivf x.npy --factory 'IVF8,PQ4np' -o b.faissindex --niter 5 -q");
    ASSERT_EQ(r.status, 0) << r.err;
    std::unique_ptr<faiss::Index> b(faiss::read_index((dir / "b.faissindex").c_str()));
    EXPECT_TRUE(b->is_trained);
    EXPECT_EQ(b->ntotal, 0);
}

// ---- failures: one line, the right exit status -------------------------------------------------

TEST(Cli, MissingInputFileFailsWithStatus1NamingTheFile) {
    TempDir dir;
    expect_error(run_cli(dir, "train nope.fvecs -k 3"), 1, {"nope.fvecs", "no such file"});
    auto c = fk_test::random_matrix(3, 4, 50);
    write_vectors(dir / "c.npy", c.data(), 3, 4);
    expect_error(run_cli(dir, "assign nope.npy --centroids c.npy -o l.npy"), 1, {"nope.npy", "no such file"});
    expect_error(run_cli(dir, "assign c.npy --centroids nope.fvecs -o l.npy"), 1, {"nope.fvecs"});
}

TEST(Cli, BadMagicFailsWithStatus1) {
    TempDir dir;
    std::ofstream(dir / "x.npy") << "this is not numpy";
    expect_error(run_cli(dir, "train x.npy -k 3"), 1, {"x.npy", "bad magic"});
}

TEST(Cli, TruncatedFilesFailWithStatus1) {
    TempDir dir;
    auto x = fk_test::random_matrix(50, 4, 51);
    write_vectors(dir / "x.fvecs", x.data(), 50, 4);
    fs::resize_file(dir / "x.fvecs", fs::file_size(dir / "x.fvecs") - 5);
    expect_error(run_cli(dir, "train x.fvecs -k 3"), 1, {"x.fvecs", "truncated"});
    write_vectors(dir / "x.npy", x.data(), 50, 4);
    fs::resize_file(dir / "x.npy", fs::file_size(dir / "x.npy") - 8);
    expect_error(run_cli(dir, "train x.npy -k 3"), 1, {"x.npy", "truncated"});
}

TEST(Cli, EmptyFileAndUnsupportedDtypeFailWithStatus1) {
    TempDir dir;
    std::ofstream(dir / "e.fvecs").close();
    expect_error(run_cli(dir, "train e.fvecs -k 3"), 1, {"e.fvecs", "empty file"});
    auto x = fk_test::random_matrix(8, 2, 52);
    write_npy(dir / "c.npy", NpyDType::Float32, {8, 2}, x.data());
    std::string t = slurp(dir / "c.npy");
    t.replace(t.find("<f4"), 3, "<c8");
    std::ofstream(dir / "c.npy", std::ios::binary) << t;
    expect_error(run_cli(dir, "train c.npy -k 3"), 1, {"c.npy", "unsupported dtype '<c8'"});
}

TEST(Cli, HostileFilesFailWithOneErrorLineAndStatus1) {
    TempDir dir;
    // an .npy header claiming 2^40 rows of a 24-byte file
    std::string npy =
            npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4), }") +
            std::string(24, '\1');
    std::ofstream(dir / "huge.npy", std::ios::binary) << npy;
    expect_error(run_cli(dir, "train huge.npy -k 3"), 1, {"huge.npy", "truncated file", "needs"});
    // an .fvecs whose first record has d = -3
    std::string neg("\xfd\xff\xff\xff", 4);
    std::ofstream(dir / "neg.fvecs", std::ios::binary) << neg << std::string(12, '\1');
    expect_error(run_cli(dir, "train neg.fvecs -k 3"), 1, {"neg.fvecs", "d = -3"});
    // a directory given as the input or as the centroids
    fs::create_directory(dir / "d.npy");
    expect_error(run_cli(dir, "train d.npy -k 3"), 1, {"d.npy", "is a directory"});
    expect_error(run_cli(dir, "assign huge.npy --centroids d.npy -o l.npy"), 1, {"d.npy", "is a directory"});
    EXPECT_FALSE(fs::exists(dir / "l.npy"));
}

TEST(Cli, KLargerThanNFailsWithStatus1) {
    TempDir dir;
    auto x = fk_test::random_matrix(20, 4, 53);
    write_vectors(dir / "x.npy", x.data(), 20, 4);
    expect_error(run_cli(dir, "train x.npy -k 21"), 1, {"k = 21", "larger than the number of points (20)"});
}

TEST(Cli, NonFiniteDataFailsWithStatus1NamingTheVector) {
    TempDir dir;
    auto x = fk_test::random_matrix(20, 4, 54);
    x[13 * 4 + 2] = std::nanf("");
    write_vectors(dir / "x.npy", x.data(), 20, 4);
    expect_error(run_cli(dir, "train x.npy -k 3"), 1, {"x.npy", "vector 13", "NaN"});
}

TEST(Cli, BadCommandLinesFailWithStatus2) {
    TempDir dir;
    auto x = fk_test::random_matrix(20, 4, 55);
    write_vectors(dir / "x.npy", x.data(), 20, 4);
    expect_error(run_cli(dir, "train x.npy -k 3 --bogus"), 2, {"unknown option '--bogus'", "--help"});
    expect_error(run_cli(dir, "train x.npy -k 0"), 2, {"--k"});
    expect_error(run_cli(dir, "train x.npy -k -4"), 2, {"--k"});
    expect_error(run_cli(dir, "train x.npy -k three"), 2, {"--k", "three"});
    expect_error(run_cli(dir, "train x.npy"), 2, {"-k"});
    expect_error(run_cli(dir, "train x.npy -k 3 --niter"), 2, {"--niter", "needs a value"});
    expect_error(run_cli(dir, "train x.npy -k 3 --backend tpu"), 2, {"tpu"});
    expect_error(run_cli(dir, "train x.npy -k 3 --metric cosine"), 2, {"cosine"});
    expect_error(run_cli(dir, "train x.npy -k 3 -o c.txt"), 2, {"c.txt"});
    expect_error(run_cli(dir, "assign x.npy -o l.npy"), 2, {"--centroids"});
    expect_error(run_cli(dir, "ivf x.npy -o a.index"), 2, {"--factory"});
    expect_error(run_cli(dir, "cluster x.npy"), 2, {"unknown command 'cluster'"});
}

TEST(Cli, CudaBackendWithoutAGpuIsAClearError) {
    if (gpu_visible()) {
        GTEST_SKIP() << "a GPU is visible: --backend cuda is valid here";
    }
    TempDir dir;
    auto x = fk_test::random_matrix(20, 4, 56);
    write_vectors(dir / "x.npy", x.data(), 20, 4);
    CliRun r = run_cli(dir, "train x.npy -k 3 --backend cuda");
    expect_error(r, 1, {"cuda"});
    EXPECT_TRUE(r.err.find("without CUDA") != std::string::npos ||
                r.err.find("no CUDA GPU") != std::string::npos)
            << r.err;
    expect_error(run_cli(dir, "assign x.npy --centroids x.npy -o l.npy --backend cuda"), 1, {"cuda"});
}

TEST(Cli, DevicesTakesDistinctOrdinalsAndRunsOneRankPerGpu) {
    TempDir dir;
    auto x = fk_test::small_ints(500, 8, 57);
    write_vectors(dir / "x.npy", x.data(), 500, 8);
    expect_error(run_cli(dir, "train x.npy -k 5 --devices 0,x"), 2, {"--devices", "0,x"});
    expect_error(run_cli(dir, "train x.npy -k 5 --devices 1,1"), 2, {"device 1 twice"});
    expect_error(run_cli(dir, "train x.npy -k 5 --devices 0 --device 0"), 2, {"exclude"});
    expect_error(run_cli(dir, "train x.npy -k 5 --devices 0 --backend cpu"), 2, {"CUDA backend"});
    CliRun r = run_cli(dir, "train x.npy -k 5 --niter 6 --devices 0 -o many.npy -q");
    if (!gpu_visible()) {
        // a build without NCCL says so; with it, there is no GPU to run on
        expect_error(r, 1, {"error"});
        EXPECT_TRUE(r.err.find("--devices: this build has no NCCL") != std::string::npos ||
                    r.err.find("no CUDA GPU is visible") != std::string::npos)
                << r.err;
        return;
    }
    if (r.status != 0 && r.err.find("no NCCL") != std::string::npos) {
        GTEST_SKIP() << "this build has no NCCL";
    }
    ASSERT_EQ(r.status, 0) << r.err;
    // one NCCL rank gives the plain run's centroids bit for bit (integer points)
    ASSERT_EQ(run_cli(dir, "train x.npy -k 5 --niter 6 --backend cuda -o one.npy -q").status, 0);
    EXPECT_EQ(slurp(dir / "many.npy"), slurp(dir / "one.npy"));
}

TEST(Cli, FailedRunLeavesNoOutputFile) {
    TempDir dir;
    auto x = fk_test::random_matrix(20, 4, 57);
    write_vectors(dir / "x.npy", x.data(), 20, 4);
    auto c = fk_test::random_matrix(3, 5, 58);
    write_vectors(dir / "c.npy", c.data(), 3, 5);
    expect_error(run_cli(dir, "assign x.npy --centroids c.npy -o l.npy"), 1, {"dimension mismatch"});
    EXPECT_FALSE(fs::exists(dir / "l.npy"));
    expect_error(run_cli(dir, "train x.npy -k 3 -o missing_dir/c.npy"), 1, {"missing_dir"});
}

#else

TEST(Cli, SkippedWithoutTheProgram) {
    GTEST_SKIP() << "FLASHKMEANS_CLI_PATH is not defined (the flashkmeans_cli target was not built)";
}

#endif
