// Checked readers and writers for .fvecs/.bvecs/.ivecs and .npy files.
#include "vector_io.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <system_error>
#include <type_traits>

#include <unistd.h>

namespace flashkmeans {
namespace io {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
    throw IoError(path + ": " + problem);
}

std::string lower(std::string s) {
    for (auto& c : s) {
        c = char(std::tolower((unsigned char)c));
    }
    return s;
}

/// Records are streamed in blocks of about this many bytes, so a large file
/// never needs a second full-size buffer.
constexpr size_t kBlockBytes = size_t(16) << 20;

/// A file opened for reading whose every read is checked against its size.
class Reader {
   public:
    explicit Reader(const std::string& path) : path_(path) {
        std::error_code ec;
        auto st = fs::status(path, ec);
        if (ec || !fs::exists(st)) {
            fail(path, "cannot open: no such file");
        }
        if (fs::is_directory(st)) {
            fail(path, "cannot open: is a directory");
        }
        if (!fs::is_regular_file(st)) {
            fail(path, "cannot open: not a regular file");
        }
        size_ = int64_t(fs::file_size(path, ec));
        if (ec) {
            fail(path, "cannot get the file size: " + ec.message());
        }
        f_ = std::fopen(path.c_str(), "rb");
        if (!f_) {
            fail(path, std::string("cannot open: ") + std::strerror(errno));
        }
    }
    ~Reader() {
        std::fclose(f_);
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    int64_t size() const {
        return size_;
    }
    int64_t offset() const {
        return offset_;
    }

    /// Reads exactly `nbytes`; `what` says what was being read, for the error.
    void read(void* dst, size_t nbytes, const char* what) {
        if (nbytes == 0) {
            return;
        }
        size_t got = std::fread(dst, 1, nbytes, f_);
        if (got != nbytes) {
            if (std::ferror(f_)) {
                fail(path_, std::string("read error in ") + what + ": " +
                                    std::strerror(errno));
            }
            std::ostringstream msg;
            msg << "truncated file: expected " << nbytes << " bytes of "
                << what << " at offset " << offset_ << ", got " << got;
            fail(path_, msg.str());
        }
        offset_ += int64_t(nbytes);
    }

   private:
    std::string path_;
    std::FILE* f_ = nullptr;
    int64_t size_ = 0;
    int64_t offset_ = 0;
};

/** A file written under a temporary name beside the target and renamed over
 * it by commit(); destroyed without commit() it removes the temporary file.
 * Targets that are not regular files (/dev/stdout, a pipe) are written in
 * place. */
class Writer {
   public:
    explicit Writer(const std::string& path) : path_(path) {
        std::error_code ec;
        auto st = fs::status(path, ec);
        if (!ec && fs::exists(st) && fs::is_directory(st)) {
            fail(path, "cannot write: is a directory");
        }
        bool in_place = !ec && fs::exists(st) && !fs::is_regular_file(st);
        tmp_ = in_place ? path
                        : path + ".tmp." + std::to_string(long(::getpid()));
        f_ = std::fopen(tmp_.c_str(), "wb");
        if (!f_) {
            fail(path, std::string("cannot create: ") + std::strerror(errno));
        }
    }
    ~Writer() {
        if (f_) {
            std::fclose(f_);
        }
        if (!committed_ && tmp_ != path_) {
            std::remove(tmp_.c_str());
        }
    }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    void write(const void* src, size_t nbytes) {
        if (nbytes && std::fwrite(src, 1, nbytes, f_) != nbytes) {
            fail(path_, std::string("write error: ") + std::strerror(errno));
        }
    }

    void commit() {
        bool bad = std::fflush(f_) != 0 || std::ferror(f_);
        int err = errno;
        bad = (std::fclose(f_) != 0) || bad;
        f_ = nullptr;
        if (bad) {
            fail(path_, std::string("write error: ") + std::strerror(err ? err : errno));
        }
        if (tmp_ != path_ && std::rename(tmp_.c_str(), path_.c_str()) != 0) {
            fail(path_, std::string("cannot rename the finished file into place: ") +
                                std::strerror(errno));
        }
        committed_ = true;
    }

