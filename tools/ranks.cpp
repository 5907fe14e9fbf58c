#include "ranks.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef FLASHKMEANS_CLI_MPI
#include <flashkmeans/mpi_communicator.h>
#endif

namespace flashkmeans {
namespace cli {

namespace {

Ranks g_ranks;
bool g_mpi = false;

/// The world size an MPI launcher announced (Open MPI, PMIx, PMI: srun and
/// MPICH's hydra), or 0 when no launcher started the program.
int launched_size() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"}) {
        if (const char* v = std::getenv(var)) {
            return std::atoi(v);
        }
    }
    return std::getenv("PMIX_RANK") ? 1 : 0;
}

} // namespace

void start_ranks(int* argc, char*** argv) {
    const int size = launched_size();
    if (size == 0) {
        return;
    }
#ifdef FLASHKMEANS_CLI_MPI
    MPI_Init(argc, argv);
    g_mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_ranks.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_ranks.size);
    if (g_ranks.size > 1) {
        g_ranks.comm = mpi_communicator(MPI_COMM_WORLD);
    }
#else
    (void)argc;
    (void)argv;
    if (size > 1) {
        throw std::runtime_error("started by an MPI launcher with " + std::to_string(size) +
                                 " ranks, but this flashkmeans was built without MPI "
                                 "(install libopenmpi-dev and rebuild)");
    }
#endif
}

const Ranks& ranks() {
    return g_ranks;
}

void finish_ranks() {
#ifdef FLASHKMEANS_CLI_MPI
    if (g_mpi) {
        MPI_Finalize();
        g_mpi = false;
    }
#endif
}

int abort_ranks(int code) {
#ifdef FLASHKMEANS_CLI_MPI
    if (g_mpi && g_ranks.size > 1) {
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    finish_ranks();
#endif
    return code;
}

} // namespace cli
} // namespace flashkmeans
