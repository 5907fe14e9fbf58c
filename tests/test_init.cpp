// The engine's seeding helpers against FAISS's own.
#include "engine/init.h"

#include <faiss/utils/random.h>

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(RandPermPrefix, EqualsTheFirstEntriesOfFaissRandPerm) {
    struct Case {
        int64_t n, m, seed;
    };
    // both stores of the displaced entries (init.h): hash map and dense array
    for (Case c : {Case{1, 1, 5}, Case{2, 2, 1}, Case{10, 10, 3}, Case{1000, 1, 1235},
                   Case{65536, 1024, 1235}, Case{100003, 100003, 7}, Case{1000000, 262144, 1234},
                   Case{1000000, 1000, 9}}) {
        std::vector<int> full(size_t(c.n));
        faiss::rand_perm(full.data(), size_t(c.n), c.seed);
        const std::vector<int64_t> prefix = flashkmeans::rand_perm_prefix(c.n, c.m, c.seed);
        ASSERT_EQ(int64_t(prefix.size()), c.m);
        for (int64_t i = 0; i < c.m; i++) {
            ASSERT_EQ(prefix[size_t(i)], full[size_t(i)]) << "n=" << c.n << " m=" << c.m << " i=" << i;
        }
    }
}

TEST(RandPermPrefix, EmptyPrefixAndOutOfRangeLength) {
    EXPECT_TRUE(flashkmeans::rand_perm_prefix(5, 0, 1).empty());
    EXPECT_ANY_THROW(flashkmeans::rand_perm_prefix(5, 6, 1));
}

} // namespace