   private:
    std::string path_;
    std::string tmp_;
    std::FILE* f_ = nullptr;
    bool committed_ = false;
};

// ---- TEXMEX formats (.fvecs .bvecs .ivecs) -------------------------------------

/// Upper bound on d in a vecs header: anything larger is a corrupt or foreign
/// file (the 4 bytes of ".npy" magic read as an int are about 1.3e9).
constexpr int64_t kMaxVecsDim = int64_t(1) << 24;

/** Reads a vecs file of records {int32 d, d x Elem}, checking the size and
 * every record's d: calls on_shape(n, d) once, then on_record(i, values) for
 * each record (values point into a byte buffer: unaligned). */
template <typename Elem, typename OnShape, typename OnRecord>
void read_vecs(const std::string& path, const char* ext, OnShape&& on_shape,
               OnRecord&& on_record) {
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

// ---- .npy ------------------------------------------------------------------------

struct NpyHeader {
    NpyDType dtype = NpyDType::Float32;
    bool fortran_order = false;
    std::vector<int64_t> shape;
    int64_t count = 1; ///< product of the shape
};

bool parse_descr(const std::string& s, NpyDType& out) {
    // '|' (not applicable) and '<' are both fine for one-byte types
    static const struct {
        const char* descr;
        NpyDType dtype;
    } table[] = {
            {"<f4", NpyDType::Float32}, {"<f2", NpyDType::Float16}, {"<f8", NpyDType::Float64},
            {"|u1", NpyDType::UInt8},   {"<u1", NpyDType::UInt8},   {"<i4", NpyDType::Int32},
            {"<i8", NpyDType::Int64},
    };
    for (const auto& e : table) {
        if (s == e.descr) {
            out = e.dtype;
            return true;
        }
    }
    return false;
}

/** Header text quoted in a message. A corrupt header can hold line breaks and
 * any other bytes, and the message must stay one printable line (the program
 * prints it as its single error line), so those bytes are written as \xNN and
 * a long text is cut. */
std::string header_text(const std::string& s) {
    constexpr size_t kMaxChars = 40;
    std::string out;
    for (size_t i = 0; i < s.size() && i < kMaxChars; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out += char(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof(hex), "\\x%02x", unsigned(c));
            out += hex;
        }
    }
    return s.size() > kMaxChars ? out + "..." : out;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); i++) {
        s += std::to_string(shape[i]);
        s += (shape.size() == 1 || i + 1 < shape.size()) ? "," : "";
        s += (i + 1 < shape.size()) ? " " : "";
    }
    return s + ")";
}

/// The value text that follows key `name` in the header dict, or npos.
size_t find_key(const std::string& h, const char* name) {
    std::string key = std::string("'") + name + "'";
    size_t p = h.find(key);
    if (p == std::string::npos) {
        return p;
    }
    p = h.find(':', p + key.size());
    if (p == std::string::npos) {
        return p;
    }
    p++;
    while (p < h.size() && std::isspace((unsigned char)h[p])) {
        p++;
    }
    return p;
}

