// The ranks of an MPI launch of the program (`mpirun -np R flashkmeans train
// ...`): each rank trains on its own row range of the input, rank 0 prints
// and writes. Started by no MPI launcher, the program is one rank and never
// touches MPI (so a plain run needs no MPI runtime set-up).
#pragma once

#include <flashkmeans/Communicator.h>

#include <cstdint>
#include <memory>

namespace flashkmeans {
namespace cli {

struct Ranks {
    int rank = 0;
    int size = 1;
    std::shared_ptr<Communicator> comm; ///< null with one rank

    bool root() const {
        return rank == 0;
    }
    /// This rank's rows of n: [begin, end), contiguous, in rank order.
    int64_t begin(int64_t n) const {
        return n * rank / size;
    }
    int64_t end(int64_t n) const {
        return n * (rank + 1) / size;
    }
};

/// Initialises MPI when an MPI launcher started the program (mpirun, srun:
/// its environment says so); throws when this build has no MPI but the
/// launch has several ranks.
void start_ranks(int* argc, char*** argv);
/// The launch's ranks (one before start_ranks).
const Ranks& ranks();
/// Ends MPI after a run that succeeded on this rank.
void finish_ranks();
/// Ends every rank at once after this one failed (none waits forever in an
/// exchange); returns `code` when there is a single rank.
int abort_ranks(int code);

} // namespace cli
} // namespace flashkmeans
