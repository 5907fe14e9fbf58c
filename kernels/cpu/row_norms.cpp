// row_norms (CPU): out[i] = ||x_i||^2 in fp32. A single streaming pass over
// n*d floats (memory bound). It calls FAISS's own fvec_norms_L2sqr so that
// the norms, and hence the L2 distances FlashAssign compares, round exactly as
// IndexFlatL2's do: that is what makes CPU labels identical to FAISS's. Each
// row is summed in a fixed order, whatever the thread count.
#include "cpu_kernels.h"

#include <faiss/utils/distances.h>

namespace flashkmeans {
namespace cpu {

void row_norms(const float* x, int64_t n, int64_t d, float* out) {
    faiss::fvec_norms_L2sqr(out, x, size_t(d), size_t(n));
}

} // namespace cpu
} // namespace flashkmeans
