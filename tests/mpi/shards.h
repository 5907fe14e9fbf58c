// What the MPI tests share: the world's ranks, and how a test cuts its
// points into the ranks' shards.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace fk_test {

inline int rank_of_world() {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

inline int ranks_of_world() {
    int r = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &r);
    return r;
}

/// How the n points are cut into the ranks' shards (one rank: all of them).
enum class Split {
    Even,
    Uneven,     ///< rank r holds a share proportional to r + 1, plus the rest on the last
    EmptyFirst, ///< rank 0 holds no points
    TinyFirst,  ///< rank 0 holds 3 points, fewer than k
};

inline std::vector<int64_t> shard_sizes(int64_t n, int R, Split split) {
    std::vector<int64_t> s(size_t(R), 0);
    if (R == 1) {
        s[0] = n;
        return s;
    }
    int64_t left = n;
    for (int r = 0; r < R - 1; r++) {
        switch (split) {
            case Split::Even:
                s[size_t(r)] = n / R;
                break;
            case Split::Uneven:
                s[size_t(r)] = n * (r + 1) / (R * (R + 1) / 2);
                break;
            case Split::EmptyFirst:
                s[size_t(r)] = r == 0 ? 0 : n / R;
                break;
            case Split::TinyFirst:
                s[size_t(r)] = r == 0 ? 3 : n / R;
                break;
        }
        left -= s[size_t(r)];
    }
    s[size_t(R - 1)] = left;
    return s;
}

/// The first global row of rank `me`'s shard.
inline int64_t first_row(const std::vector<int64_t>& sizes, int me) {
    int64_t row = 0;
    for (int r = 0; r < me; r++) {
        row += sizes[size_t(r)];
    }
    return row;
}

} // namespace fk_test
