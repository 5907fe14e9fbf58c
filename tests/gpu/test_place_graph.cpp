// PlaceGraph (faiss_plugin/engine/device_memory.h), the recorder behind the engine's
// one-graph iterations: a recorded graph keeps doing the work on new data,
// and where recording is impossible the runs stay plain and right, or, with
// the variant cuda_graph = "require", the failure is an error.
#include "engine/device_memory.h"
#include "engine/lloyd.h"

#include <flashkmeans/kernels.h>
#include <flashkmeans/memory.h>

#include <gtest/gtest.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

namespace fk = flashkmeans;

#define SKIP_WITHOUT_GPU()                   \
    if (fk::cuda_device_count() == 0) {      \
        GTEST_SKIP() << "no GPU";            \
    }

constexpr int64_t kN = 1000, kD = 64;

/// Row norms of new data on `place` through `graph`, `runs` times: each run
/// uploads other points (outside the graph) and checks the norms against
/// the host. `extra` runs inside the recorded work.
template <typename Extra>
void run_norms(const fk::Place& place, fk::PlaceGraph& graph, int runs, Extra&& extra) {
    fk::PlaceArray<float> x(place, size_t(kN * kD)), norms(place, size_t(kN));
    for (int r = 0; r < runs; r++) {
        const auto host = fk_test::random_matrix(kN, kD, 100 + r);
        fk::copy_to_place(place, x.get(), host.data(), host.size() * sizeof(float));
        graph.run([&] {
            fk::kernels::row_norms(place, x.get(), fk::DType::Float32, kN, kD, norms.get());
            extra();
        });
        std::vector<float> got(kN);
        fk::copy_to_host(place, got.data(), norms.get(), got.size() * sizeof(float));
        for (int64_t i = 0; i < kN; i++) {
            const double want = fk_test::norm2_f64(&host[i * kD], kD);
            ASSERT_NEAR(got[i], want, 1e-5 * want) << "run " << r << " row " << i;
        }
    }
}

TEST(CudaPlaceGraph, RecordedGraphRedoesTheWorkOnNewData) {
    SKIP_WITHOUT_GPU();
    fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
    fk::PlaceGraph graph(stream.place());
    EXPECT_NE(stream.place().stream, nullptr);
    run_norms(stream.place(), graph, 1, [] {});
    EXPECT_FALSE(graph.recorded()) << "the first run is plain";
    run_norms(stream.place(), graph, 3, [] {});
    EXPECT_TRUE(graph.recorded());
}

// With a key, a graph outlives its PlaceGraph: the next PlaceGraph of that
// key (other buffers, another stream) runs its first run plain and updates
// the kept graph with its second, giving its own data's norms; another key,
// or the same key after empty_cache(), instantiates a graph of its own.
TEST(CudaPlaceGraph, KeptGraphIsUpdatedByTheNextCallOfItsKey) {
    SKIP_WITHOUT_GPU();
    fk::empty_cache();
    {
        fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
        fk::PlaceGraph graph(stream.place(), "test norms");
        run_norms(stream.place(), graph, 3, [] {});
        EXPECT_TRUE(graph.recorded());
        EXPECT_FALSE(graph.updated());
    }
    {
        fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
        fk::PlaceGraph graph(stream.place(), "test norms");
        run_norms(stream.place(), graph, 1, [] {});
        EXPECT_FALSE(graph.recorded()) << "the first run is plain";
        run_norms(stream.place(), graph, 1, [] {});
        EXPECT_TRUE(graph.recorded());
        EXPECT_TRUE(graph.updated()) << "refused: " << graph.update_refusal();
        run_norms(stream.place(), graph, 2, [] {});
    }
    {
        fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
        fk::PlaceGraph other(stream.place(), "another shape");
        run_norms(stream.place(), other, 2, [] {});
        EXPECT_TRUE(other.recorded());
        EXPECT_FALSE(other.updated());
    }
    fk::empty_cache();
    fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
    fk::PlaceGraph graph(stream.place(), "test norms");
    run_norms(stream.place(), graph, 2, [] {});
    EXPECT_TRUE(graph.recorded());
    EXPECT_FALSE(graph.updated()) << "empty_cache() dropped the kept graph";
}

