// The .npy header: dtype descriptions, and the checked parse of the header.
#include "vector_io_npy_header.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

namespace flashkmeans {
namespace io {

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

namespace detail {

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); i++) {
        s += std::to_string(shape[i]);
        s += (shape.size() == 1 || i + 1 < shape.size()) ? "," : "";
        s += (i + 1 < shape.size()) ? " " : "";
    }
    return s + ")";
}

namespace {

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

} // namespace

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
        fail(path, "truncated file: " + std::to_string(r.size()) +
                           " bytes, shorter than the .npy preamble");
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
        hlen = uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) |
               (uint32_t(b[3]) << 24);
    } else {
        fail(path, "unsupported .npy format version " + std::to_string(major) + "." +
                           std::to_string(minor) + " (1.0, 2.0 and 3.0 are read)");
    }
    if (int64_t(hlen) > r.size() - r.offset()) {
        fail(path, "truncated file: the .npy header says " + std::to_string(hlen) +
                           " bytes, the file has " + std::to_string(r.size() - r.offset()) +
                           " left");
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

} // namespace detail
} // namespace io
} // namespace flashkmeans