NpyHeader read_npy_header(Reader& r, const std::string& path) {
    if (r.size() == 0) {
        fail(path, "empty file");
    }
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    unsigned char pre[8];
    if (r.size() < 8) {
        // fewer bytes than the magic and version: call it a bad magic unless
        // what is there matches the start of the magic
        std::vector<unsigned char> some(size_t(r.size()));
        r.read(some.data(), some.size(), "the .npy magic");
        if (std::memcmp(some.data(), magic, std::min<size_t>(6, some.size())) != 0) {
            fail(path, "not a .npy file (bad magic: it does not start with \\x93NUMPY)");
        }
        fail(path, "truncated file: " + std::to_string(r.size()) + " bytes, shorter than the .npy preamble");
    }
    r.read(pre, 8, "the .npy magic");
    if (std::memcmp(pre, magic, 6) != 0) {
        fail(path, "not a .npy file (bad magic: it does not start with \\x93NUMPY)");
    }
    const int major = pre[6], minor = pre[7];
    uint32_t hlen = 0;
    if (major == 1) {
        unsigned char b[2];
        r.read(b, 2, "the .npy header length");
        hlen = uint32_t(b[0]) | (uint32_t(b[1]) << 8);
    } else if (major == 2 || major == 3) {
        unsigned char b[4];
        r.read(b, 4, "the .npy header length");
        hlen = uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24);
    } else {
        fail(path, "unsupported .npy format version " + std::to_string(major) + "." +
                           std::to_string(minor) + " (1.0, 2.0 and 3.0 are read)");
    }
    if (int64_t(hlen) > r.size() - r.offset()) {
        fail(path, "truncated file: the .npy header says " + std::to_string(hlen) +
                           " bytes, the file has " + std::to_string(r.size() - r.offset()) + " left");
    }
    std::string h(hlen, '\0');
    r.read(h.data(), hlen, "the .npy header");
    std::replace(h.begin(), h.end(), '"', '\'');

    NpyHeader out;
    // descr
    size_t p = find_key(h, "descr");
    if (p == std::string::npos || p >= h.size()) {
        fail(path, "bad .npy header: no 'descr' key");
    }
    if (h[p] != '\'') {
        fail(path, "unsupported dtype: structured (record) arrays are not read; save a "
                   "plain 2-D float32 array");
    }
    size_t q = h.find('\'', p + 1);
    if (q == std::string::npos) {
        fail(path, "bad .npy header: unterminated 'descr'");
    }
    std::string descr = h.substr(p + 1, q - p - 1);
    if (!parse_descr(descr, out.dtype)) {
        fail(path, "unsupported dtype '" + header_text(descr) +
                           "' (supported: <f4 <f2 <f8 |u1 <i4 <i8, little-endian)");
    }
    // fortran_order
    p = find_key(h, "fortran_order");
    if (p == std::string::npos) {
        fail(path, "bad .npy header: no 'fortran_order' key");
    }
    if (h.compare(p, 4, "True") == 0) {
        out.fortran_order = true;
    } else if (h.compare(p, 5, "False") == 0) {
        out.fortran_order = false;
    } else {
        fail(path, "bad .npy header: 'fortran_order' is neither True nor False");
    }
    // shape
    p = find_key(h, "shape");
    if (p == std::string::npos || p >= h.size() || h[p] != '(') {
        fail(path, "bad .npy header: no 'shape' tuple");
    }
    q = h.find(')', p);
    if (q == std::string::npos) {
        fail(path, "bad .npy header: unterminated 'shape'");
    }
    std::string tuple = h.substr(p + 1, q - p - 1);
    std::stringstream ss(tuple);
    std::string item;
    while (std::getline(ss, item, ',')) {
        size_t a = item.find_first_not_of(" \t");
        if (a == std::string::npos) {
            continue; // trailing comma of (n,)
        }
        size_t b = item.find_last_not_of(" \tL"); // Python 2 wrote 10L
        std::string num = item.substr(a, b - a + 1);
        if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos ||
            num.size() > 18) {
            fail(path, "bad .npy header: shape entry '" + header_text(num) + "' is not a size");
        }
        out.shape.push_back(std::stoll(num));
    }
    const int64_t itemsize = int64_t(npy_itemsize(out.dtype));
    const int64_t avail = r.size() - r.offset();
    out.count = 1;
    for (int64_t s : out.shape) {
        if (s != 0 && out.count > std::numeric_limits<int64_t>::max() / itemsize / s) {
            fail(path, "bad .npy header: shape " + shape_str(out.shape) + " is too large");
        }
        out.count *= s;
    }
    const int64_t need = out.count * itemsize;
    if (need > avail) {
        std::ostringstream msg;
        msg << "truncated file: shape " << shape_str(out.shape) << " of '" << descr << "' needs "
            << need << " bytes of data, the file has " << avail;
        fail(path, msg.str());
    }
    if (need < avail) {
        std::ostringstream msg;
        msg << "corrupt file: " << (avail - need) << " unexpected bytes after the data of shape "
            << shape_str(out.shape) << " of '" << descr << "'";
        fail(path, msg.str());
    }
    return out;
}

