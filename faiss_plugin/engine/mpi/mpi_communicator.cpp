// The MPI communicator: host buffers, MPI_Allgather, MPI_Alltoall and
// MPI_Bcast of bytes.
// The library reduces nothing through MPI itself: MPI_Allreduce on floats
// may combine ranks in any order (the standard lets it use associativity),
// so the engine all-gathers the partial sums and adds them in rank order.
#include <flashkmeans/mpi_communicator.h>

#include <faiss/impl/FaissAssert.h>

#include <climits>
#include <string>

namespace flashkmeans {

namespace {

void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING] = {0};
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        FAISS_THROW_FMT("flashkmeans: %s failed: %s", call, msg);
    }
}

int count_of(size_t bytes) {
    FAISS_THROW_IF_NOT_FMT(bytes <= size_t(INT_MAX),
                           "flashkmeans: an MPI exchange of %zu bytes per rank exceeds MPI's int "
                           "count (%d); use fewer clusters or a smaller dimension per run",
                           bytes, INT_MAX);
    return int(bytes);
}

class MpiCommunicator final : public Communicator {
   public:
    explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
        int initialized = 0;
        MPI_Initialized(&initialized);
        FAISS_THROW_IF_NOT_MSG(initialized,
                               "flashkmeans::mpi_communicator: MPI is not initialised");
        FAISS_THROW_IF_NOT_MSG(comm != MPI_COMM_NULL,
                               "flashkmeans::mpi_communicator: MPI_COMM_NULL");
        check(MPI_Comm_rank(comm, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(comm, &size_), "MPI_Comm_size");
    }
    int rank() const override {
        return rank_;
    }
    int size() const override {
        return size_;
    }
    const char* name() const override {
        return "mpi";
    }
    void allgather(const void* send, void* recv, size_t bytes) override {
        const int n = count_of(bytes);
        check(MPI_Allgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm_), "MPI_Allgather");
    }
    void alltoall(const void* send, void* recv, size_t bytes) override {
        const int n = count_of(bytes);
        check(MPI_Alltoall(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm_), "MPI_Alltoall");
    }
    void broadcast(void* buf, size_t bytes, int root) override {
        check(MPI_Bcast(buf, count_of(bytes), MPI_BYTE, root, comm_), "MPI_Bcast");
    }

   private:
    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
};

} // namespace

std::shared_ptr<Communicator> mpi_communicator(MPI_Comm comm) {
    return std::make_shared<MpiCommunicator>(comm);
}

} // namespace flashkmeans
