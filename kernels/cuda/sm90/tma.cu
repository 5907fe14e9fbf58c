// TMA tensor maps: cuTensorMapEncodeTiled, reached through the runtime's
// driver entry point (no link against libcuda), for each element type.
#include "tma.h"

#include "../cuda_check.h"
#include "params.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <type_traits>

namespace flashkmeans {
namespace cuda {
namespace sm90 {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        FK_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000,
                                                       cudaEnableDefault, &q));
        if (q != cudaDriverEntryPointSuccess || f == nullptr) {
            throw KernelError("flashkmeans: the CUDA driver has no cuTensorMapEncodeTiled");
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
    }();
    return fn;
}

} // namespace

template <typename T>
CUtensorMap make_map(const void* base, int64_t rows, int64_t d, int box_rows) {
    CUtensorMapDataType type = std::is_same<T, float>::value
                                       ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                       : (std::is_same<T, __half>::value ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16
                                                                         : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
    CUtensorMap map;
    const cuuint64_t dims[2] = {cuuint64_t(d), cuuint64_t(rows)};
    const cuuint64_t strides[1] = {cuuint64_t(d) * sizeof(T)};
    const cuuint32_t box[2] = {cuuint32_t(kChunkBytes / sizeof(T)), cuuint32_t(box_rows)};
    const cuuint32_t elem_strides[2] = {1, 1};
    const CUresult res = encode_fn()(&map, type, 2, const_cast<void*>(base), dims, strides, box,
                                     elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                     CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (res != CUDA_SUCCESS) {
        throw KernelError("flashkmeans: flash_assign (sm_90a): cuTensorMapEncodeTiled failed with "
                          "error " + std::to_string(int(res)));
    }
    return map;
}

template CUtensorMap make_map<float>(const void*, int64_t, int64_t, int);
template CUtensorMap make_map<__half>(const void*, int64_t, int64_t, int);
template CUtensorMap make_map<__nv_bfloat16>(const void*, int64_t, int64_t, int);

} // namespace sm90
} // namespace cuda
} // namespace flashkmeans