/// Element i of an array stored in Fortran order, where i is a C-order index.
void fortran_to_c(const std::vector<int64_t>& shape, size_t itemsize,
                  const unsigned char* src, unsigned char* dst) {
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
        fail(path, std::string("expected a 2-D array (n x d)") + (allow_1d ? " or a 1-D array" : "") +
                           ", got shape " + shape_str(hdr.shape));
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

// ---- public ------------------------------------------------------------------------

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

const char* npy_descr(NpyDType dtype) {
    switch (dtype) {
        case NpyDType::Float32:
            return "<f4";
        case NpyDType::Float16:
            return "<f2";
        case NpyDType::Float64:
            return "<f8";
        case NpyDType::UInt8:
            return "|u1";
        case NpyDType::Int32:
            return "<i4";
        case NpyDType::Int64:
            return "<i8";
    }
    return "?";
}

size_t npy_itemsize(NpyDType dtype) {
    switch (dtype) {
        case NpyDType::Float16:
            return 2;
        case NpyDType::UInt8:
            return 1;
        case NpyDType::Float32:
        case NpyDType::Int32:
            return 4;
        case NpyDType::Float64:
        case NpyDType::Int64:
            return 8;
    }
    return 0;
}

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

FloatMatrix read_vectors(const std::string& path, bool allow_1d) {
    FloatMatrix m;
    switch (format_of(path)) {
        case Format::Fvecs:
            read_vecs_into<float>(path, ".fvecs", m.n, m.d, m.data);
            break;
        case Format::Bvecs:
            read_vecs_into<uint8_t>(path, ".bvecs", m.n, m.d, m.data);
            break;
        case Format::Ivecs:
            read_vecs_into<int32_t>(path, ".ivecs", m.n, m.d, m.data);
            break;
        case Format::Npy: {
            Reader r(path);
            NpyHeader hdr = read_npy_header(r, path);
            matrix_shape(path, hdr, allow_1d, m.n, m.d);
            if (m.n == 0) {
                fail(path, "no vectors: shape " + shape_str(hdr.shape));
            }
            if (m.d == 0) {
                fail(path, "vectors have no components: shape " + shape_str(hdr.shape));
            }
            read_npy_data(r, hdr, m.data);
            break;
        }
    }
    return m;
}

IntMatrix read_ints(const std::string& path) {
    IntMatrix m;
    switch (format_of(path)) {
        case Format::Ivecs:
            read_vecs_into<int32_t>(path, ".ivecs", m.n, m.d, m.data);
            break;
        case Format::Npy: {
            Reader r(path);
            NpyHeader hdr = read_npy_header(r, path);
            if (hdr.dtype != NpyDType::Int32 && hdr.dtype != NpyDType::Int64 &&
                hdr.dtype != NpyDType::UInt8) {
                fail(path, std::string("expected integers, got dtype '") + npy_descr(hdr.dtype) + "'");
            }
            matrix_shape(path, hdr, true, m.n, m.d);
            read_npy_data(r, hdr, m.data);
            break;
        }
        default:
            fail(path, "integers are read from .ivecs or .npy files");
    }
    return m;
}

void write_vectors(const std::string& path, const float* x, int64_t n, int64_t d, bool as_1d) {
    switch (format_of(path)) {
        case Format::Fvecs:
            write_vecs<float>(path, x, n, d, [](float, int64_t) {});
            break;
        case Format::Bvecs:
            write_vecs<uint8_t>(path, x, n, d, [&](float v, int64_t i) {
                if (!(v >= 0.f && v <= 255.f && v == std::floor(v))) {
                    std::ostringstream msg;
                    msg << "cannot store value " << v << " of vector " << i
                        << " in a .bvecs file (integers 0..255 only)";
                    fail(path, msg.str());
                }
            });
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
            write_vecs<int32_t>(path, x, n, d, [&](int64_t v, int64_t i) {
                if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
                    fail(path, "value " + std::to_string(v) + " of vector " + std::to_string(i) +
                                       " does not fit the int32 of an .ivecs file");
                }
            });
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
