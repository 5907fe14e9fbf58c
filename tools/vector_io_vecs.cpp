// .fvecs, .bvecs and .ivecs: records of {int32 d, d values}, streamed in blocks.
#include "vector_io_vecs.h"

#include "vector_io_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>
#include <vector>

namespace flashkmeans {
namespace io {
namespace detail {

namespace {

/// Upper bound on d in a vecs header: anything larger is a corrupt or foreign
/// file (the 4 bytes of ".npy" magic read as an int are about 1.3e9).
constexpr int64_t kMaxVecsDim = int64_t(1) << 24;

/** Reads a vecs file of records {int32 d, d x Elem}, checking the size and
 * every record's d: calls on_shape(n, d) once, then on_record(i, values) for
 * each record (values point into a byte buffer: unaligned). */
template <typename Elem, typename OnShape, typename OnRecord>
void read_vecs(const std::string& path, const char* ext, OnShape&& on_shape, OnRecord&& on_record) {
    Reader r(path);
    if (r.size() == 0) {
        fail(path, "empty file");
    }
    if (r.size() < 4) {
        fail(path, "truncated file: " + std::to_string(r.size()) +
                           " bytes, shorter than one record header");
    }
    int32_t d0 = 0;
    r.read(&d0, 4, "the first record's dimension");
    if (d0 <= 0 || d0 > kMaxVecsDim) {
        fail(path, std::string("bad header: the first record has d = ") + std::to_string(d0) +
                           " (is this really a " + ext + " file?)");
    }
    const int64_t d = d0;
    const int64_t rec = 4 + d * int64_t(sizeof(Elem));
    if (r.size() % rec != 0) {
        std::ostringstream msg;
        msg << "truncated file: size " << r.size() << " bytes is not a multiple of the record size "
            << rec << " (4 + " << d << " x " << sizeof(Elem) << " bytes for d = " << d << ")";
        fail(path, msg.str());
    }
    const int64_t n = r.size() / rec;
    on_shape(n, d);
    const int64_t block = std::max<int64_t>(1, int64_t(kBlockBytes) / rec);
    std::vector<unsigned char> buf(size_t(std::min(block, n) * rec));
    for (int64_t i = 0; i < n; i += block) {
        const int64_t nb = std::min(block, n - i);
        const size_t bytes = size_t(nb * rec);
        if (i == 0) { // the first header has been read already
            std::memcpy(buf.data(), &d0, 4);
            r.read(buf.data() + 4, bytes - 4, "vector data");
        } else {
            r.read(buf.data(), bytes, "vector data");
        }
        for (int64_t j = 0; j < nb; j++) {
            const unsigned char* p = buf.data() + j * rec;
            int32_t dj;
            std::memcpy(&dj, p, 4);
            if (dj != d0) {
                std::ostringstream msg;
                msg << "record " << (i + j) << " has d = " << dj
                    << ", but the first record has d = " << d0 << " (corrupt or truncated file)";
                fail(path, msg.str());
            }
            on_record(i + j, p + 4);
        }
    }
}

template <typename Elem, typename Out>
void read_vecs_into(const std::string& path, const char* ext, int64_t& n_out, int64_t& d_out,
                    std::vector<Out>& out) {
    read_vecs<Elem>(
            path, ext,
            [&](int64_t n, int64_t d) {
                n_out = n;
                d_out = d;
                out.resize(size_t(n * d));
            },
            [&](int64_t i, const unsigned char* src) {
                Out* dst = out.data() + i * d_out;
                if constexpr (std::is_same_v<Elem, Out>) {
                    std::memcpy(dst, src, size_t(d_out) * sizeof(Elem));
                } else {
                    for (int64_t t = 0; t < d_out; t++) {
                        Elem v;
                        std::memcpy(&v, src + t * int64_t(sizeof(Elem)), sizeof(Elem));
                        dst[t] = Out(v);
                    }
                }
            });
}

template <typename Elem, typename In, typename Check>
void write_vecs(const std::string& path, const In* x, int64_t n, int64_t d, Check&& check) {
    if (n < 0 || d <= 0 || d > kMaxVecsDim) {
        fail(path, "cannot write " + std::to_string(n) + " x " + std::to_string(d) + " vectors");
    }
    Writer w(path);
    const int64_t rec = 4 + d * int64_t(sizeof(Elem));
    const int64_t block = std::max<int64_t>(1, int64_t(kBlockBytes) / rec);
    std::vector<unsigned char> buf(size_t(std::max<int64_t>(1, std::min(block, n)) * rec));
    const int32_t d32 = int32_t(d);
    for (int64_t i = 0; i < n; i += block) {
        int64_t nb = std::min(block, n - i);
        for (int64_t j = 0; j < nb; j++) {
            unsigned char* p = buf.data() + j * rec;
            std::memcpy(p, &d32, 4);
            for (int64_t t = 0; t < d; t++) {
                In v = x[(i + j) * d + t];
                check(v, i + j);
                Elem e = Elem(v);
                std::memcpy(p + 4 + t * int64_t(sizeof(Elem)), &e, sizeof(Elem));
            }
        }
        w.write(buf.data(), size_t(nb * rec));
    }
    w.commit();
}

} // namespace

void read_fvecs(const std::string& path, FloatMatrix& m) {
    read_vecs_into<float>(path, ".fvecs", m.n, m.d, m.data);
}

void read_bvecs(const std::string& path, FloatMatrix& m) {
    read_vecs_into<uint8_t>(path, ".bvecs", m.n, m.d, m.data);
}

void read_ivecs(const std::string& path, FloatMatrix& m) {
    read_vecs_into<int32_t>(path, ".ivecs", m.n, m.d, m.data);
}

void read_ivecs(const std::string& path, IntMatrix& m) {
    read_vecs_into<int32_t>(path, ".ivecs", m.n, m.d, m.data);
}

void write_fvecs(const std::string& path, const float* x, int64_t n, int64_t d) {
    write_vecs<float>(path, x, n, d, [](float, int64_t) {});
}

void write_bvecs(const std::string& path, const float* x, int64_t n, int64_t d) {
    write_vecs<uint8_t>(path, x, n, d, [&](float v, int64_t i) {
        if (!(v >= 0.f && v <= 255.f && v == std::floor(v))) {
            std::ostringstream msg;
            msg << "cannot store value " << v << " of vector " << i
                << " in a .bvecs file (integers 0..255 only)";
            fail(path, msg.str());
        }
    });
}

void write_ivecs(const std::string& path, const int64_t* x, int64_t n, int64_t d) {
    write_vecs<int32_t>(path, x, n, d, [&](int64_t v, int64_t i) {
        if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
            fail(path, "value " + std::to_string(v) + " of vector " + std::to_string(i) +
                               " does not fit the int32 of an .ivecs file");
        }
    });
}

} // namespace detail
} // namespace io
} // namespace flashkmeans
