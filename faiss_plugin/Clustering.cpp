// flashkmeans::Clustering::train: faiss::Clustering::train_encoded's contract
// (checks, subsampling, seeding, nredo, stats, verbose lines, the index left
// holding the centroids), with the iterations run by the Lloyd engine.
#include <flashkmeans/Clustering.h>

#include "engine/check_input.h"
#include "engine/convergence.h"
#include "engine/init.h"
#include "engine/lloyd.h"
#include "engine/shard.h"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/random.h>
#include <faiss/utils/utils.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

namespace flashkmeans {

Clustering::Clustering(int d, int k) : faiss::Clustering(d, k) {}

Clustering::Clustering(int d, int k, const faiss::ClusteringParameters& cp)
        : faiss::Clustering(d, k, cp) {}

Clustering::Clustering(int d, int k, const faiss::ClusteringParameters& cp,
                       const Options& opts)
        : faiss::Clustering(d, k, cp), options(opts) {}

void Clustering::train(int64_t n, const float* x, faiss::Index& index, const float* weights) {
    train_typed(n, x, DType::Float32, false, index, weights);
}

void Clustering::train_typed(int64_t nx, const void* x_in, DType dtype, bool on_device,
                             faiss::Index& index, const float* weights) {
    FAISS_THROW_IF_NOT_FMT(d > 0 && d <= (1 << 20), "invalid dimension d=%zd", d);
    FAISS_THROW_IF_NOT_FMT(int64_t(k) > 0, "number of clusters k must be positive, got %" PRId64,
                           int64_t(k));
    FAISS_THROW_IF_NOT_FMT(nx >= 0, "negative number of training points (%" PRId64 ")", nx);
    // The ranks of a data-parallel run, each with its shard of the points
    // (one exchange of the row counts); one rank: this process alone. The
    // checks below that depend on the data hold for all ranks together.
    Shard shard = make_shard(options.comm, nx);
    // only rank 0 talks (shadows the member on purpose)
    const bool verbose = this->verbose && shard.rank() == 0;
    FAISS_THROW_IF_NOT_FMT(shard.n_total >= int64_t(k),
                           "Number of training points (%" PRId64
                           ") should be at least as large as number of clusters (%zd)",
                           shard.n_total, k);
    // each rank's own arguments, agreed on: a rank that fails them alone
    // must not leave the others waiting in the next exchange
    check_on_all_ranks(*shard.comm, [&] {
        FAISS_THROW_IF_NOT_MSG(x_in != nullptr || nx == 0, "training points pointer x is null");
        FAISS_THROW_IF_NOT_FMT(index.d == int64_t(d),
                               "Index dimension %d not the same as data dimension %d", int(index.d),
                               int(d));
        FAISS_THROW_IF_NOT_FMT(niter >= 0 && nredo >= 1,
                               "need niter >= 0 and nredo >= 1 (got %d, %d)", niter, nredo);
        FAISS_THROW_IF_NOT_FMT(max_points_per_centroid > 0,
                               "max_points_per_centroid must be > 0, got %d",
                               max_points_per_centroid);
        FAISS_THROW_IF_NOT_FMT(!std::isnan(tol), "tol must be a number, got %g", tol);
    });
    centroid_shifts.clear();
    skipped_work.clear();
    near_ties.clear();
    stop_reason = 0;

    const Backend backend = resolve_backend(options.backend);
    Place place;
    place.backend = backend;
    place.device = options.device;
    place.stream = backend == Backend::CUDA ? options.stream : nullptr;
    FAISS_THROW_IF_NOT_MSG(!on_device || backend == Backend::CUDA,
                           "points in device memory need the CUDA backend");

    double t0 = faiss::getmillisecs();
    const size_t esz = dtype_size(dtype);

    if (weights || shard.distributed()) {
        // a rank may hold no points, or only zero weights
        double wsum = 0;
        check_on_all_ranks(*shard.comm, [&] {
            for (int64_t i = 0; weights && i < nx; i++) {
                FAISS_THROW_IF_NOT_FMT(std::isfinite(weights[i]) && weights[i] >= 0,
                                       "weights must be finite and >= 0 (weight %" PRId64 " is %g)",
                                       i, double(weights[i]));
                wsum += weights[i];
            }
        });
        // across ranks: weighted when any rank gives weights, and then every
        // rank with points must (a rank without points may pass null)
        const double given = sum_over_ranks(*shard.comm, weights ? 1 : 0);
        const double missing = sum_over_ranks(*shard.comm, !weights && nx > 0 ? 1 : 0);
        FAISS_THROW_IF_NOT_MSG(given == 0 || missing == 0,
                               "weights must be given on every rank that has points, or on none");
        wsum = sum_over_ranks(*shard.comm, wsum);
        FAISS_THROW_IF_NOT_MSG(given == 0 || wsum > 0, "weights are all zero");
    }
    FAISS_THROW_IF_NOT_MSG(centroids.size() % d == 0,
                           "size of provided input centroids not a multiple of dimension");
    const size_t n_input_centroids = centroids.size() / d;
    FAISS_THROW_IF_NOT_FMT(n_input_centroids <= k,
                           "%zd input centroids provided, more than k=%zd", n_input_centroids, k);
    check_given_centroids(centroids.data(), int64_t(n_input_centroids), int64_t(d), "input centroids");

    // Subsample with FAISS's permutation, so the same points are kept. 16-bit
    // points keep their dtype for the assignment even if gathered as fp32.
    const DType compute_dtype = dtype == DType::Float32 ? options.dtype : dtype;
    const void* x = x_in;
    bool x_on_device = on_device;
    std::unique_ptr<uint8_t[]> x_sub_host;
    PlaceArray<float> x_sub_dev;
    PlaceArray<uint8_t> x_sub_place;
    std::unique_ptr<float[]> w_sub;
    if (shard.n_total > int64_t(k) * max_points_per_centroid) {
        if (verbose) {
            printf("Sampling a subset of %zd / %" PRId64 " for training\n",
                   k * max_points_per_centroid, shard.n_total);
        }
        const int64_t nsub = int64_t(k) * max_points_per_centroid;
        // FAISS rejects NaN and Inf in any point, sampled or not: host points
        // on the host, device points on the device. Points that are all used
        // are checked by the engine on the place instead (the sums of their
        // squared norms), with no host pass.
        check_on_all_ranks(*shard.comm, [&] {
            if (on_device) {
                check_place_points_finite(place, x_in, dtype, nx, int64_t(d));
            } else {
                check_points_finite(x_in, dtype, 1, nx, int64_t(d));
            }
        });
        // across ranks: this rank's rows of the global sample, in its order
        const std::vector<int64_t> perm = shard.distributed() ? subsample(shard, nsub, seed)
                                                              : rand_perm_prefix(nx, nsub, seed);
        shard.n = int64_t(perm.size());
        shard.n_total = nsub; // the training set is the sample from here on
        const int64_t nkeep = int64_t(perm.size());
        const size_t line = esz * d;
        if (on_device) {
            // one gather launch on the device (to fp32), not a copy per row
            x_sub_dev = PlaceArray<float>(place, size_t(nkeep) * d);
            kernels::gather_rows(place, x_in, dtype, nx, d, perm.data(), nkeep, x_sub_dev.get());
            x = x_sub_dev.get();
            dtype = DType::Float32;
        } else if (backend == Backend::CUDA && !shard.distributed() && options.memory_budget == 0 &&
                   compute_dtype == dtype && Lloyd::row_elements(place, d, dtype) == int64_t(d) &&
                   nkeep * line <= place_free_bytes(place) / 2) {
            // a sample the engine would use in place on the device: gathered
            // straight into the upload's pinned staging, no host copy of it
            x_sub_place = PlaceArray<uint8_t>(place, nkeep * line);
            upload_rows(place, x_sub_place.get(), line, x_in, line, size_t(nkeep), line,
                        perm.data());
            x = x_sub_place.get();
            x_on_device = true;
        } else {
            // the same gather into host memory (the CPU place), all threads
            x_sub_host.reset(new uint8_t[nkeep * line]);
            upload_rows(Place{}, x_sub_host.get(), line, x_in, line, size_t(nkeep), line,
                        perm.data());
            x = x_sub_host.get();
        }
        if (weights) {
            w_sub.reset(new float[nkeep]);
            for (int64_t i = 0; i < nkeep; i++) {
                w_sub[i] = weights[perm[i]];
            }
            weights = w_sub.get();
        }
        nx = nkeep;
    } else if (shard.n_total < int64_t(k) * min_points_per_centroid && shard.rank() == 0) {
        fprintf(stderr,
                "WARNING clustering %" PRId64 " points to %zd centroids: "
                "please provide at least %" PRId64 " training points\n",
                shard.n_total, k, int64_t(k) * min_points_per_centroid);
    }

    if (shard.n_total == int64_t(k)) {
        if (verbose) {
            printf("Number of training points (%" PRId64
                   ") same as number of clusters, just copying\n",
                   shard.n_total);
        }
        centroids.resize(d * k);
        LloydData data{x, dtype, x_on_device, nx, int64_t(d), 1, nullptr};
        LloydConfig cfg;
        cfg.k = k;
        cfg.compute_dtype = dtype;
        Lloyd copy(place, data, cfg);
        memory_plan = copy.plan().describe();
        std::vector<int64_t> ids(k);
        for (size_t i = 0; i < k; i++) ids[i] = i;
        gather_global_rows(shard, copy, ids.data(), k, d, centroids.data());
        faiss::ClusteringIterationStats stats = {0.0, 0.0, 0.0, 1.0, 0};
        iteration_stats.push_back(stats);
        index.reset();
        index.add(k, centroids.data());
        return;
    }

    if (verbose) {
        printf("Clustering %" PRId64 " points in %zdD to %zd clusters, "
               "redo %d times, %d iterations\n",
               shard.n_total, d, k, nredo, niter);
        printf("  flashkmeans backend %s, dtype %s%s\n", backend_name(backend),
               dtype_name(options.dtype),
               backend == Backend::CUDA ? ""
               : resolve_cpu_kernel(options, backend) == kernels::AssignKernel::Fused
                       ? ", kernel fused"
                       : ", kernel faiss");
        if (shard.distributed()) {
            printf("  %d ranks (%s)\n", shard.comm->size(), shard.comm->name());
        }
    }

    const bool lower_is_better = index.metric_type != faiss::METRIC_INNER_PRODUCT;
    LloydData data{x, dtype, x_on_device, nx, int64_t(d), 1, weights};
    LloydConfig cfg;
    cfg.k = k;
    cfg.metric = lower_is_better ? Metric::L2 : Metric::InnerProduct;
    cfg.compute_dtype = compute_dtype;
    cfg.precision = options.precision;
    cfg.spherical = spherical;
    cfg.int_centroids = int_centroids;
    cfg.k_frozen = frozen_centroids ? n_input_centroids : 0;
    cfg.memory_budget = options.memory_budget;
    cfg.prune = options.prune;
    cfg.kernel = resolve_cpu_kernel(options, place.backend);
    if (shard.distributed()) {
        cfg.comm = shard.comm;
    }
    Lloyd lloyd(place, data, cfg);
    memory_plan = lloyd.plan().describe();
    if (verbose) {
        printf("  points %s\n", memory_plan.c_str());
    }
    // a streamed iteration can take long: its progress once it passes a few
    // seconds, on the line the iteration's own line then overwrites
    int progress_iter = 0;
    double t_iter = 0, t_shown = 0;
    if (verbose && lloyd.plan().streamed) {
        lloyd.set_progress([&](int64_t done, int64_t rows) {
            const double now = faiss::getmillisecs() / 1000.;
            if (now - t_iter > 3 && now - t_shown > 1) {
                printf("  Iteration %d: %.1f%% of the points (%.1f s)       \r", progress_iter,
                       100.0 * double(done) / double(rows), now - t_iter);
                fflush(stdout);
                t_shown = now;
            }
        });
    }

    if (verbose && n_input_centroids > 0) {
        printf("  Using %zd centroids provided as input (%sfrozen)\n", n_input_centroids,
               frozen_centroids ? "" : "not ");
    }
    if (verbose) {
        printf("  Preprocessing in %.2f s\n", (faiss::getmillisecs() - t0) / 1000.);
    }
    t0 = faiss::getmillisecs();

    float best_obj = lower_is_better ? HUGE_VALF : -HUGE_VALF;
    std::vector<faiss::ClusteringIterationStats> best_iteration_stats;
    std::vector<float> best_centroids;
    std::vector<int32_t> best_labels;
    std::vector<double> best_shifts, best_skipped;
    std::vector<int64_t> best_near_ties;
    int best_stop = 0;
    const std::vector<float> input_centroids(centroids);
    double t_search_tot = 0;

    for (int redo = 0; redo < nredo; redo++) {
        if (verbose && nredo > 1) {
            printf("Outer iteration %d / %d\n", redo, nredo);
        }
        centroids = input_centroids;
        centroids.resize(d * k);
        initialize_centroids_on_ranks(shard, lloyd, options.init, seed + 1 + redo * 15486557L,
                                      n_input_centroids, k, d, centroids.data());
        post_process_centroids();
        lloyd.set_centroids(centroids.data());

        // the index is prepared as FAISS does (some indexes need training)
        if (index.ntotal != 0) {
            index.reset();
        }
        if (!index.is_trained) {
            index.train(k, centroids.data());
        }

        std::unique_ptr<Convergence> convergence;
        if (tol >= 0) {
            convergence.reset(new Convergence(tol, int64_t(k), int64_t(d)));
            convergence->start(lloyd);
        }
        float obj = 0;
        int iterations = 0;
        for (int i = 0; i < niter; i++) {
            progress_iter = i;
            t_iter = faiss::getmillisecs() / 1000.;
            LloydStep step = lloyd.iterate();
            iterations = i + 1;
            check_interrupt_on_all_ranks(*shard.comm);
            t_search_tot += step.seconds_assign * 1000;
            obj = float(step.obj[0]);
            faiss::ClusteringIterationStats stats = {obj, (faiss::getmillisecs() - t0) / 1000.0,
                                                     t_search_tot / 1000, step.imbalance[0],
                                                     step.nsplit[0]};
            iteration_stats.push_back(stats);
            if (options.prune) {
                skipped_work.push_back(step.skipped[0]);
                near_ties.push_back(step.near_ties[0]);
            }
            if (verbose) {
                char pruned[64] = "";
                if (options.prune) {
                    snprintf(pruned, sizeof(pruned), " skipped=%.1f%%", 100 * step.skipped[0]);
                }
                printf("  Iteration %d (%.2f s, search %.2f s): "
                       "objective=%g imbalance=%.3f nsplit=%d%s       \r",
                       i, stats.time, stats.time_search, stats.obj, stats.imbalance_factor,
                       stats.nsplit, pruned);
                fflush(stdout);
            }
            if (convergence) {
                const bool done = convergence->converged(lloyd, *shard.comm);
                centroid_shifts.push_back(convergence->shift());
                if (done) {
                    break;
                }
            }
        }
        lloyd.get_centroids(centroids.data());
        if (verbose) {
            printf("\n");
        }
        if (convergence) {
            if (verbose && convergence->stop() != Stop::Iterations) {
                printf("  Converged after %d iterations: %s\n", iterations,
                       convergence->stop() == Stop::Unchanged ? "labels unchanged"
                                                              : "centroid change within tol");
            }
            // scikit-learn's labels: the assignment to the final centroids
            lloyd.assign();
        }
        const int stop = convergence ? int(convergence->stop()) : 0;
        if (nredo > 1) {
            if ((lower_is_better && obj < best_obj) || (!lower_is_better && obj > best_obj)) {
                if (verbose) {
                    printf("Objective improved: keep new clusters\n");
                }
                best_centroids = centroids;
                best_iteration_stats = iteration_stats;
                best_obj = obj;
                best_labels = lloyd.labels();
                best_shifts = centroid_shifts;
                best_skipped = skipped_work;
                best_near_ties = near_ties;
                best_stop = stop;
            }
        } else {
            best_labels = lloyd.labels();
            best_stop = stop;
        }
    }
    if (nredo > 1) {
        centroids = best_centroids;
        iteration_stats = best_iteration_stats;
        centroid_shifts = best_shifts;
        skipped_work = best_skipped;
        near_ties = best_near_ties;
    }
    stop_reason = best_stop;
    last_labels.assign(best_labels.begin(), best_labels.end());
    if (niter == 0) {
        last_labels.clear();
    }
    index.reset();
    if (update_index) {
        index.train(k, centroids.data());
    }
    index.add(k, centroids.data());
}

} // namespace flashkmeans
