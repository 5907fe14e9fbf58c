// Picking a kernel variant by name (flashkmeans/variants.h): "" gives the
// first entry (the default, the heuristics); an unknown name is an error
// naming the valid ones, never a silent default.
#pragma once

#include <flashkmeans/kernels.h>
#include <flashkmeans/variants.h>

#include <cstring>
#include <string>

namespace flashkmeans {
namespace cuda {

/// `variants` is an array of structs with a `const char* name` member;
/// `field` names the Variants member, for the error.
template <typename Variant, size_t N>
const Variant& variant_by_name(const char* field, const char* name, const Variant (&variants)[N]) {
    if (name == nullptr || *name == '\0') {
        return variants[0];
    }
    std::string names;
    for (const Variant& v : variants) {
        if (std::strcmp(v.name, name) == 0) {
            return v;
        }
        names += std::string(" ") + v.name;
    }
    throw KernelError(std::string("flashkmeans: variant ") + field + " = \"" + name +
                      "\" is not one of:" + names);
}

} // namespace cuda
} // namespace flashkmeans
