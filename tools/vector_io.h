/**
 * Reading and writing the vector files the flashkmeans program works on:
 * .fvecs, .bvecs, .ivecs (the TEXMEX formats: each record is an int32 d
 * followed by d values) and .npy (NumPy's format, versions 1.0 to 3.0).
 *
 * Every read is checked; a bad file throws IoError whose message starts with
 * the file's path and says what is wrong ("<path>: truncated file: ...").
 * Writes go to a temporary file beside the target that is renamed over it
 * once everything has been written and closed without error, so a failed run
 * never leaves a half-written output under the requested name.
 *
 * The host is assumed little-endian (x86-64, aarch64), like the formats.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashkmeans {
namespace io {

/// A file could not be read or written; what() names the file and the problem.
struct IoError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// File formats, chosen from the file name's extension.
enum class Format { Fvecs, Bvecs, Ivecs, Npy };

/// The format of `path` from its extension (.fvecs .bvecs .ivecs .npy, any
/// case); throws IoError naming the file for any other extension.
Format format_of(const std::string& path);

/// Element types of .npy files we read (Float64 is read too, as NumPy's
/// default float type; it is converted to float32 like the others).
enum class NpyDType { Float32, Float16, Float64, UInt8, Int32, Int64 };

/// '<f4', '<f2', '<f8', '|u1', '<i4', '<i8'
const char* npy_descr(NpyDType dtype);
size_t npy_itemsize(NpyDType dtype);

/// A .npy array as stored: shape, dtype and the raw little-endian elements,
/// always in C (row-major) order (a Fortran-order file is transposed on read).
struct NpyArray {
    NpyDType dtype = NpyDType::Float32;
    std::vector<int64_t> shape;
    std::vector<unsigned char> bytes; ///< product(shape) * itemsize bytes
    int64_t size() const; ///< number of elements
};

/// Reads a .npy file (header versions 1.0, 2.0, 3.0; little-endian dtypes of
/// NpyDType; C or Fortran order; any number of dimensions).
NpyArray read_npy(const std::string& path);

/** Writes `data` (product(shape) elements of `dtype`, C order) as a .npy
 * version 1.0 file. With fortran_order the data is given in C order all the
 * same, and written transposed with fortran_order True (for 2-D arrays; used
 * by the tests to make such files). */
void write_npy(
        const std::string& path,
        NpyDType dtype,
        const std::vector<int64_t>& shape,
        const void* data,
        bool fortran_order = false);

/** n x d float32 points, row-major: read into `data`, or (map_vectors) in
 * place in a read-only mapping of the file, `mapped`, with `data` empty.
 * values() is where they are either way. Copies share the mapping, which is
 * unmapped when the last of them goes. */
struct FloatMatrix {
    int64_t n = 0;
    int64_t d = 0;
    std::vector<float> data; ///< the values, when read into memory
    /// The values in the file's mapping, which this pointer keeps; null when read.
    std::shared_ptr<const float> mapped;
    const float* values() const {
        return mapped ? mapped.get() : data.data();
    }
};

/// n x d integers, row-major.
struct IntMatrix {
    int64_t n = 0;
    int64_t d = 0;
    std::vector<int64_t> data;
};

/** Reads points from .fvecs, .bvecs (uint8, converted to float), .ivecs
 * (int32, converted) or .npy (2-D of any NpyDType, converted to float32; a
 * 1-D array is read as n x 1 when allow_1d). Throws IoError on an empty file,
 * a bad magic or header, a truncated file, records of differing d, an
 * unsupported dtype, or a shape with no points or no dimensions. */
FloatMatrix read_vectors(const std::string& path, bool allow_1d = false);

/** The points of read_vectors, with the same checks and messages, without
 * reading a file that can be used in place: a 2-D (or, with allow_1d, 1-D)
 * little-endian float32 .npy in C order is mapped read-only and the matrix
 * points at its data (`mapped`), so nothing is copied and only the pages a
 * run touches are brought in, as clean page-cache pages the system can drop
 * and read again, never a private copy. The header's shape is checked
 * against the file's size before the data is touched. Every other file is
 * read into memory as read_vectors reads it: .fvecs/.bvecs/.ivecs (each row
 * follows its own 4-byte dimension, and .bvecs/.ivecs hold no float32), a
 * .npy of float16, float64 or integers (converted) or in Fortran order
 * (transposed), one whose data does not start at a multiple of 4 bytes, or a
 * file the system cannot map. Big-endian .npy files are refused, as by
 * read_vectors. */
FloatMatrix map_vectors(const std::string& path, bool allow_1d = false);

/// Reads integers (labels) from .ivecs or an integer .npy (i4, i8, u1); a
/// 1-D .npy gives d = 1.
IntMatrix read_ints(const std::string& path);

/** Writes n x d float32 points as .fvecs, .npy ('<f4'; 1-D when `as_1d`, which
 * needs d == 1) or .bvecs (values must be integers in [0, 255]). */
void write_vectors(
        const std::string& path,
        const float* x,
        int64_t n,
        int64_t d,
        bool as_1d = false);

/** Writes n x d integers as .npy ('<i8'; 1-D when `as_1d`, which needs
 * d == 1) or .ivecs (values must fit in int32). */
void write_ints(
        const std::string& path,
        const int64_t* x,
        int64_t n,
        int64_t d,
        bool as_1d = false);

/// IEEE half (binary16) bits to float, exact (subnormals, inf, NaN kept).
float half_to_float(uint16_t h);
/// float to the nearest IEEE half, ties to even (used to write test files).
uint16_t float_to_half(float f);

} // namespace io
} // namespace flashkmeans
