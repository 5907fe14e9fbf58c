// The NCCL communicator: device buffers. The iteration's exchange is
// ncclAllGather, or ncclSend/ncclRecv pairs (an all-to-all) then
// ncclAllGather, on the place's stream (no host sync; the engine adds the
// ranks' partials in rank order on the device, kernels::sum_slices). NCCL's
// own ncclAllReduce is not used: its order of summation depends on the
// algorithm and protocol NCCL picks (ring, tree, NVLS), so its bits could
// change with the topology or the message size. Host collectives (set-up
// only) go through a device buffer on a stream of the communicator's own.
#include <flashkmeans/nccl_communicator.h>

#include "cuda/cuda_check.h"

#include <faiss/impl/FaissAssert.h>

#include <cuda_runtime_api.h>

namespace flashkmeans {

namespace {

void check(ncclResult_t rc, const char* call) {
    if (rc != ncclSuccess) {
        FAISS_THROW_FMT("flashkmeans: %s failed: %s", call, ncclGetErrorString(rc));
    }
}

class NcclCommunicator final : public Communicator {
   public:
    NcclCommunicator(ncclComm_t comm, int device) : comm_(comm), device_(device) {
        FAISS_THROW_IF_NOT_MSG(comm != nullptr, "flashkmeans::nccl_communicator: null ncclComm_t");
        check(ncclCommUserRank(comm, &rank_), "ncclCommUserRank");
        check(ncclCommCount(comm, &size_), "ncclCommCount");
        int comm_device = -1;
        check(ncclCommCuDevice(comm, &comm_device), "ncclCommCuDevice");
        FAISS_THROW_IF_NOT_FMT(comm_device == device,
                               "flashkmeans::nccl_communicator: the communicator is on device %d, "
                               "not %d",
                               comm_device, device);
        cuda::DeviceGuard guard(device_);
        FK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }
    ~NcclCommunicator() override {
        if (buf_) {
            cudaFree(buf_);
        }
        cudaStreamDestroy(stream_);
    }
    int rank() const override {
        return rank_;
    }
    int size() const override {
        return size_;
    }
    const char* name() const override {
        return "nccl";
    }

    void allgather(const void* send, void* recv, size_t bytes) override {
        cuda::DeviceGuard guard(device_);
        char* d = staging(bytes * (size_t(size_) + 1));
        FK_CUDA_CHECK(cudaMemcpyAsync(d, send, bytes, cudaMemcpyHostToDevice, stream_));
        check(ncclAllGather(d, d + bytes, bytes, ncclUint8, comm_, stream_), "ncclAllGather");
        FK_CUDA_CHECK(cudaMemcpyAsync(recv, d + bytes, bytes * size_t(size_),
                                      cudaMemcpyDeviceToHost, stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    void alltoall(const void* send, void* recv, size_t bytes) override {
        cuda::DeviceGuard guard(device_);
        const size_t all = bytes * size_t(size_);
        char* d = staging(2 * all);
        FK_CUDA_CHECK(cudaMemcpyAsync(d, send, all, cudaMemcpyHostToDevice, stream_));
        exchange_blocks(d, d + all, bytes, stream_);
        FK_CUDA_CHECK(cudaMemcpyAsync(recv, d + all, all, cudaMemcpyDeviceToHost, stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    void broadcast(void* buf, size_t bytes, int root) override {
        cuda::DeviceGuard guard(device_);
        char* d = staging(bytes);
        FK_CUDA_CHECK(cudaMemcpyAsync(d, buf, bytes, cudaMemcpyHostToDevice, stream_));
        check(ncclBroadcast(d, d, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
        FK_CUDA_CHECK(cudaMemcpyAsync(buf, d, bytes, cudaMemcpyDeviceToHost, stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    void allgather_on(const Place& place, const void* send, void* recv, size_t bytes) override {
        require_device(place);
        cuda::DeviceGuard guard(device_);
        check(ncclAllGather(send, recv, bytes, ncclUint8, comm_, cuda::stream_of(place)),
              "ncclAllGather");
    }

    void alltoall_on(const Place& place, const void* send, void* recv, size_t bytes) override {
        require_device(place);
        cuda::DeviceGuard guard(device_);
        exchange_blocks(send, recv, bytes, cuda::stream_of(place));
    }

   private:
    void require_device(const Place& place) const {
        FAISS_THROW_IF_NOT_FMT(place.backend == Backend::CUDA && place.device == device_,
                               "flashkmeans: the NCCL communicator exchanges device memory of "
                               "device %d; train with the CUDA backend on that device",
                               device_);
    }

    /// NCCL has no all-to-all: a group of one send and one receive per peer
    void exchange_blocks(const void* send, void* recv, size_t bytes, cudaStream_t stream) {
        const char* s = static_cast<const char*>(send);
        char* r = static_cast<char*>(recv);
        check(ncclGroupStart(), "ncclGroupStart");
        for (int peer = 0; peer < size_; peer++) {
            check(ncclSend(s + size_t(peer) * bytes, bytes, ncclUint8, peer, comm_, stream),
                  "ncclSend");
            check(ncclRecv(r + size_t(peer) * bytes, bytes, ncclUint8, peer, comm_, stream),
                  "ncclRecv");
        }
        check(ncclGroupEnd(), "ncclGroupEnd");
    }

    char* staging(size_t bytes) {
        if (bytes > cap_) {
            if (buf_) {
                FK_CUDA_CHECK(cudaFree(buf_));
                buf_ = nullptr;
            }
            FK_CUDA_CHECK(cudaMalloc(&buf_, bytes));
            cap_ = bytes;
        }
        return static_cast<char*>(buf_);
    }

    ncclComm_t comm_;
    int device_;
    int rank_ = 0, size_ = 1;
    cudaStream_t stream_ = nullptr;
    void* buf_ = nullptr;
    size_t cap_ = 0;
};

} // namespace

std::shared_ptr<Communicator> nccl_communicator(ncclComm_t comm, int device) {
    return std::make_shared<NcclCommunicator>(comm, device);
}

} // namespace flashkmeans
