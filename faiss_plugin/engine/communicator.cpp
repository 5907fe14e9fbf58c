// The local communicator (one rank) and the host path of allgather_on, which
// MPI and the local communicator share.
#include <flashkmeans/Communicator.h>

#include "device_memory.h"

#include <cstring>
#include <vector>

namespace flashkmeans {

void Communicator::allgather_on(const Place& place, const void* send, void* recv, size_t bytes) {
    if (place.backend != Backend::CUDA) {
        allgather(send, recv, bytes);
        return;
    }
    // device memory through the host: one copy down, the exchange, one up
    std::vector<char> mine(bytes), all(bytes * size_t(size()));
    copy_to_host(place, mine.data(), send, bytes);
    allgather(mine.data(), all.data(), bytes);
    copy_to_place(place, recv, all.data(), all.size());
}

void Communicator::alltoall_on(const Place& place, const void* send, void* recv, size_t bytes) {
    if (place.backend != Backend::CUDA) {
        alltoall(send, recv, bytes);
        return;
    }
    std::vector<char> mine(bytes * size_t(size())), all(bytes * size_t(size()));
    copy_to_host(place, mine.data(), send, mine.size());
    alltoall(mine.data(), all.data(), bytes);
    copy_to_place(place, recv, all.data(), all.size());
}

namespace {

class LocalCommunicator final : public Communicator {
   public:
    int rank() const override {
        return 0;
    }
    int size() const override {
        return 1;
    }
    const char* name() const override {
        return "local";
    }
    void allgather(const void* send, void* recv, size_t bytes) override {
        if (bytes != 0 && send != recv) {
            std::memmove(recv, send, bytes);
        }
    }
    void broadcast(void*, size_t, int) override {}
    void alltoall(const void* send, void* recv, size_t bytes) override {
        allgather(send, recv, bytes);
    }
    void allgather_on(const Place& place, const void* send, void* recv, size_t bytes) override {
        if (bytes != 0 && send != recv) {
            copy_within(place, recv, send, bytes);
        }
    }
    void alltoall_on(const Place& place, const void* send, void* recv, size_t bytes) override {
        allgather_on(place, send, recv, bytes);
    }
};

} // namespace

std::shared_ptr<Communicator> local_communicator() {
    return std::make_shared<LocalCommunicator>();
}

} // namespace flashkmeans
