// kernels::sum_slices, the rank-order combine of data-parallel partial sums:
// every element adds its slices in slice order, whatever the thread split.
#include <flashkmeans/kernels.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using flashkmeans::Backend;
using flashkmeans::Place;
using flashkmeans::kernels::SumType;

Place cpu() {
    Place p;
    p.backend = Backend::CPU;
    return p;
}

TEST(SumSlices, AddsFloatSlicesInSliceOrder) {
    // (1e8 + -1e8) + 1 = 1, but 1e8 + (-1e8 + 1) = 0 in float: only the
    // slice order gives 1
    const int64_t n = 100000; // enough elements for several threads
    std::vector<float> s(3 * n);
    for (int64_t i = 0; i < n; i++) {
        s[i] = 1e8f;
        s[n + i] = -1e8f;
        s[2 * n + i] = 1.f;
    }
    std::vector<float> out(n, -7.f);
    flashkmeans::kernels::sum_slices(cpu(), s.data(), 3, n * sizeof(float), SumType::Float32, n,
                                     out.data());
    for (int64_t i = 0; i < n; i++) {
        ASSERT_EQ(out[i], 1.f) << i;
    }
}

TEST(SumSlices, AddsIntsAndDoublesOfPaddedSlices) {
    // slices of 5 values, 8 apart (the packet's padding is never read)
    std::vector<int32_t> ints(16, 0);
    std::vector<double> dbl(16, 0);
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < 5; i++) {
            ints[r * 8 + i] = (r + 1) * (i + 1);
            dbl[r * 8 + i] = 0.5 * (r + 1) * (i + 1);
        }
        ints[r * 8 + 7] = 1000; // padding
        dbl[r * 8 + 7] = 1000;
    }
    std::vector<int32_t> oi(5);
    std::vector<double> od(5);
    flashkmeans::kernels::sum_slices(cpu(), ints.data(), 2, 8 * sizeof(int32_t), SumType::Int32, 5,
                                     oi.data());
    flashkmeans::kernels::sum_slices(cpu(), dbl.data(), 2, 8 * sizeof(double), SumType::Float64, 5,
                                     od.data());
    for (int i = 0; i < 5; i++) {
        EXPECT_EQ(oi[i], 3 * (i + 1));
        EXPECT_EQ(od[i], 1.5 * (i + 1));
    }
}

TEST(SumSlices, RefusesSlicesTooShortForTheCount) {
    std::vector<float> s(8), out(8);
    EXPECT_THROW(flashkmeans::kernels::sum_slices(cpu(), s.data(), 2, 3 * sizeof(float),
                                                  SumType::Float32, 4, out.data()),
                 flashkmeans::KernelError);
}

} // namespace
