// cpu_vs_faiss: flashkmeans CPU backend against faiss::Clustering +
// IndexFlatL2, same data, same init (FAISS's seeding), same thread count,
// fixed iterations. Prints ms per iteration for both, the ratio, and whether
// the final assignments and centroids agree.
//
//   cpu_vs_faiss [N K d niter reps]   default: 200000 1024 128 10 3
#include <flashkmeans/Clustering.h>

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace {

// An IndexFlatL2 that keeps the labels of its last k=1 search.
struct Recording : faiss::IndexFlatL2 {
    explicit Recording(int64_t d) : faiss::IndexFlatL2(d) {}
    mutable std::vector<int64_t> last;
    void search(int64_t n, const float* x, int64_t k, float* D, int64_t* I,
                const faiss::SearchParameters* p = nullptr) const override {
        faiss::IndexFlatL2::search(n, x, k, D, I, p);
        last.assign(I, I + n * k);
    }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
    const int64_t n = argc > 1 ? atoll(argv[1]) : 200000;
    const int64_t k = argc > 2 ? atoll(argv[2]) : 1024;
    const int64_t d = argc > 3 ? atoll(argv[3]) : 128;
    const int niter = argc > 4 ? atoi(argv[4]) : 10;

    // a Gaussian mixture (never zeros), fixed seed
    std::mt19937_64 rng(123);
    std::normal_distribution<float> g(0.f, 1.f);
    std::vector<float> centres(size_t(k) * d), x(size_t(n) * d);
    for (auto& v : centres) v = 2.f * g(rng);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = rng() % k;
        for (int64_t j = 0; j < d; j++) x[i * d + j] = centres[c * d + j] + g(rng);
    }

    faiss::ClusteringParameters cp;
    cp.niter = niter;
    cp.max_points_per_centroid = int(n / k + 1); // cluster every point

    // The two alternate over `reps` rounds and each reports its median, so
    // a noisy neighbour on a small machine hits both alike.
    const int reps = argc > 5 ? atoi(argv[5]) : 3;
    flashkmeans::Options o;
    o.backend = flashkmeans::Backend::CPU;
    std::vector<double> tf, to;
    faiss::Clustering ref(d, k, cp);
    flashkmeans::Clustering ours(d, k, cp, o);
    Recording ri(d);
    for (int r = 0; r < reps; r++) {
        ref = faiss::Clustering(d, k, cp);
        auto t0 = std::chrono::steady_clock::now();
        ref.train(n, x.data(), ri);
        tf.push_back(seconds_since(t0));
        ours = flashkmeans::Clustering(d, k, cp, o);
        faiss::IndexFlatL2 oi(d);
        t0 = std::chrono::steady_clock::now();
        ours.train(n, x.data(), oi);
        to.push_back(seconds_since(t0));
    }
    std::sort(tf.begin(), tf.end());
    std::sort(to.begin(), to.end());
    const double t_faiss = tf[reps / 2], t_ours = to[reps / 2];

    size_t diff = 0;
    for (int64_t i = 0; i < n; i++) diff += ri.last[i] != ours.last_labels[i];
    double cdiff = 0;
    for (size_t i = 0; i < ours.centroids.size(); i++)
        cdiff = std::max(cdiff, double(std::fabs(ours.centroids[i] - ref.centroids[i])));

    const double ms_faiss = 1e3 * t_faiss / niter, ms_ours = 1e3 * t_ours / niter;
    printf("| N | K | d | iters | threads | FAISS ms/iter | flashkmeans ms/iter | speed-up | labels differing | max centroid diff |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    printf("| %ld | %ld | %ld | %d | %d | %.1f | %.1f | %.2fx | %zu | %.3g |\n", long(n), long(k),
           long(d), niter, omp_get_max_threads(), ms_faiss, ms_ours, ms_faiss / ms_ours, diff,
           cdiff);
    printf("{\"bench\":\"cpu_vs_faiss\",\"n\":%ld,\"k\":%ld,\"d\":%ld,\"niter\":%d,\"threads\":%d,"
           "\"faiss_ms_per_iter\":%.2f,\"flashkmeans_ms_per_iter\":%.2f,\"labels_differing\":%zu}\n",
           long(n), long(k), long(d), niter, omp_get_max_threads(), ms_faiss, ms_ours, diff);
    return 0;
}