// The engine's iteration graph: a second run of the same shape (other
// buffers, other points) updates the graph the first kept, from its second
// iteration on, and gives the bits of a run with plain launches.
TEST(CudaPlaceGraph, EngineRunOfARepeatedShapeUpdatesTheKeptGraph) {
    SKIP_WITHOUT_GPU();
    const int64_t B = 3, n = 20000, d = 64, k = 100;
    for (fk::DType dtype : {fk::DType::Float16, fk::DType::Float32}) {
        SCOPED_TRACE(fk::dtype_name(dtype));
        fk::empty_cache();
        const fk::Place gpu{fk::Backend::CUDA, 0, nullptr};
        fk::LloydConfig cfg;
        cfg.k = k;
        cfg.compute_dtype = dtype;
        auto run = [&](uint64_t seed, const char* graphs, bool expect_updated) {
            fk_test::ScopedVariant v(&fk::kernels::Variants::cuda_graph, graphs);
            const auto x = fk_test::random_matrix(B * n, d, seed);
            fk::Lloyd lloyd(gpu, fk::LloydData{x.data(), fk::DType::Float32, false, n, d, B, nullptr},
                            cfg);
            std::vector<int64_t> rows(static_cast<size_t>(k));
            for (int64_t j = 0; j < k; j++) {
                rows[size_t(j)] = j * 7;
            }
            lloyd.set_centroids_from_points(rows);
            std::vector<double> obj;
            for (int it = 0; it < 4; it++) {
                const fk::LloydStep step = lloyd.iterate();
                obj.insert(obj.end(), step.obj.begin(), step.obj.end());
                if (it == 1 && expect_updated) {
                    EXPECT_TRUE(lloyd.graph_updated()) << "refused: " << lloyd.graph_update_refusal();
                }
            }
            std::vector<float> c(size_t(B * k * d));
            lloyd.get_centroids(c.data());
            return std::make_pair(c, obj);
        };
        run(1, "require", false);                       // records and keeps the graph
        const auto updated = run(2, "require", true);   // updates it
        const auto plain = run(2, "0", false);
        EXPECT_EQ(0, std::memcmp(updated.first.data(), plain.first.data(), plain.first.size() * 4));
        EXPECT_EQ(updated.second, plain.second);
    }
}

// The shape of a Python batch_kmeans call on CUDA tensors: fp16 points used
// in place, centroids from device memory, the caller's stream, an odd n and
// d, and events of the caller's own made between calls (as torch's timing
// does). The second call of the shape updates the kept graph (no
// instantiation), its timer's events recorded in the same nodes.
TEST(CudaPlaceGraph, InPlaceDevicePointsOnACallersStreamUpdateTheKeptGraph) {
    SKIP_WITHOUT_GPU();
    const int64_t n = 100003, d = 104, k = 1000;
    fk::empty_cache();
    cudaStream_t user = nullptr;
    ASSERT_EQ(cudaStreamCreate(&user), cudaSuccess);
    const fk::Place gpu{fk::Backend::CUDA, 0, user};
    fk::LloydConfig cfg;
    cfg.k = k;
    cfg.compute_dtype = fk::DType::Float16;
    const auto xf = fk_test::random_matrix(n, d, 5);
    std::vector<__half> xh(xf.size());
    for (size_t i = 0; i < xf.size(); i++) {
        xh[i] = __float2half_rn(xf[i]);
    }
    void* dx = nullptr;
    float* dc = nullptr;
    ASSERT_EQ(cudaMalloc(&dx, xh.size() * 2), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dc, size_t(k * d) * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dx, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dc, xf.data(), size_t(k * d) * 4, cudaMemcpyHostToDevice), cudaSuccess);
    std::vector<cudaEvent_t> callers_events;
    for (int call = 0; call < 3; call++) {
        for (int e = 0; e < 2; e++) { // would take the handles the last call let go
            callers_events.emplace_back();
            ASSERT_EQ(cudaEventCreate(&callers_events.back()), cudaSuccess);
        }
        fk::Lloyd lloyd(gpu, fk::LloydData{dx, fk::DType::Float16, true, n, d, 1, nullptr}, cfg);
        lloyd.set_centroids(dc);
        for (int it = 0; it < 3; it++) {
            lloyd.iterate();
            if (it == 1 && call > 0) {
                EXPECT_TRUE(lloyd.graph_updated())
                        << "call " << call << " refused: " << lloyd.graph_update_refusal();
            }
        }
    }
    for (cudaEvent_t e : callers_events) {
        cudaEventDestroy(e);
    }
    cudaFree(dx), cudaFree(dc);
    cudaStreamDestroy(user);
}

// The legacy default stream cannot be recorded, nor can work that waits for
// the host inside: runs stay plain and give the same norms.
TEST(CudaPlaceGraph, UnrecordableWorkStaysPlainAndRight) {
    SKIP_WITHOUT_GPU();
    const fk::Place legacy{fk::Backend::CUDA, 0, nullptr};
    fk::PlaceGraph on_legacy(legacy);
    run_norms(legacy, on_legacy, 3, [] {});
    EXPECT_FALSE(on_legacy.recorded());

    fk::PlaceStream stream(legacy);
    fk::PlaceGraph waiting(stream.place());
    run_norms(stream.place(), waiting, 3, [&] { fk::place_sync(stream.place()); });
    EXPECT_FALSE(waiting.recorded());
}

TEST(CudaPlaceGraph, RequireMakesAFailedRecordingAnError) {
    SKIP_WITHOUT_GPU();
    fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::cuda_graph, "require");
    const fk::Place legacy{fk::Backend::CUDA, 0, nullptr};
    fk::PlaceGraph graph(legacy);
    run_norms(legacy, graph, 1, [] {});  // the first run is plain
    try {
        run_norms(legacy, graph, 1, [] {});
        ADD_FAILURE() << "no exception";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("cudaStreamBeginCapture"), std::string::npos)
                << e.what();
    }
}

TEST(CudaPlaceGraph, SwitchedOffRunsPlain) {
    SKIP_WITHOUT_GPU();
    fk_test::ScopedVariant env(&flashkmeans::kernels::Variants::cuda_graph, "0");
    fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
    fk::PlaceGraph graph(stream.place());
    run_norms(stream.place(), graph, 3, [] {});
    EXPECT_FALSE(graph.recorded());
}

} // namespace
