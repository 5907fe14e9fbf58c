// Parsing and resolution of flashkmeans::Options values.
#include <flashkmeans/Options.h>
#include <flashkmeans/errors.h>

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cctype>

namespace flashkmeans {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

} // namespace

const char* backend_name(Backend backend) {
    switch (backend) {
        case Backend::Auto:
            return "auto";
        case Backend::CPU:
            return "cpu";
        case Backend::CUDA:
            return "cuda";
    }
    return "unknown";
}

Backend parse_backend(const std::string& name) {
    std::string s = lower(name);
    if (s == "auto") return Backend::Auto;
    if (s == "cpu") return Backend::CPU;
    if (s == "cuda" || s == "gpu") return Backend::CUDA;
    FAISS_THROW_FMT("unknown backend '%s' (expected auto, cpu or cuda)", name.c_str());
}

DType parse_dtype(const std::string& name) {
    std::string s = lower(name);
    if (s == "float32" || s == "fp32" || s == "f32") return DType::Float32;
    if (s == "float16" || s == "fp16" || s == "f16" || s == "half") return DType::Float16;
    if (s == "bfloat16" || s == "bf16") return DType::BFloat16;
    FAISS_THROW_FMT("unknown dtype '%s' (expected float32, float16 or bfloat16)", name.c_str());
}

Precision parse_precision(const std::string& name) {
    std::string s = lower(name);
    if (s == "exact") return Precision::Exact;
    if (s == "tf32") return Precision::TF32;
    FAISS_THROW_FMT("unknown precision '%s' (expected exact or tf32)", name.c_str());
}

Init parse_init(const std::string& name) {
    std::string s = lower(name);
    if (s == "random") return Init::Random;
    if (s == "kmeans++" || s == "k-means++" || s == "kmeanspp") return Init::KMeansPP;
    FAISS_THROW_FMT("unknown init '%s' (expected random or kmeans++)", name.c_str());
}

CpuKernel parse_cpu_kernel(const std::string& name) {
    std::string s = lower(name);
    if (s == "auto") return CpuKernel::Auto;
    if (s == "faiss") return CpuKernel::Faiss;
    if (s == "fused") return CpuKernel::Fused;
    FAISS_THROW_FMT("unknown cpu_kernel '%s' (expected auto, faiss or fused)", name.c_str());
}

const char* cpu_kernel_name(CpuKernel kernel) {
    switch (kernel) {
        case CpuKernel::Faiss:
            return "faiss";
        case CpuKernel::Fused:
            return "fused";
        default:
            return "auto";
    }
}

kernels::AssignKernel resolve_cpu_kernel(const Options& options, Backend backend) {
    const CpuKernel k = options.cpu_kernel;
    if (backend == Backend::CUDA) {
        if (k != CpuKernel::Auto) {
            throw InputError(std::string("cpu_kernel='") + cpu_kernel_name(k) +
                             "' chooses the CPU backend's kernel; use backend='cpu' or "
                             "cpu_kernel='auto'");
        }
        return kernels::AssignKernel::Auto;
    }
    const bool fused_here = kernels::cpu_fused_assign_available();
    if (k == CpuKernel::Fused && !fused_here) {
        throw InputError("cpu_kernel='fused' needs an x86-64 CPU with AVX2 and FMA; this one has "
                         "not both: use cpu_kernel='faiss'");
    }
    const bool fused =
            k == CpuKernel::Fused || (k == CpuKernel::Auto && options.prune && fused_here);
    return fused ? kernels::AssignKernel::Fused : kernels::AssignKernel::Auto;
}

Backend resolve_backend(Backend requested) {
    if (requested == Backend::CPU) {
        return Backend::CPU;
    }
    bool have_gpu = cuda_compiled() && cuda_device_count() > 0;
    if (requested == Backend::CUDA) {
        FAISS_THROW_IF_NOT_MSG(cuda_compiled(),
                               "backend cuda requested, but flashkmeans was built without CUDA");
        FAISS_THROW_IF_NOT_MSG(have_gpu, "backend cuda requested, but no CUDA GPU is visible");
        return Backend::CUDA;
    }
    return have_gpu ? Backend::CUDA : Backend::CPU;
}

} // namespace flashkmeans
