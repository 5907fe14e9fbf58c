/**
 * Kernel variants: pinning a code path that the library otherwise picks from
 * the problem's shape and the device. For tests (each variant must give the
 * bits of the default; the tests check that by running both) and benchmarks
 * (A/B timing of a heuristic's choice). Not part of the user API: a user's
 * call leaves every field empty and gets the heuristics.
 *
 * A field is a variant's name; "" (or "auto" / "default") is the heuristic.
 * An unknown name is a KernelError naming the valid ones. The sweep-only
 * tile and reduce configurations (FLASHKMEANS_FA_CONFIG's and
 * FLASHKMEANS_UPDATE_CONFIG's names in bench/sweep.sh) are compiled only
 * with -DFLASHKMEANS_TUNING=ON; a default build knows "default" alone (and
 * the update's "sort8" and "pairs", which tests use).
 *
 * The library reads no environment variables: bench/tuning_env.h fills this
 * struct from them for the benchmark programs.
 */
#pragma once

namespace flashkmeans {
namespace kernels {

struct Variants {
    // FlashAssign, Hopper kernel (flash_assign_sm90)
    const char* sm90 = "";         ///< "0": never the Hopper kernel under AssignKernel::Auto
    const char* sm90_x = "";       ///< "resident" | "streamed": where the points live
    const char* sm90_a = "";       ///< "regs" | "smem": where wgmma reads the points from
    const char* sm90_cluster = ""; ///< "1" | "2": single CTAs or CTA pairs
    const char* sm90_fold = "";    ///< "scan" | "max": the fold of the register kernel
    // FlashAssign, sm_80 tiled kernel
    const char* fa_config = "";    ///< a tile configuration (FLASHKMEANS_TUNING builds)
    const char* fa_resident = "";  ///< "0" | "1": points resident in shared memory
    // Sort-inverse update
    const char* update = "";       ///< "sort8" | "pairs" (| sweep shapes with FLASHKMEANS_TUNING)
    // Launches and the engine
    const char* pdl = "";          ///< "0": plain launches (no programmatic dependent launch)
    const char* cuda_graph = "";   ///< "0": no graph; "require": a failed recording is an error
    /// "allgather" | "reduce_scatter": how data-parallel ranks combine their
    /// partial sums (engine/rank_reduce.h); both give the same bits
    const char* rank_exchange = "";
};

/// The variants a call uses when its arguments name none (AssignArgs and
/// UpdateArgs have a `variants` pointer; launches and the engine read these
/// alone). Set by benchmarks and tests before they run work; not
/// synchronised with calls running on other threads. The strings are not
/// copied: they must outlive their use (literals, environment strings).
const Variants& default_variants();
void set_default_variants(const Variants& v);

/// The variants for a call: `v` when given, else default_variants().
inline const Variants& variants_or_default(const Variants* v) {
    return v != nullptr ? *v : default_variants();
}

} // namespace kernels
} // namespace flashkmeans
