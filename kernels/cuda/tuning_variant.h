// Picking a kernel variant by environment variable, for tuning sweeps on the
// GPU (bench/sweep.sh): unset or empty gives the first entry (the default);
// an unknown name is an error naming the valid ones, never a silent default.
#pragma once

#include <flashkmeans/kernels.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace flashkmeans {
namespace cuda {

/// `variants` is an array of structs with a `const char* name` member.
template <typename Variant, size_t N>
const Variant& variant_from_env(const char* env_var, const Variant (&variants)[N]) {
    const char* e = std::getenv(env_var);
    if (e == nullptr || *e == '\0') {
        return variants[0];
    }
    std::string names;
    for (const Variant& v : variants) {
        if (std::strcmp(v.name, e) == 0) {
            return v;
        }
        names += std::string(" ") + v.name;
    }
    throw KernelError(std::string("flashkmeans: ") + env_var + "=" + e + " is not one of:" + names);
}

} // namespace cuda
} // namespace flashkmeans
