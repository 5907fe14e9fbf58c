/**
 * .npy files as matrices: the reads behind vector_io.h's read_vectors and
 * read_ints (2-D, or 1-D as n x 1, converted from the file's dtype). read_npy
 * and write_npy, declared in vector_io.h, are in vector_io_npy.cpp too.
 * Internal to tools/.
 */
#pragma once

#include "vector_io.h"

#include <string>

namespace flashkmeans {
namespace io {
namespace detail {

/// n x d float32 points (any NpyDType converted); 1-D as n x 1 when allow_1d.
/// No points or no dimensions is an error. With `map`, C-order float32 data
/// is mapped in place instead of read (see map_vectors).
void read_npy_floats(const std::string& path, bool allow_1d, bool map, FloatMatrix& m);
/// Integers (i4, i8, u1 only); 1-D as n x 1.
void read_npy_ints(const std::string& path, IntMatrix& m);

} // namespace detail
} // namespace io
} // namespace flashkmeans
