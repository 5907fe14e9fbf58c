// The process-wide default variants (flashkmeans/variants.h).
#include <flashkmeans/variants.h>

namespace flashkmeans {
namespace kernels {

namespace {
Variants g_default;
}

const Variants& default_variants() { return g_default; }

void set_default_variants(const Variants& v) { g_default = v; }

} // namespace kernels
} // namespace flashkmeans
