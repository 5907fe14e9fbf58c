// A downstream project: find_package(flashkmeans) from an install prefix,
// link flashkmeans::flashkmeans, train once on the CPU.
#include <flashkmeans/Clustering.h>
#include <faiss/IndexFlat.h>
#include <cstdio>
#include <random>
int main() {
    std::mt19937 rng(1); std::normal_distribution<float> g;
    std::vector<float> x(5000 * 16); for (auto& v : x) v = g(rng);
    flashkmeans::Options o; o.backend = flashkmeans::Backend::CPU;
    flashkmeans::Clustering c(16, 20, faiss::ClusteringParameters(), o);
    faiss::IndexFlatL2 index(16);
    c.train(5000, x.data(), index);
    printf("consumer ok: obj %g, index ntotal %ld\n", c.iteration_stats.back().obj, long(index.ntotal));
}
