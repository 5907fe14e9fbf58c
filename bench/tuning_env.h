// The kernel variants (flashkmeans/variants.h) from environment variables,
// for the benchmark programs and bench/sweep.sh. The library reads no
// environment: a benchmark calls apply_variants_from_env() first.
//   FLASHKMEANS_FA_CONFIG     fa_config     (sm_80 tile configurations)
//   FLASHKMEANS_FA_RESIDENT   fa_resident
//   FLASHKMEANS_FA_SM90       sm90          (0: not the Hopper kernel)
//   FLASHKMEANS_FA_SM90_X     sm90_x        FLASHKMEANS_FA_SM90_A     sm90_a
//   FLASHKMEANS_FA_SM90_CLUSTER sm90_cluster FLASHKMEANS_FA_SM90_FOLD sm90_fold
//   FLASHKMEANS_UPDATE_CONFIG update        FLASHKMEANS_PDL           pdl
//   FLASHKMEANS_CUDA_GRAPH    cuda_graph
// The sweep's configurations exist only in a -DFLASHKMEANS_TUNING=ON build.
#pragma once

#include <flashkmeans/variants.h>

#include <cstdlib>

namespace fk_bench {

inline flashkmeans::kernels::Variants variants_from_env() {
    flashkmeans::kernels::Variants v;
    const struct {
        const char* env;
        const char* flashkmeans::kernels::Variants::*field;
    } map[] = {
            {"FLASHKMEANS_FA_CONFIG", &flashkmeans::kernels::Variants::fa_config},
            {"FLASHKMEANS_FA_RESIDENT", &flashkmeans::kernels::Variants::fa_resident},
            {"FLASHKMEANS_FA_SM90", &flashkmeans::kernels::Variants::sm90},
            {"FLASHKMEANS_FA_SM90_X", &flashkmeans::kernels::Variants::sm90_x},
            {"FLASHKMEANS_FA_SM90_A", &flashkmeans::kernels::Variants::sm90_a},
            {"FLASHKMEANS_FA_SM90_CLUSTER", &flashkmeans::kernels::Variants::sm90_cluster},
            {"FLASHKMEANS_FA_SM90_FOLD", &flashkmeans::kernels::Variants::sm90_fold},
            {"FLASHKMEANS_UPDATE_CONFIG", &flashkmeans::kernels::Variants::update},
            {"FLASHKMEANS_PDL", &flashkmeans::kernels::Variants::pdl},
            {"FLASHKMEANS_CUDA_GRAPH", &flashkmeans::kernels::Variants::cuda_graph},
    };
    for (const auto& m : map) {
        const char* e = std::getenv(m.env);
        if (e != nullptr) {
            v.*m.field = e;
        }
    }
    return v;
}

inline void apply_variants_from_env() { flashkmeans::kernels::set_default_variants(variants_from_env()); }

} // namespace fk_bench
