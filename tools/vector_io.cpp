// Checked readers and writers for .fvecs/.bvecs/.ivecs and .npy files: the
// format is chosen here from the extension; each format has its own file
// (vector_io_vecs.cpp, vector_io_npy.cpp, vector_io_npy_header.cpp).
#include "vector_io.h"

#include "vector_io_file.h"
#include "vector_io_npy.h"
#include "vector_io_vecs.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

namespace flashkmeans {
namespace io {

namespace {

std::string lower(std::string s) {
    for (auto& c : s) {
        c = char(std::tolower((unsigned char)c));
    }
    return s;
}

} // namespace

namespace fs = std::filesystem;

using detail::fail;

Format format_of(const std::string& path) {
    std::string ext = lower(fs::path(path).extension().string());
    if (ext == ".fvecs") {
        return Format::Fvecs;
    }
    if (ext == ".bvecs") {
        return Format::Bvecs;
    }
    if (ext == ".ivecs") {
        return Format::Ivecs;
    }
    if (ext == ".npy") {
        return Format::Npy;
    }
    fail(path, "unknown file type '" + ext + "' (expected .fvecs, .bvecs, .ivecs or .npy)");
}

namespace {

/// read_vectors, or map_vectors with `map`.
FloatMatrix load_vectors(const std::string& path, bool allow_1d, bool map) {
    FloatMatrix m;
    switch (format_of(path)) {
        case Format::Fvecs:
            detail::read_fvecs(path, m);
            break;
        case Format::Bvecs:
            detail::read_bvecs(path, m);
            break;
        case Format::Ivecs:
            detail::read_ivecs(path, m);
            break;
        case Format::Npy:
            detail::read_npy_floats(path, allow_1d, map, m);
            break;
    }
    return m;
}

} // namespace

FloatMatrix read_vectors(const std::string& path, bool allow_1d) {
    return load_vectors(path, allow_1d, false);
}

FloatMatrix map_vectors(const std::string& path, bool allow_1d) {
    return load_vectors(path, allow_1d, true);
}

IntMatrix read_ints(const std::string& path) {
    IntMatrix m;
    switch (format_of(path)) {
        case Format::Ivecs:
            detail::read_ivecs(path, m);
            break;
        case Format::Npy:
            detail::read_npy_ints(path, m);
            break;
        default:
            fail(path, "integers are read from .ivecs or .npy files");
    }
    return m;
}

void write_vectors(const std::string& path, const float* x, int64_t n, int64_t d, bool as_1d) {
    switch (format_of(path)) {
        case Format::Fvecs:
            detail::write_fvecs(path, x, n, d);
            break;
        case Format::Bvecs:
            detail::write_bvecs(path, x, n, d);
            break;
        case Format::Npy:
            if (as_1d && d != 1) {
                fail(path, "a 1-D array needs d = 1");
            }
            write_npy(path, NpyDType::Float32,
                      as_1d ? std::vector<int64_t>{n} : std::vector<int64_t>{n, d}, x);
            break;
        case Format::Ivecs:
            fail(path, "float vectors are written as .npy, .fvecs or .bvecs, not .ivecs");
    }
}

void write_ints(const std::string& path, const int64_t* x, int64_t n, int64_t d, bool as_1d) {
    switch (format_of(path)) {
        case Format::Ivecs:
            detail::write_ivecs(path, x, n, d);
            break;
        case Format::Npy:
            if (as_1d && d != 1) {
                fail(path, "a 1-D array needs d = 1");
            }
            write_npy(path, NpyDType::Int64,
                      as_1d ? std::vector<int64_t>{n} : std::vector<int64_t>{n, d}, x);
            break;
        default:
            fail(path, "integers (labels) are written as .npy or .ivecs");
    }
}

float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float v = std::ldexp(float(mant), -24); // zero or subnormal, exact
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t exp = (x >> 23) & 0xff;
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff) {
        return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
    }
    const int e = int(exp) - 127 + 15;
    if (e >= 31) {
        return uint16_t(sign | 0x7c00);
    }
    if (e <= 0) { // half subnormal (or zero)
        if (e < -10) {
            return uint16_t(sign);
        }
        mant |= 0x800000;
        const int shift = 14 - e;
        uint32_t hm = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) {
            hm++;
        }
        return uint16_t(sign | hm);
    }
    uint32_t h = sign | (uint32_t(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) {
        h++; // a carry into the exponent is the correct rounding (up to inf)
    }
    return uint16_t(h);
}

} // namespace io
} // namespace flashkmeans
