#include "shard.h"

#include "init.h"

#include <flashkmeans/errors.h>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace flashkmeans {

int64_t Shard::local_row(int64_t g) const {
    if (ids.empty()) {
        return g >= offset && g < offset + n ? g - offset : -1;
    }
    const auto it = std::lower_bound(ids.begin(), ids.end(), g);
    return it != ids.end() && *it == g ? int64_t(it - ids.begin()) : -1;
}

Shard make_shard(std::shared_ptr<Communicator> comm, int64_t n) {
    Shard s;
    s.comm = comm ? std::move(comm) : local_communicator();
    s.n = n;
    std::vector<int64_t> all(size_t(s.comm->size()));
    s.comm->allgather(&n, all.data(), sizeof(n));
    for (int r = 0; r < s.comm->size(); r++) {
        if (r < s.comm->rank()) {
            s.offset += all[size_t(r)];
        }
        s.n_total += all[size_t(r)];
    }
    return s;
}

void check_on_all_ranks(Communicator& comm, const std::function<void()>& check) {
    std::exception_ptr error;
    try {
        check();
    } catch (...) {
        error = std::current_exception();
    }
    const int8_t failed = error ? 1 : 0;
    std::vector<int8_t> all(size_t(comm.size()));
    comm.allgather(&failed, all.data(), 1);
    const int first = int(std::find(all.begin(), all.end(), int8_t(1)) - all.begin());
    if (first == comm.size()) {
        return;
    }
    // the first failed rank's message, to every rank (the error path only),
    // so that each rank's error says what to fix
    std::string why;
    if (comm.rank() == first) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            why = e.what();
        } catch (...) {
        }
    }
    uint64_t len = why.size();
    comm.broadcast(&len, sizeof(len), first);
    why.resize(size_t(len));
    comm.broadcast(&why[0], size_t(len), first);
    if (error) {
        std::rethrow_exception(error);
    }
    throw InputError("the input of rank " + std::to_string(first) + " failed its checks: " + why);
}

void check_interrupt_on_all_ranks(Communicator& comm) {
    if (comm.size() == 1) {
        faiss::InterruptCallback::check();
        return;
    }
    const bool mine = faiss::InterruptCallback::is_interrupted();
    if (sum_over_ranks(comm, mine ? 1 : 0) > 0) {
        FAISS_THROW_MSG("computation interrupted");
    }
}

double sum_over_ranks(Communicator& comm, double mine) {
    std::vector<double> all(size_t(comm.size()));
    comm.allgather(&mine, all.data(), sizeof(mine));
    double s = all[0];
    for (size_t r = 1; r < all.size(); r++) {
        s += all[r];
    }
    return s;
}

std::vector<int64_t> subsample(Shard& shard, int64_t nsub, int64_t seed) {
    std::vector<int64_t> perm;
    if (shard.rank() == 0) {
        perm = rand_perm_prefix(shard.n_total, nsub, seed);
    } else {
        perm.resize(size_t(nsub));
    }
    shard.comm->broadcast(perm.data(), perm.size() * sizeof(int64_t), 0);
    // sample position s holds global row perm[s]: keep the local ones, in
    // sample order, so the sample's global order is the one process's
    std::vector<int64_t> rows, positions;
    for (int64_t s = 0; s < nsub; s++) {
        const int64_t g = perm[size_t(s)];
        if (g >= shard.offset && g < shard.offset + shard.n) {
            rows.push_back(g - shard.offset);
            positions.push_back(s);
        }
    }
    shard.n = int64_t(rows.size());
    shard.n_total = nsub;
    shard.offset = 0;
    shard.ids = std::move(positions);
    return rows;
}

void gather_global_rows(const Shard& shard, const Lloyd& lloyd, const int64_t* gids, int64_t m,
                        int64_t d, float* out) {
    // each rank fills the rows it holds and flags them; one all-gather
    const size_t row = size_t(d) * sizeof(float), R = size_t(shard.comm->size());
    const size_t bytes = size_t(m) * row + size_t(m);
    std::vector<char> mine(bytes, 0), all(bytes * R);
    std::vector<int64_t> local, slot;
    for (int64_t i = 0; i < m; i++) {
        const int64_t r = shard.local_row(gids[i]);
        if (r >= 0) {
            local.push_back(r);
            slot.push_back(i);
        }
    }
    std::vector<float> rows(local.size() * size_t(d));
    lloyd.gather_points(0, local.data(), int64_t(local.size()), rows.data());
    for (size_t t = 0; t < local.size(); t++) {
        std::memcpy(mine.data() + size_t(slot[t]) * row, rows.data() + t * size_t(d), row);
        mine[size_t(m) * row + size_t(slot[t])] = 1;
    }
    shard.comm->allgather(mine.data(), all.data(), bytes);
    for (int64_t i = 0; i < m; i++) {
        size_t r = 0;
        while (r < R && !all[r * bytes + size_t(m) * row + size_t(i)]) {
            r++;
        }
        FAISS_THROW_IF_NOT_FMT(r < R, "gather_global_rows: no rank holds row %zd", size_t(gids[i]));
        std::memcpy(out + size_t(i) * size_t(d), all.data() + r * bytes + size_t(i) * row, row);
    }
}

void broadcast_global_row(const Shard& shard, const Lloyd& lloyd, int64_t g, int64_t d,
                          float* out) {
    // who holds g: one flag per rank, then the holder's row
    const int64_t row = shard.local_row(g);
    const int8_t mine = row >= 0 ? 1 : 0;
    std::vector<int8_t> holds(size_t(shard.comm->size()));
    shard.comm->allgather(&mine, holds.data(), 1);
    const int holder = int(std::find(holds.begin(), holds.end(), int8_t(1)) - holds.begin());
    FAISS_THROW_IF_NOT_FMT(holder < shard.comm->size(),
                           "broadcast_global_row: no rank holds row %zd", size_t(g));
    if (holder == shard.rank()) {
        lloyd.gather_points(0, &row, 1, out);
    }
    shard.comm->broadcast(out, size_t(d) * sizeof(float), holder);
}

void initialize_centroids_on_ranks(const Shard& shard, Lloyd& lloyd, Init init, int64_t seed,
                                   size_t n_given, size_t k, size_t d, float* centroids) {
    const StreamPlan& plan = lloyd.plan();
    const bool streamed_kmeanspp = init == Init::KMeansPP && plan.resident_rows < plan.rows;
    if (!shard.distributed() && !streamed_kmeanspp) {
        initialize_centroids(lloyd, init, seed, n_given, k, d, centroids);
        return;
    }
    if (n_given >= k) {
        return;
    }
    if (init == Init::Random) {
        std::vector<int64_t> perm;
        if (shard.rank() == 0) {
            perm = rand_perm_prefix(shard.n_total, int64_t(k), seed);
        } else {
            perm.resize(k);
        }
        shard.comm->broadcast(perm.data(), k * sizeof(int64_t), 0);
        gather_global_rows(shard, lloyd, perm.data() + n_given, int64_t(k - n_given), int64_t(d),
                           centroids + n_given * d);
        return;
    }
    // across ranks, or one process whose points stream (the seeding kernel
    // needs every point on the device): the same D^2 sampling, on the rows
    // as the engine gathers them
    kmeanspp_on_ranks(shard, lloyd, seed, n_given, k, d, centroids);
}

} // namespace flashkmeans
