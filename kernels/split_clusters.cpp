// Empty-cluster split, shared by every backend: FAISS 1.7.3's split_clusters
// (Clustering.cpp), reproduced to the bit.
//
// Why host code: it is sequential by definition (one RNG stream, each split
// changes the weights the next one draws from) and touches O(#empty * d)
// values. The draws depend on the weights alone, so it is two steps: plan
// (weights -> the list of splits) and apply (the copies and perturbations);
// the engine copies the weights and only the rows the plan touches. Why this exact form: every
// expression keeps FAISS's types (size_t counts, `(float - 1.0) / (float)(n - k)` evaluated in
// double, the double EPS applied to float centroids) and the RNG is faiss::RandomGenerator(1234)'s
// stream (its std::mt19937, generated in blocks: mt19937_blocks.h), so the same
// input gives the same centroids as faiss::Clustering.
// weight_sums is indexed by absolute cluster id; FAISS's hassign starts at the
// first non-frozen cluster, hence the k_begin offset on both arrays.
#include <flashkmeans/kernels.h>

#include "mt19937_blocks.h"
#include "split_draw.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>

namespace flashkmeans {
namespace kernels {

namespace {

// a bit above machine epsilon for float16 (FAISS's value, a double)
constexpr double kEps = 1 / 1024.;

} // namespace

std::vector<ClusterSplit> plan_cluster_splits(int64_t k_in, int64_t n_in, int64_t k_begin,
                                              float* weight_sums) {
    if (k_in <= 0 || n_in < 0 || k_begin < 0 || k_begin > k_in || !weight_sums) {
        throw KernelError(
                "flashkmeans kernels: split_empty_clusters: need k > 0, n >= 0, "
                "0 <= k_begin <= k and non-null weight_sums");
    }
    const size_t n = size_t(n_in);
    const size_t k = size_t(k_in - k_begin);
    float* hassign = weight_sums + k_begin;

    // Each draw costs a Mersenne Twister output and FAISS's test
    // `rng.rand_float() < p`; with many empty clusters and large k that is
    // billions of draws (about k per split). The test is done on the raw
    // output against a per-cluster threshold instead, which accepts exactly
    // the same outputs, and only the two clusters a split changes get new
    // thresholds.
    std::vector<uint64_t> below(k);
    int64_t drawable = 0; // clusters with p > 0 (threshold above 0)
    auto set_threshold = [&](size_t c) {
        drawable -= below[c] > 0;
        below[c] = split_accept_below(hassign[c], n, k);
        drawable += below[c] > 0;
    };
    for (size_t c = 0; c < k; c++) {
        set_threshold(c);
    }
    std::vector<ClusterSplit> splits;
    Mt19937Blocks rng(1234); // faiss::RandomGenerator(1234)'s stream
    for (size_t ci = 0; ci < k; ci++) {
        if (hassign[ci] == 0) { /* need to redefine a centroid */
            // FAISS loops forever when no cluster can be drawn (every weight
            // <= 1, e.g. small weights); refuse instead. This test draws no
            // random numbers, so it does not change the stream otherwise.
            if (drawable == 0) {
                throw KernelError(
                        "flashkmeans kernels: split_empty_clusters: cluster " +
                        std::to_string(k_begin + int64_t(ci)) +
                        " is empty and no cluster has a weight above 1 to split it "
                        "(FAISS would loop forever here); use weights >= 1 or fewer clusters");
            }
            size_t cj = 0;
            while (rng.next() >= below[cj]) { // FAISS: !(rng.rand_float() < p)
                cj = cj + 1 == k ? 0 : cj + 1;
            }
            splits.push_back({k_begin + int64_t(ci), k_begin + int64_t(cj)});

            /* assume even split of the cluster */
            hassign[ci] = hassign[cj] / 2;
            hassign[cj] -= hassign[ci];
            set_threshold(ci);
            set_threshold(cj);
        }
    }
    return splits;
}

std::vector<int64_t> renumber_touched_rows(std::vector<ClusterSplit>& splits) {
    std::vector<int64_t> ids;
    std::unordered_map<int64_t, int64_t> slot;
    auto local = [&](int64_t id) {
        const auto it = slot.emplace(id, int64_t(ids.size()));
        if (it.second) {
            ids.push_back(id);
        }
        return it.first->second;
    };
    for (ClusterSplit& s : splits) {
        s.empty = local(s.empty);
        s.source = local(s.source);
    }
    return ids;
}

void apply_cluster_splits(int64_t d_in, const std::vector<ClusterSplit>& splits, float* rows) {
    const size_t d = size_t(d_in);
    for (const ClusterSplit& s : splits) {
        float* ci = rows + size_t(s.empty) * d;
        float* cj = rows + size_t(s.source) * d;
        std::memcpy(ci, cj, sizeof(*rows) * d);

        /* small symmetric pertubation */
        for (size_t j = 0; j < d; j++) {
            if (j % 2 == 0) {
                ci[j] *= 1 + kEps;
                cj[j] *= 1 - kEps;
            } else {
                ci[j] *= 1 - kEps;
                cj[j] *= 1 + kEps;
            }
        }
    }
}

int split_empty_clusters(int64_t d, int64_t k, int64_t n, int64_t k_begin, float* weight_sums,
                         float* centroids) {
    if (d <= 0 || !centroids) {
        throw KernelError(
                "flashkmeans kernels: split_empty_clusters: need d > 0, k > 0, n >= 0, "
                "0 <= k_begin <= k and non-null weight_sums and centroids");
    }
    const std::vector<ClusterSplit> splits = plan_cluster_splits(k, n, k_begin, weight_sums);
    apply_cluster_splits(d, splits, centroids);
    return int(splits.size());
}

} // namespace kernels
} // namespace flashkmeans
