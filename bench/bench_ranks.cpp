// bench_ranks: data-parallel Lloyd across MPI ranks (one GPU per rank with
// NCCL, or host buffers with MPI), milliseconds per iteration and the
// centroids, for the scaling run (bench/multi_gpu.sh) and the cost model's
// check (bench/scaling_model.py --cpu-check).
//
//   mpirun -np R bench_ranks --n N --d D --k K [--niter I] [--dtype fp16|fp32]
//       [--backend cuda|cpu] [--comm nccl|mpi] [--device D] [--out FILE]
//   bench_ranks --comm devices --gpus R ...   (one process, a thread and an NCCL
//       rank per GPU: flashkmeans::train_on_devices over GPUs 0..R-1)
//
// Each rank takes the GPU of its local rank on the node, or device D for
// every rank with --device (two ranks on one GPU: --comm mpi only, NCCL
// refuses two ranks on one device).
// The points are a function of their global row alone (small integers around
// integer centres), so every rank count clusters the same N points and, the
// values being integers, must give the same centroids bit for bit: --out
// writes rank 0's centroids (k x d float32, raw) for the script to compare.
// Each rank makes only its own rows [N r / R, N (r + 1) / R). Reported: the
// median over iterations 2..I of the time between two iteration ends
// (faiss's iteration_stats clock), and the run's objective.
#include <flashkmeans/Clustering.h>
#include <flashkmeans/mpi_communicator.h>
#ifdef FLASHKMEANS_BENCH_NCCL
#include <flashkmeans/nccl_communicator.h>
#include <flashkmeans/train_on_devices.h>

#include <cuda_runtime_api.h>
#endif

#include <faiss/IndexFlat.h>

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

uint64_t mix(uint64_t v) {
    // splitmix64: the same value for a row on every rank count
    v += 0x9e3779b97f4a7c15ull;
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
    return v ^ (v >> 31);
}

/// Rows [begin, end) of the global data set: integers in [-64, 64] around
/// 4 k integer centres (exact in fp16 as in fp32).
std::vector<float> make_rows(int64_t begin, int64_t end, int64_t d, int64_t k) {
    std::vector<float> x(size_t(end - begin) * size_t(d));
    const uint64_t centres = uint64_t(4 * k);
    for (int64_t i = begin; i < end; i++) {
        const uint64_t c = mix(uint64_t(i)) % centres;
        for (int64_t j = 0; j < d; j++) {
            const int centre = int(mix(c * 1000003u + uint64_t(j)) % 97) - 48;
            const int noise = int(mix(uint64_t(i) * 7919u + uint64_t(j) + 1) % 33) - 16;
            x[size_t(i - begin) * size_t(d) + size_t(j)] = float(centre + noise);
        }
    }
    return x;
}

struct Args {
    int64_t n = 1 << 20, d = 128, k = 1024;
    int niter = 20;
    std::string dtype = "fp16", backend = "cuda", comm = "nccl", out;
    int device = -1; ///< -1: the local rank's GPU
    int gpus = 1;    ///< --comm devices: GPUs 0..gpus-1 of this one process
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string f = argv[i], v = argv[i + 1];
        if (f == "--n")
            a.n = std::atoll(v.c_str());
        else if (f == "--d")
            a.d = std::atoll(v.c_str());
        else if (f == "--k")
            a.k = std::atoll(v.c_str());
        else if (f == "--niter")
            a.niter = std::atoi(v.c_str());
        else if (f == "--dtype")
            a.dtype = v;
        else if (f == "--backend")
            a.backend = v;
        else if (f == "--comm")
            a.comm = v;
        else if (f == "--out")
            a.out = v;
        else if (f == "--device")
            a.device = std::atoi(v.c_str());
        else if (f == "--gpus")
            a.gpus = std::atoi(v.c_str());
        else
            throw std::runtime_error("unknown argument " + f);
    }
    return a;
}

} // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1, local = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    try {
        const Args a = parse(argc, argv);
        flashkmeans::Options o;
        o.backend = flashkmeans::parse_backend(a.backend);
        o.dtype = flashkmeans::parse_dtype(a.dtype);
        o.device = o.backend != flashkmeans::Backend::CUDA ? 0 : a.device >= 0 ? a.device : local;
#ifdef FLASHKMEANS_BENCH_NCCL
        ncclComm_t nccl = nullptr;
#endif
        const bool in_process = a.comm == "devices";
        if (in_process) {
#ifdef FLASHKMEANS_BENCH_NCCL
            if (size != 1) {
                throw std::runtime_error("--comm devices runs in one process (no mpirun -np)");
            }
#else
            throw std::runtime_error("--comm devices: this build has no NCCL");
#endif
        } else if (a.comm == "nccl") {
#ifdef FLASHKMEANS_BENCH_NCCL
            ncclUniqueId id;
            if (rank == 0) {
                ncclGetUniqueId(&id);
            }
            MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
            cudaSetDevice(o.device);
            if (ncclCommInitRank(&nccl, size, id, rank) != ncclSuccess) {
                throw std::runtime_error("ncclCommInitRank failed");
            }
            o.comm = flashkmeans::nccl_communicator(nccl, o.device);
#else
            throw std::runtime_error("--comm nccl: this build has no NCCL (use --comm mpi)");
#endif
        } else {
            o.comm = flashkmeans::mpi_communicator(MPI_COMM_WORLD);
        }
        const int64_t begin = a.n * rank / size, end = a.n * (rank + 1) / size;
        const std::vector<float> x = make_rows(begin, end, a.d, a.k);
        faiss::ClusteringParameters cp;
        cp.niter = a.niter;
        cp.max_points_per_centroid = 1 << 30; // every point, as the scaling run wants
        flashkmeans::Clustering clus(int(a.d), int(a.k), cp, o);
        faiss::IndexFlatL2 index(a.d);
        int ranks = size;
        if (in_process) {
#ifdef FLASHKMEANS_BENCH_NCCL
            std::vector<int> devices;
            for (int g = 0; g < a.gpus; g++) {
                devices.push_back(g);
            }
            clus.options.comm.reset();
            flashkmeans::train_on_devices(clus, devices, end - begin, x.data(),
                                          flashkmeans::DType::Float32, index);
            ranks = a.gpus;
#endif
        } else {
            clus.train(end - begin, x.data(), index);
        }
        std::vector<double> per;
        const auto& st = clus.iteration_stats;
        for (size_t i = 2; i < st.size(); i++) {
            per.push_back(1000 * (st[i].time - st[i - 1].time));
        }
        std::sort(per.begin(), per.end());
        if (rank == 0) {
            std::printf("bench_ranks ranks=%d comm=%s backend=%s dtype=%s n=%lld d=%lld k=%lld "
                        "ms_per_iter=%.4f obj=%.9g\n",
                        ranks, in_process ? "devices" : o.comm->name(), a.backend.c_str(),
                        a.dtype.c_str(), (long long)a.n, (long long)a.d, (long long)a.k,
                        per.empty() ? 0.0 : per[per.size() / 2],
                        st.empty() ? 0.0 : double(st.back().obj));
            if (!a.out.empty()) {
                FILE* f = std::fopen(a.out.c_str(), "wb");
                if (!f || std::fwrite(clus.centroids.data(), sizeof(float), clus.centroids.size(),
                                      f) != clus.centroids.size()) {
                    throw std::runtime_error("cannot write " + a.out);
                }
                std::fclose(f);
            }
        }
        o.comm.reset();
        clus.options.comm.reset();
#ifdef FLASHKMEANS_BENCH_NCCL
        if (nccl) {
            ncclCommDestroy(nccl);
        }
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_ranks: rank %d: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
