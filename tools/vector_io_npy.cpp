// .npy data: conversion from the file's dtype, Fortran order, mapping in
// place, and writing.
#include "vector_io_npy.h"

#include "vector_io_file.h"
#include "vector_io_npy_header.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace flashkmeans {
namespace io {

using detail::fail;
using detail::kBlockBytes;
using detail::MappedFile;
using detail::NpyHeader;
using detail::read_npy_header;
using detail::Reader;
using detail::shape_str;
using detail::Writer;

namespace {

/// Element i of an array stored in Fortran order, where i is a C-order index.
void fortran_to_c(const std::vector<int64_t>& shape, size_t itemsize, const unsigned char* src,
                  unsigned char* dst) {
    const size_t nd = shape.size();
    int64_t count = 1;
    for (auto s : shape) {
        count *= s;
    }
    if (count == 0) {
        return;
    }
    // Fortran strides (in elements): stride[0] = 1, stride[i] = stride[i-1]*shape[i-1]
    std::vector<int64_t> fstride(nd, 1);
    for (size_t i = 1; i < nd; i++) {
        fstride[i] = fstride[i - 1] * shape[i - 1];
    }
    std::vector<int64_t> idx(nd, 0);
    int64_t off = 0; // Fortran offset of idx
    for (int64_t c = 0; c < count; c++) {
        std::memcpy(dst + size_t(c) * itemsize, src + size_t(off) * itemsize, itemsize);
        // increment the C-order index (last dimension fastest)
        for (size_t k = nd; k-- > 0;) {
            if (++idx[k] < shape[k]) {
                off += fstride[k];
                break;
            }
            off -= fstride[k] * (shape[k] - 1);
            idx[k] = 0;
        }
    }
}

template <typename T>
T load(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

/// Converts `count` elements of `dtype` at src into `Out`.
template <typename Out>
void convert(NpyDType dtype, const unsigned char* src, int64_t count, Out* dst) {
    const size_t is = npy_itemsize(dtype);
    for (int64_t i = 0; i < count; i++) {
        const unsigned char* p = src + size_t(i) * is;
        switch (dtype) {
            case NpyDType::Float32:
                dst[i] = Out(load<float>(p));
                break;
            case NpyDType::Float16:
                dst[i] = Out(half_to_float(load<uint16_t>(p)));
                break;
            case NpyDType::Float64:
                dst[i] = Out(load<double>(p));
                break;
            case NpyDType::UInt8:
                dst[i] = Out(*p);
                break;
            case NpyDType::Int32:
                dst[i] = Out(load<int32_t>(p));
                break;
            case NpyDType::Int64:
                dst[i] = Out(load<int64_t>(p));
                break;
        }
    }
}

/** Reads the data after the header as `Out`, converting in blocks for C order
 * (so only the output is held in full) or all at once for Fortran order. */
template <typename Out>
void read_npy_data(Reader& r, const NpyHeader& hdr, std::vector<Out>& out) {
    const size_t is = npy_itemsize(hdr.dtype);
    out.resize(size_t(hdr.count));
    if (hdr.fortran_order && hdr.shape.size() >= 2) {
        std::vector<unsigned char> raw(size_t(hdr.count) * is), c(raw.size());
        r.read(raw.data(), raw.size(), "array data");
        fortran_to_c(hdr.shape, is, raw.data(), c.data());
        convert(hdr.dtype, c.data(), hdr.count, out.data());
        return;
    }
    if constexpr (std::is_same_v<Out, float>) {
        if (hdr.dtype == NpyDType::Float32) {
            r.read(out.data(), size_t(hdr.count) * is, "array data");
            return;
        }
    }
    const int64_t block = int64_t(kBlockBytes / is);
    std::vector<unsigned char> buf(size_t(std::min(block, hdr.count)) * is);
    for (int64_t i = 0; i < hdr.count; i += block) {
        int64_t nb = std::min(block, hdr.count - i);
        r.read(buf.data(), size_t(nb) * is, "array data");
        convert(hdr.dtype, buf.data(), nb, out.data() + i);
    }
}

/// The n x d shape of a .npy array of points (1-D as n x 1 when allowed).
void matrix_shape(const std::string& path, const NpyHeader& hdr, bool allow_1d, int64_t& n,
                  int64_t& d) {
    if (hdr.shape.size() == 2) {
        n = hdr.shape[0];
        d = hdr.shape[1];
    } else if (hdr.shape.size() == 1 && allow_1d) {
        n = hdr.shape[0];
        d = 1;
    } else {
        fail(path, std::string("expected a 2-D array (n x d)") +
                           (allow_1d ? " or a 1-D array" : "") + ", got shape " +
                           shape_str(hdr.shape));
    }
}

void write_npy_file(const std::string& path, NpyDType dtype, const std::vector<int64_t>& shape,
                    bool fortran_order, const void* data, size_t nbytes) {
    std::string dict = std::string("{'descr': '") + npy_descr(dtype) +
                       "', 'fortran_order': " + (fortran_order ? "True" : "False") +
                       ", 'shape': " + shape_str(shape) + ", }";
    // NumPy pads the header with spaces to a multiple of 64 bytes, ending in '\n'
    size_t total = 10 + dict.size() + 1;
    size_t padded = (total + 63) / 64 * 64;
    dict.append(padded - total, ' ');
    dict.push_back('\n');
    if (dict.size() > 65535) {
        fail(path, "shape too long for a .npy header");
    }
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    pre[8] = (unsigned char)(dict.size() & 0xff);
    pre[9] = (unsigned char)(dict.size() >> 8);
    Writer w(path);
    w.write(pre, 10);
    w.write(dict.data(), dict.size());
    w.write(data, nbytes);
    w.commit();
}

} // namespace

namespace detail {

void read_npy_floats(const std::string& path, bool allow_1d, bool map, FloatMatrix& m) {
    Reader r(path);
    // checks that the file holds exactly the data the header describes, so a
    // mapping of it is never touched past its end
    NpyHeader hdr = read_npy_header(r, path);
    matrix_shape(path, hdr, allow_1d, m.n, m.d);
    if (m.n == 0) {
        fail(path, "no vectors: shape " + shape_str(hdr.shape));
    }
    if (m.d == 0) {
        fail(path, "vectors have no components: shape " + shape_str(hdr.shape));
    }
    // The file's bytes are the matrix only for C-order float32 (the header
    // parse refuses big-endian dtypes); other dtypes are converted and
    // Fortran order transposed by read_npy_data. NumPy starts the data at a
    // multiple of 64 bytes (16 in the format's first description) and the
    // mapping starts at a page, so the floats are aligned; a file whose data
    // starts elsewhere is read.
    const bool c_order = !hdr.fortran_order || hdr.shape.size() < 2;
    if (map && hdr.dtype == NpyDType::Float32 && c_order && r.offset() % sizeof(float) == 0) {
        if (std::shared_ptr<const MappedFile> file = r.map()) {
            const auto* x = reinterpret_cast<const float*>(file->bytes() + r.offset());
            m.mapped = std::shared_ptr<const float>(file, x); // aliasing: owns the mapping
            return;
        }
    }
    read_npy_data(r, hdr, m.data);
}

void read_npy_ints(const std::string& path, IntMatrix& m) {
    Reader r(path);
    NpyHeader hdr = read_npy_header(r, path);
    if (hdr.dtype != NpyDType::Int32 && hdr.dtype != NpyDType::Int64 &&
        hdr.dtype != NpyDType::UInt8) {
        fail(path, std::string("expected integers, got dtype '") + npy_descr(hdr.dtype) + "'");
    }
    matrix_shape(path, hdr, true, m.n, m.d);
    read_npy_data(r, hdr, m.data);
}

} // namespace detail

int64_t NpyArray::size() const {
    int64_t c = 1;
    for (auto s : shape) {
        c *= s;
    }
    return c;
}

NpyArray read_npy(const std::string& path) {
    Reader r(path);
    NpyHeader hdr = read_npy_header(r, path);
    NpyArray a;
    a.dtype = hdr.dtype;
    a.shape = hdr.shape;
    a.bytes.resize(size_t(hdr.count) * npy_itemsize(hdr.dtype));
    r.read(a.bytes.data(), a.bytes.size(), "array data");
    if (hdr.fortran_order && hdr.shape.size() >= 2) {
        std::vector<unsigned char> c(a.bytes.size());
        fortran_to_c(hdr.shape, npy_itemsize(hdr.dtype), a.bytes.data(), c.data());
        a.bytes.swap(c);
    }
    return a;
}

void write_npy(const std::string& path, NpyDType dtype, const std::vector<int64_t>& shape,
               const void* data, bool fortran_order) {
    int64_t count = 1;
    for (auto s : shape) {
        if (s < 0) {
            fail(path, "cannot write a negative shape " + shape_str(shape));
        }
        count *= s;
    }
    const size_t is = npy_itemsize(dtype);
    const size_t nbytes = size_t(count) * is;
    if (!fortran_order || shape.size() < 2) {
        write_npy_file(path, dtype, shape, fortran_order, data, nbytes);
        return;
    }
    if (shape.size() != 2) {
        fail(path, "writing Fortran order is supported for 2-D arrays only");
    }
    // column-major: element (i, j) at j * rows + i
    const int64_t rows = shape[0], cols = shape[1];
    std::vector<unsigned char> t(nbytes);
    const auto* src = static_cast<const unsigned char*>(data);
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            std::memcpy(t.data() + size_t(j * rows + i) * is, src + size_t(i * cols + j) * is, is);
        }
    }
    write_npy_file(path, dtype, shape, true, t.data(), nbytes);
}

} // namespace io
} // namespace flashkmeans
