/**
 * The TEXMEX formats, .fvecs, .bvecs and .ivecs: each record is an int32 d
 * followed by d float32, uint8 or int32 values. Internal to tools/; reached
 * through vector_io.h's read_vectors, read_ints, write_vectors, write_ints.
 */
#pragma once

#include "vector_io.h"

#include <cstdint>
#include <string>

namespace flashkmeans {
namespace io {
namespace detail {

/// Reads a whole file as float32 points (.bvecs and .ivecs values converted).
void read_fvecs(const std::string& path, FloatMatrix& m);
void read_bvecs(const std::string& path, FloatMatrix& m);
void read_ivecs(const std::string& path, FloatMatrix& m);
/// Reads an .ivecs file as integers.
void read_ivecs(const std::string& path, IntMatrix& m);

void write_fvecs(const std::string& path, const float* x, int64_t n, int64_t d);
/// Values must be integers in [0, 255].
void write_bvecs(const std::string& path, const float* x, int64_t n, int64_t d);
/// Values must fit in int32.
void write_ivecs(const std::string& path, const int64_t* x, int64_t n, int64_t d);

} // namespace detail
} // namespace io
} // namespace flashkmeans
