/**
 * The .npy header: the dtype descriptions NumPy writes ('<f4', '|u1', ...)
 * and the checked reading of the header dictionary, which says the dtype, the
 * order and the shape, and must agree with the file's size. Internal to tools/.
 */
#pragma once

#include "vector_io.h"
#include "vector_io_file.h"

#include <cstdint>
#include <string>
#include <vector>

namespace flashkmeans {
namespace io {
namespace detail {

struct NpyHeader {
    NpyDType dtype = NpyDType::Float32;
    bool fortran_order = false;
    std::vector<int64_t> shape;
    int64_t count = 1; ///< product of the shape
};

/** Reads the magic, version and header dictionary of a .npy file at the start
 * of `r`, and checks that the data the header describes is exactly what is
 * left of the file; `r` is left at the start of the data. */
NpyHeader read_npy_header(Reader& r, const std::string& path);

/// "(3, 4)", "(5,)", "()": a shape as NumPy writes it.
std::string shape_str(const std::vector<int64_t>& shape);

} // namespace detail
} // namespace io
} // namespace flashkmeans
