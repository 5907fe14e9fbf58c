// A flashkmeans::Communicator over an mpi4py communicator (Kmeans(...,
// comm=MPI.COMM_WORLD)): its collectives call the communicator's own
// Allgather, Alltoall and Bcast on memoryviews of the engine's host buffers, with the
// GIL taken for the call. So the extension links no MPI library: it uses
// whichever MPI mpi4py was built with. Host buffers only, as the MPI
// communicator of the C++ API (the CUDA backend copies through the host).
#pragma once

#include <flashkmeans/Communicator.h>

#include <nanobind/nanobind.h>

#include <Python.h>

#include <cstddef>

namespace nb = nanobind;

class Mpi4pyCommunicator final : public flashkmeans::Communicator {
   public:
    /// `comm`: an mpi4py.MPI.Comm (anything with Get_rank, Get_size,
    /// Allgather, Alltoall and Bcast taking buffers). Called with the GIL held.
    explicit Mpi4pyCommunicator(nb::object comm)
            : comm_(std::move(comm)),
              rank_(nb::cast<int>(comm_.attr("Get_rank")())),
              size_(nb::cast<int>(comm_.attr("Get_size")())) {}
    ~Mpi4pyCommunicator() override {
        nb::gil_scoped_acquire gil;
        comm_.reset();
    }
    int rank() const override {
        return rank_;
    }
    int size() const override {
        return size_;
    }
    const char* name() const override {
        return "mpi4py";
    }
    void allgather(const void* send, void* recv, size_t bytes) override {
        nb::gil_scoped_acquire gil;
        comm_.attr("Allgather")(view(const_cast<void*>(send), bytes, PyBUF_READ),
                                view(recv, bytes * size_t(size_), PyBUF_WRITE));
    }
    void alltoall(const void* send, void* recv, size_t bytes) override {
        nb::gil_scoped_acquire gil;
        const size_t all = bytes * size_t(size_);
        comm_.attr("Alltoall")(view(const_cast<void*>(send), all, PyBUF_READ),
                               view(recv, all, PyBUF_WRITE));
    }
    void broadcast(void* buf, size_t bytes, int root) override {
        nb::gil_scoped_acquire gil;
        comm_.attr("Bcast")(view(buf, bytes, PyBUF_WRITE), nb::arg("root") = root);
    }

   private:
    static nb::object view(void* p, size_t bytes, int flags) {
        static char empty = 0; // a memoryview needs an address even for 0 bytes
        PyObject* mv = PyMemoryView_FromMemory(p ? static_cast<char*>(p) : &empty,
                                               Py_ssize_t(bytes), flags);
        if (!mv) {
            throw nb::python_error();
        }
        return nb::steal(mv);
    }

    nb::object comm_;
    int rank_, size_;
};
