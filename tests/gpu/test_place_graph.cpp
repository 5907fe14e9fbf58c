// PlaceGraph (faiss_plugin/engine/device_memory.h), the recorder behind the engine's
// one-graph iterations: a recorded graph keeps doing the work on new data,
// and where recording is impossible the runs stay plain and right, or, with
// the variant cuda_graph = "require", the failure is an error.
#include "engine/device_memory.h"

#include <flashkmeans/kernels.h>
#include <flashkmeans/memory.h>

#include <gtest/gtest.h>

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
// key (other buffers, another stream) updates it with its first run and
// launches it right away, giving its own data's norms; another key, or the
// same key after empty_cache(), starts plain again.
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
        EXPECT_TRUE(graph.recorded()) << "the kept graph runs from the first run";
        EXPECT_TRUE(graph.updated());
        run_norms(stream.place(), graph, 2, [] {});
    }
    {
        fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
        fk::PlaceGraph other(stream.place(), "another shape");
        run_norms(stream.place(), other, 1, [] {});
        EXPECT_FALSE(other.recorded());
    }
    fk::empty_cache();
    fk::PlaceStream stream(fk::Place{fk::Backend::CUDA, 0, nullptr});
    fk::PlaceGraph graph(stream.place(), "test norms");
    run_norms(stream.place(), graph, 1, [] {});
    EXPECT_FALSE(graph.recorded()) << "empty_cache() dropped the kept graph";
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
