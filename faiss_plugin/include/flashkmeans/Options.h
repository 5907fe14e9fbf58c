/**
 * flashkmeans::Options: what flashkmeans adds to faiss::ClusteringParameters.
 */
#pragma once

#include <flashkmeans/Communicator.h>
#include <flashkmeans/kernels.h>

#include <cstddef>
#include <memory>
#include <string>

namespace flashkmeans {

/// How the centroids not given by the caller are initialised.
enum class Init {
    Random,   ///< k distinct points from FAISS's rand_perm (FAISS's seeding)
    /// k-means++ (D^2 sampling) on the backend, one uniform draw per row
    /// from std::mt19937_64(seed)
    KMeansPP,
};

/// The CPU backend's assignment kernel.
enum class CpuKernel {
    /// Fused with prune (where the CPU can run it), else Faiss
    Auto,
    /// FAISS's own sgemm calls: bitwise faiss::Clustering's labels and
    /// centroids with the same OpenBLAS (the parity the tests hold)
    Faiss,
    /// flashkmeans' FMA micro-kernel with the argmin fused (x86-64 with AVX2
    /// and FMA): faster, and every score a function of its point and
    /// centroid alone, so pruning changes no label; not FAISS's bits
    Fused,
};

struct Options {
    /// where training runs; Auto = CUDA when a GPU is visible, else CPU
    Backend backend = Backend::Auto;
    /// CUDA device ordinal (CUDA backend only)
    int device = 0;
    /// element type the points are converted to on the device (fp32 default);
    /// Float16/BFloat16 halve the traffic, centroids and sums stay fp32
    DType dtype = DType::Float32;
    /// fp32 products: Exact (default, matches a float64 reference) or TF32
    Precision precision = Precision::Exact;
    /// initialisation of the centroids the caller did not provide
    Init init = Init::Random;
    /// bytes of memory a run may hold where it computes (device memory on
    /// CUDA, host memory on the CPU): centroids, sums, per-point arrays, the
    /// update's workspace and the points. Host points that do not fit are
    /// streamed in chunks every iteration (on CUDA the leading ones that fit
    /// stay resident; on the CPU they are read in place, a chunk at a time).
    /// Too small for the centroids, one chunk of one point and the workspace:
    /// an InputError naming the minimum. With comm, each rank's budget for
    /// its own shard; too small on one rank fails every rank. 0 (default): no
    /// bound on the CPU; on CUDA the device's free memory, so host data larger
    /// than the GPU streams instead of failing. Points already in device
    /// memory are used in place and never streamed.
    size_t memory_budget = 0;
    /// Exact pruning: after the first iteration, points whose label bounds on
    /// the centroids' movement prove are not compared with every centroid.
    /// CPU: Yinyang's group bounds with the fused kernel (which
    /// CpuKernel::Auto takes with prune), Hamerly's with FAISS's blocks. With
    /// the fused kernel the run is the unpruned one bit for bit; with FAISS's
    /// blocks labels equal it except counted near-ties (Clustering::near_ties)
    /// and objectives agree to float rounding. FAISS's bitwise parity (prune
    /// off, Faiss kernel) no longer holds either way. Pays on clustered data;
    /// where the bounds skip little (iid data) it backs off to the plain
    /// assignment, at a measured 1% (AVX2) to 18% (AVX-512) there.
    /// CUDA (each problem of a batch on its own, resident or streamed; with comm each rank its own
    /// points): the moved-centroid filter
    /// (engine/moved_filter.h), points whose centroid did not move compared
    /// with the centroids that did; labels equal the unpruned run's except
    /// counted near-ties.
    bool prune = false;
    /// The CPU assignment kernel (CpuKernel). Faiss or Fused with the CUDA
    /// backend is an InputError, not ignored.
    CpuKernel cpu_kernel = CpuKernel::Auto;
    /// CUDA: the cudaStream_t the work runs on, after the work already
    /// enqueued there; results are ready in that stream's order (as a
    /// PyTorch or CuPy kernel on the caller's current stream). nullptr: a
    /// stream of the engine's own, which starts after the legacy default
    /// stream's work and is finished when the call returns.
    void* stream = nullptr;
    /// Data-parallel training (Clustering::train only): the ranks, each
    /// calling train with its own shard of the points, in rank order. null:
    /// this process alone. mpi_communicator(MPI_Comm) or
    /// nccl_communicator(ncclComm_t, device) (<flashkmeans/*_communicator.h>).
    std::shared_ptr<Communicator> comm;
};

const char* backend_name(Backend backend);
/// Parses "cpu", "cuda", "auto" (throws faiss::FaissException otherwise).
Backend parse_backend(const std::string& name);
/// Parses "float32"/"fp32", "float16"/"fp16", "bfloat16"/"bf16".
DType parse_dtype(const std::string& name);
/// Parses "exact", "tf32".
Precision parse_precision(const std::string& name);
/// Parses "random", "kmeans++".
Init parse_init(const std::string& name);
/// Parses "auto", "faiss", "fused".
CpuKernel parse_cpu_kernel(const std::string& name);
const char* cpu_kernel_name(CpuKernel kernel);
/// The assignment kernel `options` ask for on `backend` (already resolved):
/// Auto, or Fused for CpuKernel::Fused and for Auto with prune where this
/// CPU runs it. InputError for Faiss or Fused on CUDA, and for Fused on a
/// CPU without AVX2 and FMA.
kernels::AssignKernel resolve_cpu_kernel(const Options& options, Backend backend);

/// The backend that `requested` resolves to on this machine (Auto -> CUDA
/// when compiled in and a GPU is visible); throws if CUDA is requested but
/// not available.
Backend resolve_backend(Backend requested);

} // namespace flashkmeans
