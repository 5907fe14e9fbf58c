/**
 * The built-in dataset of the flashkmeans program: a Gaussian mixture whose
 * centres are known, so that `flashkmeans train` with no data file runs out
 * of the box and can say how well k-means found the centres.
 *
 * The generator uses its own normal sampler (Box-Muller) on top of
 * std::mt19937_64, whose output the C++ standard fixes, so a given seed gives
 * the same points with every standard library (std::normal_distribution is
 * implementation-defined), up to the last bit of libm's log/cos.
 */
#pragma once

#include <cstdint>
#include <vector>

namespace flashkmeans {
namespace dataset {

/// What the mixture looks like; the defaults are the program's defaults.
struct MixtureParams {
    int64_t n = 100000;   ///< number of points
    int64_t d = 64;       ///< dimension
    int64_t centers = 100; ///< number of Gaussian components (true centres)
    uint64_t seed = 20240611; ///< fixed so every run of the program sees the same data
    /// standard deviation of each centre coordinate: centres are N(0, I * s^2),
    /// so two centres are about s * sqrt(2 d) apart
    float center_std = 1.0f;
    /// per-coordinate standard deviation of the points around their centre
    float noise_std = 0.25f;
};

struct Mixture {
    MixtureParams params;
    std::vector<float> x;       ///< n x d points, row-major
    std::vector<float> centres; ///< centers x d true centres
    std::vector<int32_t> component; ///< n: the centre each point was drawn around
};

/// Draws the mixture: each point picks a centre uniformly at random.
Mixture make_mixture(const MixtureParams& params);

/// How well a set of learned centroids recovers the true centres.
struct Recovery {
    /// mean over true centres of the distance to the nearest learned centroid
    double mean_distance = 0;
    /// the largest of those distances
    double max_distance = 0;
    /// true centres whose nearest learned centroid is within `match_radius`
    int64_t matched = 0;
    int64_t centers = 0;
    /// the radius used: a quarter of the smallest distance between true centres
    double match_radius = 0;
    /// the expected distance of a point from its centre (noise_std * sqrt(d)),
    /// the scale the distances above compare with
    double noise_radius = 0;
};

/** Compares k learned centroids (k x d) with the true centres. A true centre
 * counts as matched when some centroid lies within a quarter of the smallest
 * distance between two true centres: a centroid that sits between two
 * clusters (a merge) or that was never pulled to a cluster does not match. */
Recovery evaluate_recovery(const Mixture& mixture, const float* centroids, int64_t k);

} // namespace dataset
} // namespace flashkmeans
