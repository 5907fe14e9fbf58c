// Tests of tools/vector_io: every format round-trips random data exactly, and
// every kind of bad file throws an IoError naming the file and the problem.
#include "../tools/vector_io.h"

#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace flashkmeans::io;

namespace {

/// A fresh directory removed at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "fk_vector_io_XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        if (!p) {
            throw std::runtime_error("mkdtemp failed");
        }
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const {
        return (path / name).string();
    }
};

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<unsigned char> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}

/// Runs fn, expects an IoError whose message contains the path and `problem`.
void expect_io_error(const std::function<void()>& fn, const std::string& path,
                     const std::string& problem) {
    try {
        fn();
        ADD_FAILURE() << "no IoError thrown for " << path << " (expected '" << problem << "')";
    } catch (const IoError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
        EXPECT_NE(msg.find(problem), std::string::npos)
                << "message does not say '" << problem << "': " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    }
}

std::vector<int64_t> random_ints(int64_t n, int64_t lo, int64_t hi, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> u(lo, hi);
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (auto& x : v) {
        x = u(rng);
        if (x == 0) {
            x = 1; // never zeros: a reader that returns zeros must not pass
        }
    }
    return v;
}

std::vector<float> random_floats(int64_t n, int64_t d, uint64_t seed) {
    auto x = fk_test::random_matrix(n, d, seed);
    for (auto& v : x) {
        if (v == 0.f) {
            v = 0.5f;
        }
    }
    return x;
}

/// A version 1.0 .npy file with header dict `dict` (written as given, padded
/// as NumPy pads it) followed by `data_bytes` bytes of data: headers no
/// writer would produce.
std::vector<unsigned char> npy_bytes(const std::string& dict, size_t data_bytes) {
    std::string h = dict;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h.push_back('\n');
    std::vector<unsigned char> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    (unsigned char)(h.size() & 0xff), (unsigned char)(h.size() >> 8)};
    b.reserve(b.size() + h.size() + data_bytes);
    b.insert(b.end(), h.begin(), h.end());
    b.resize(b.size() + data_bytes, 1);
    return b;
}

/// A vecs file: a first record header of dimension d, then `rest` bytes.
std::vector<unsigned char> vecs_bytes(int32_t d, size_t rest) {
    std::vector<unsigned char> b(4 + rest, 1);
    std::memcpy(b.data(), &d, 4);
    return b;
}

} // namespace

// ---- round trips -----------------------------------------------------------------

TEST(VectorIo, FvecsRoundTripPreservesEveryFloat) {
    TempDir dir;
    const int64_t n = 37, d = 13;
    auto x = random_floats(n, d, 1);
    write_vectors(dir / "a.fvecs", x.data(), n, d);
    EXPECT_EQ(fs::file_size(dir / "a.fvecs"), uint64_t(n * (4 + 4 * d)));
    FloatMatrix m = read_vectors(dir / "a.fvecs");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, x);
    // rows follow their dimension field, so map_vectors reads them too
    FloatMatrix mapped = map_vectors(dir / "a.fvecs");
    EXPECT_EQ(mapped.mapped, nullptr);
    EXPECT_EQ(mapped.data, x);
}

TEST(VectorIo, BvecsRoundTripPreservesEveryByteAsFloat) {
    TempDir dir;
    const int64_t n = 29, d = 17;
    auto v = random_ints(n * d, 1, 255, 2);
    std::vector<float> x(v.begin(), v.end());
    write_vectors(dir / "a.bvecs", x.data(), n, d);
    EXPECT_EQ(fs::file_size(dir / "a.bvecs"), uint64_t(n * (4 + d)));
    FloatMatrix m = read_vectors(dir / "a.bvecs");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, x);
    FloatMatrix mapped = map_vectors(dir / "a.bvecs"); // converted: read
    EXPECT_EQ(mapped.mapped, nullptr);
    EXPECT_EQ(mapped.data, x);
}

TEST(VectorIo, IvecsRoundTripPreservesInt32Values) {
    TempDir dir;
    const int64_t n = 41, d = 3;
    auto v = random_ints(n * d, -2000000000, 2000000000, 3);
    write_ints(dir / "a.ivecs", v.data(), n, d);
    IntMatrix m = read_ints(dir / "a.ivecs");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, v);
}

TEST(VectorIo, NpyFloat32RoundTripIn2DAnd1D) {
    TempDir dir;
    const int64_t n = 50, d = 7;
    auto x = random_floats(n, d, 4);
    write_vectors(dir / "a.npy", x.data(), n, d);
    FloatMatrix m = read_vectors(dir / "a.npy");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, x);
    // the header is NumPy's: version 1.0, data aligned to 64 bytes
    auto bytes = read_bytes(dir / "a.npy");
    EXPECT_EQ(bytes.size() % 4, 0u);
    EXPECT_EQ((bytes.size() - size_t(n * d * 4)) % 64, 0u);

    write_vectors(dir / "b.npy", x.data(), n * d, 1, /*as_1d=*/true);
    NpyArray a = read_npy(dir / "b.npy");
    EXPECT_EQ(a.shape, std::vector<int64_t>{n * d});
    FloatMatrix b = read_vectors(dir / "b.npy", /*allow_1d=*/true);
    EXPECT_EQ(b.n, n * d);
    EXPECT_EQ(b.d, 1);
    EXPECT_EQ(b.data, x);
}

TEST(VectorIo, NpyFloat16IsReadAsTheSameValuesInFloat32) {
    TempDir dir;
    const int64_t n = 20, d = 9;
    auto x = random_floats(n, d, 5);
    std::vector<uint16_t> h(x.size());
    std::vector<float> expect(x.size());
    for (size_t i = 0; i < x.size(); i++) {
        h[i] = float_to_half(x[i] * 100.f);
        expect[i] = half_to_float(h[i]);
        ASSERT_NEAR(expect[i], x[i] * 100.f, std::fabs(x[i] * 100.f) * 1e-3);
    }
    write_npy(dir / "h.npy", NpyDType::Float16, {n, d}, h.data());
    FloatMatrix m = read_vectors(dir / "h.npy");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, expect);
    FloatMatrix mapped = map_vectors(dir / "h.npy"); // converted: read
    EXPECT_EQ(mapped.mapped, nullptr);
    EXPECT_EQ(mapped.data, expect);
}

TEST(VectorIo, HalfConversionRoundTripsEveryFiniteHalf) {
    for (uint32_t b = 0; b < 0x10000; b++) {
        uint16_t h = uint16_t(b);
        if ((h & 0x7c00) == 0x7c00) {
            continue; // inf / NaN
        }
        ASSERT_EQ(float_to_half(half_to_float(h)), h) << "half bits " << b;
    }
    EXPECT_EQ(half_to_float(0x3c00), 1.0f);
    EXPECT_EQ(half_to_float(0xc000), -2.0f);
    EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
    EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
    EXPECT_TRUE(std::isinf(half_to_float(0x7c00)));
    EXPECT_EQ(float_to_half(1e6f), 0x7c00); // overflow to inf
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00); // tie to even
}

TEST(VectorIo, NpyUInt8Int32Int64AreReadAsFloatAndAsInts) {
    TempDir dir;
    const int64_t n = 15, d = 4;
    auto v8 = random_ints(n * d, 1, 255, 6);
    auto v32 = random_ints(n * d, -1000000, 1000000, 7);
    auto v64 = random_ints(n * d, -1000000, 1000000, 8);
    std::vector<uint8_t> b8(v8.begin(), v8.end());
    std::vector<int32_t> b32(v32.begin(), v32.end());
    write_npy(dir / "u1.npy", NpyDType::UInt8, {n, d}, b8.data());
    write_npy(dir / "i4.npy", NpyDType::Int32, {n, d}, b32.data());
    write_npy(dir / "i8.npy", NpyDType::Int64, {n, d}, v64.data());

    EXPECT_EQ(read_npy(dir / "u1.npy").dtype, NpyDType::UInt8);
    EXPECT_EQ(read_npy(dir / "i4.npy").dtype, NpyDType::Int32);
    EXPECT_EQ(read_npy(dir / "i8.npy").dtype, NpyDType::Int64);

    const std::vector<int64_t>* src[] = {&v8, &v32, &v64};
    const char* names[] = {"u1.npy", "i4.npy", "i8.npy"};
    for (int t = 0; t < 3; t++) {
        FloatMatrix f = read_vectors(dir / names[t]);
        ASSERT_EQ(f.n, n);
        ASSERT_EQ(f.d, d);
        IntMatrix m = read_ints(dir / names[t]);
        EXPECT_EQ(m.data, *src[t]) << names[t];
        FloatMatrix mapped = map_vectors(dir / names[t]); // converted: read
        EXPECT_EQ(mapped.mapped, nullptr) << names[t];
        EXPECT_EQ(mapped.data, f.data) << names[t];
        for (int64_t i = 0; i < n * d; i++) {
            EXPECT_EQ(f.data[size_t(i)], float((*src[t])[size_t(i)])) << names[t];
        }
    }
    // labels as written by the program: 1-D '<i8'
    write_ints(dir / "labels.npy", v64.data(), n * d, 1, /*as_1d=*/true);
    IntMatrix l = read_ints(dir / "labels.npy");
    EXPECT_EQ(l.n, n * d);
    EXPECT_EQ(l.d, 1);
    EXPECT_EQ(l.data, v64);
}

TEST(VectorIo, NpyFortranOrderIsTransposedToRowMajor) {
    TempDir dir;
    const int64_t n = 11, d = 6;
    auto x = random_floats(n, d, 9);
    write_npy(dir / "f.npy", NpyDType::Float32, {n, d}, x.data(), /*fortran_order=*/true);
    // the file really is column-major: its first d values are column 0
    auto bytes = read_bytes(dir / "f.npy");
    const size_t off = bytes.size() - size_t(n * d * 4);
    std::string header(bytes.begin() + 10, bytes.begin() + long(off));
    EXPECT_NE(header.find("'fortran_order': True"), std::string::npos);
    float second;
    std::memcpy(&second, bytes.data() + off + 4, 4);
    EXPECT_EQ(second, x[size_t(d)]); // element (1, 0)

    FloatMatrix m = read_vectors(dir / "f.npy");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, x);
    // map_vectors cannot use it in place: it reads and transposes it too
    FloatMatrix mf = map_vectors(dir / "f.npy");
    EXPECT_EQ(mf.mapped, nullptr);
    EXPECT_EQ(mf.data, x);

    auto v = random_ints(n * d, -100, 100, 10);
    write_npy(dir / "fi.npy", NpyDType::Int64, {n, d}, v.data(), true);
    EXPECT_EQ(read_ints(dir / "fi.npy").data, v);
}

TEST(VectorIo, NpyVersion2HeaderAndDoubleQuotesAreRead) {
    TempDir dir;
    const int64_t n = 3, d = 2;
    auto x = random_floats(n, d, 11);
    std::string dict = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3, 2)}";
    while ((12 + dict.size() + 1) % 64) {
        dict += ' ';
    }
    dict += '\n';
    std::vector<unsigned char> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0};
    uint32_t len = uint32_t(dict.size());
    for (int i = 0; i < 4; i++) {
        bytes.push_back((unsigned char)(len >> (8 * i)));
    }
    bytes.insert(bytes.end(), dict.begin(), dict.end());
    const auto* p = reinterpret_cast<const unsigned char*>(x.data());
    bytes.insert(bytes.end(), p, p + x.size() * 4);
    write_bytes(dir / "v2.npy", bytes);
    FloatMatrix m = read_vectors(dir / "v2.npy");
    EXPECT_EQ(m.n, n);
    EXPECT_EQ(m.d, d);
    EXPECT_EQ(m.data, x);
}

// ---- mapped .npy (map_vectors) ----------------------------------------------------

namespace {

/// The IoError message of fn(), or "" when it throws none.
std::string io_error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const IoError& e) {
        return e.what();
    }
    return "";
}

/// Whether this process has a mapping of `path` (/proc/self/maps).
bool is_mapped(const std::string& path) {
    std::ifstream f("/proc/self/maps");
    std::string line;
    while (std::getline(f, line)) {
        if (line.find(path) != std::string::npos) {
            return true;
        }
    }
    return false;
}

/// Expects m to hold exactly the bytes of `want` (n x d float32), in memory.
void expect_bits(const FloatMatrix& m, int64_t n, int64_t d, const std::vector<float>& want) {
    ASSERT_EQ(m.n, n);
    ASSERT_EQ(m.d, d);
    ASSERT_EQ(want.size(), size_t(n * d));
    EXPECT_EQ(std::memcmp(m.values(), want.data(), want.size() * sizeof(float)), 0);
}

} // namespace

TEST(VectorIo, MappedNpyFloat32EqualsTheReadDataBitwise) {
    TempDir dir;
    const int64_t n = 301, d = 17;
    auto x = random_floats(n, d, 40);
    // values a conversion would change: NaN payloads, -0, subnormals, inf
    const uint32_t special[] = {0x7fc12345u, 0xffa00001u, 0x80000000u, 0x00000001u,
                                0x807fffffu, 0x7f800000u, 0xff800000u};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        std::memcpy(&x[i * 37], &special[i], 4);
    }
    write_vectors(dir / "a.npy", x.data(), n, d);
    FloatMatrix r = read_vectors(dir / "a.npy");
    FloatMatrix m = map_vectors(dir / "a.npy");
    EXPECT_EQ(r.mapped, nullptr);
    ASSERT_NE(m.mapped, nullptr);
    EXPECT_TRUE(m.data.empty()) << "mapped and read";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m.values()) % 64, 0u)
            << "NumPy's data offset is 64-aligned";
    expect_bits(m, n, d, x);
    expect_bits(r, n, d, x);
    // 1-D as n x 1, and a version 2.0 header
    write_vectors(dir / "b.npy", x.data(), n * d, 1, /*as_1d=*/true);
    FloatMatrix b = map_vectors(dir / "b.npy", /*allow_1d=*/true);
    ASSERT_NE(b.mapped, nullptr);
    expect_bits(b, n * d, 1, x);
    auto bytes = read_bytes(dir / "a.npy");
    std::vector<unsigned char> v2 = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 0};
    const size_t hlen = size_t(bytes[8]) | size_t(bytes[9]) << 8;
    std::string dict(bytes.begin() + 10, bytes.begin() + 10 + long(hlen));
    ASSERT_EQ(dict.substr(dict.size() - 3), "  \n");
    dict.erase(dict.size() - 3, 2); // the data still starts at a multiple of 64
    v2[8] = (unsigned char)(dict.size() & 0xff);
    v2[9] = (unsigned char)(dict.size() >> 8);
    v2.insert(v2.end(), dict.begin(), dict.end());
    v2.insert(v2.end(), bytes.begin() + 10 + long(hlen), bytes.end());
    write_bytes(dir / "v2.npy", v2);
    FloatMatrix m2 = map_vectors(dir / "v2.npy");
    ASSERT_NE(m2.mapped, nullptr);
    expect_bits(m2, n, d, x);
}

TEST(VectorIo, MappingLastsUntilTheLastCopyOfTheMatrixGoes) {
    TempDir dir;
    const int64_t n = 64, d = 8;
    auto x = random_floats(n, d, 41);
    const std::string p = dir / "a.npy";
    write_vectors(p, x.data(), n, d);
    ASSERT_FALSE(is_mapped(p));
    {
        FloatMatrix copy;
        {
            FloatMatrix m = map_vectors(p);
            ASSERT_NE(m.mapped, nullptr);
            EXPECT_TRUE(is_mapped(p));
            copy = m;
        }
        fs::remove(p); // the mapping holds the file's data, not its name
        EXPECT_TRUE(is_mapped(p));
        expect_bits(copy, n, d, x);
    }
    EXPECT_FALSE(is_mapped(p)) << "unmapped when the last copy went";
}

TEST(VectorIo, MappedNpyThatIsTruncatedOrLongThrowsTheReadersError) {
    TempDir dir;
    auto x = random_floats(100, 4, 42);
    write_vectors(dir / "a.npy", x.data(), 100, 4);
    auto bytes = read_bytes(dir / "a.npy");
    const std::string p = dir / "t.npy";
    auto expect_same_error = [&](const std::vector<unsigned char>& file,
                                 const std::string& problem) {
        write_bytes(p, file);
        const std::string read = io_error_of([&] { read_vectors(p); });
        EXPECT_NE(read.find(problem), std::string::npos) << read;
        EXPECT_EQ(io_error_of([&] { map_vectors(p); }), read);
    };
    // cut in the data (a byte, a row, all but a byte of it) or in the header:
    // the mapping is never touched past the file's end
    for (size_t keep : {bytes.size() - 1, bytes.size() - 16, bytes.size() - 1599, size_t(30)}) {
        expect_same_error(std::vector<unsigned char>(bytes.begin(), bytes.begin() + long(keep)),
                          "truncated file");
    }
    const std::string huge =
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4), }";
    expect_same_error(npy_bytes(huge, 24), "truncated file");
    bytes.push_back(1);
    expect_same_error(bytes, "unexpected bytes after the data");
    expect_same_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", 0),
                      "no vectors");
}

TEST(VectorIo, NpyThatCannotBeUsedInPlaceIsReadByMapVectors) {
    TempDir dir;
    const int64_t n = 13, d = 5;
    auto x = random_floats(n, d, 43);
    // float64: converted on read, as read_vectors converts it (and float16,
    // integers, Fortran order and .fvecs/.bvecs in their own tests)
    std::vector<double> f8(x.begin(), x.end());
    write_npy(dir / "f8.npy", NpyDType::Float64, {n, d}, f8.data());
    FloatMatrix m8 = map_vectors(dir / "f8.npy");
    EXPECT_EQ(m8.mapped, nullptr);
    expect_bits(m8, n, d, x);
    // data that does not start at a multiple of 4 bytes: read, not misaligned
    std::vector<unsigned char> odd = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (13, 5), }";
    dict.append((4 - (10 + dict.size() + 1) % 4) % 4 + 2, ' ');
    dict.push_back('\n');
    odd.push_back((unsigned char)(dict.size() & 0xff));
    odd.push_back((unsigned char)(dict.size() >> 8));
    odd.insert(odd.end(), dict.begin(), dict.end());
    ASSERT_EQ(odd.size() % 4, 2u);
    const auto* xb = reinterpret_cast<const unsigned char*>(x.data());
    odd.insert(odd.end(), xb, xb + x.size() * 4);
    write_bytes(dir / "odd.npy", odd);
    FloatMatrix o = map_vectors(dir / "odd.npy");
    EXPECT_EQ(o.mapped, nullptr);
    expect_bits(o, n, d, x);
    // big-endian: refused as read_vectors refuses it
    auto be = read_bytes(dir / "f8.npy");
    std::string t(be.begin(), be.end());
    t.replace(t.find("<f8"), 3, ">f4");
    t.resize(t.size() - x.size() * 4); // the data of 13 x 5 '>f4'
    write_bytes(dir / "be.npy", std::vector<unsigned char>(t.begin(), t.end()));
    const std::string err = io_error_of([&] { read_vectors(dir / "be.npy"); });
    EXPECT_NE(err.find("unsupported dtype '>f4'"), std::string::npos) << err;
    EXPECT_EQ(io_error_of([&] { map_vectors(dir / "be.npy"); }), err);
}

TEST(VectorIo, WritingReplacesAnExistingFileAndLeavesNoTemporary) {
    TempDir dir;
    auto x = random_floats(10, 4, 12);
    write_vectors(dir / "a.npy", x.data(), 10, 4);
    write_vectors(dir / "a.npy", x.data(), 5, 4);
    EXPECT_EQ(read_vectors(dir / "a.npy").n, 5);
    int files = 0;
    for (auto& e : fs::directory_iterator(dir.path)) {
        (void)e;
        files++;
    }
    EXPECT_EQ(files, 1);
}

// ---- bad files: each throws, naming the file and the problem -------------------------

TEST(VectorIo, MissingFileThrowsNoSuchFile) {
    TempDir dir;
    for (const char* name : {"nope.fvecs", "nope.bvecs", "nope.ivecs", "nope.npy"}) {
        std::string p = dir / name;
        expect_io_error([&] { read_vectors(p); }, p, "no such file");
    }
}

TEST(VectorIo, DirectoryThrowsIsADirectory) {
    TempDir dir;
    for (const char* name : {"d.fvecs", "d.bvecs", "d.ivecs", "d.npy"}) {
        std::string p = dir / name;
        fs::create_directory(p);
        expect_io_error([&] { read_vectors(p); }, p, "is a directory");
    }
    expect_io_error([&] { read_npy(dir / "d.npy"); }, dir / "d.npy", "is a directory");
    expect_io_error([&] { read_ints(dir / "d.ivecs"); }, dir / "d.ivecs", "is a directory");
}

TEST(VectorIo, EmptyFileThrowsEmptyFile) {
    TempDir dir;
    for (const char* name : {"e.fvecs", "e.bvecs", "e.ivecs", "e.npy"}) {
        std::string p = dir / name;
        write_bytes(p, {});
        expect_io_error([&] { read_vectors(p); }, p, "empty file");
    }
    expect_io_error([&] { read_npy(dir / "e.npy"); }, dir / "e.npy", "empty file");
    expect_io_error([&] { read_ints(dir / "e.ivecs"); }, dir / "e.ivecs", "empty file");
}

TEST(VectorIo, UnknownExtensionThrowsUnknownFileType) {
    TempDir dir;
    std::string p = dir / "x.csv";
    write_bytes(p, {1, 2, 3});
    expect_io_error([&] { read_vectors(p); }, p, "unknown file type");
    auto x = random_floats(2, 2, 1);
    expect_io_error([&] { write_vectors(p, x.data(), 2, 2); }, p, "unknown file type");
}

TEST(VectorIo, NpyWithBadMagicThrowsBadMagic) {
    TempDir dir;
    std::string p = dir / "bad.npy";
    auto x = random_floats(10, 4, 13);
    write_vectors(dir / "good.fvecs", x.data(), 10, 4); // an fvecs renamed .npy
    fs::copy_file(dir / "good.fvecs", p);
    expect_io_error([&] { read_vectors(p); }, p, "bad magic");
    std::string q = dir / "short.npy";
    write_bytes(q, {'a', 'b', 'c'});
    expect_io_error([&] { read_vectors(q); }, q, "bad magic");
}

TEST(VectorIo, FvecsFromAnotherFormatThrowsBadHeader) {
    TempDir dir;
    auto x = random_floats(10, 4, 14);
    write_vectors(dir / "a.npy", x.data(), 10, 4);
    std::string p = dir / "a.fvecs";
    fs::copy_file(dir / "a.npy", p); // an .npy renamed .fvecs
    expect_io_error([&] { read_vectors(p); }, p, "bad header");
}

TEST(VectorIo, FvecsWhoseSizeIsNotAMultipleOfTheRecordThrowsTruncated) {
    TempDir dir;
    auto x = random_floats(10, 4, 15);
    write_vectors(dir / "a.fvecs", x.data(), 10, 4);
    auto bytes = read_bytes(dir / "a.fvecs");
    bytes.resize(bytes.size() - 3);
    std::string p = dir / "t.fvecs";
    write_bytes(p, bytes);
    expect_io_error([&] { read_vectors(p); }, p, "truncated file");
    expect_io_error([&] { read_vectors(p); }, p, "not a multiple of the record size 20");
    bytes.resize(2);
    write_bytes(p, bytes);
    expect_io_error([&] { read_vectors(p); }, p, "truncated file");
}

TEST(VectorIo, VecsRecordWithAnotherDimensionThrowsNamingTheRecord) {
    TempDir dir;
    // 3 records of d = 2 in .fvecs; the third says d = 5 but has the same size
    auto x = random_floats(3, 2, 16);
    write_vectors(dir / "a.fvecs", x.data(), 3, 2);
    auto bytes = read_bytes(dir / "a.fvecs");
    int32_t bad = 5;
    std::memcpy(bytes.data() + 2 * 12, &bad, 4);
    std::string p = dir / "r.fvecs";
    write_bytes(p, bytes);
    expect_io_error([&] { read_vectors(p); }, p, "record 2 has d = 5");
    // same for .bvecs and .ivecs
    std::vector<float> b = {1, 2, 3, 4, 5, 6};
    write_vectors(dir / "a.bvecs", b.data(), 3, 2);
    bytes = read_bytes(dir / "a.bvecs");
    std::memcpy(bytes.data() + 6, &bad, 4);
    std::string q = dir / "r.bvecs";
    write_bytes(q, bytes);
    expect_io_error([&] { read_vectors(q); }, q, "record 1 has d = 5");
    std::vector<int64_t> l = {7, 8, 9};
    write_ints(dir / "a.ivecs", l.data(), 3, 1);
    bytes = read_bytes(dir / "a.ivecs");
    std::memcpy(bytes.data() + 16, &bad, 4);
    std::string s = dir / "r.ivecs";
    write_bytes(s, bytes);
    expect_io_error([&] { read_ints(s); }, s, "record 2 has d = 5");
}

TEST(VectorIo, NpyWithMissingDataThrowsTruncated) {
    TempDir dir;
    auto x = random_floats(10, 4, 17);
    write_vectors(dir / "a.npy", x.data(), 10, 4);
    auto bytes = read_bytes(dir / "a.npy");
    std::string p = dir / "t.npy";
    write_bytes(p, std::vector<unsigned char>(bytes.begin(), bytes.end() - 4));
    expect_io_error([&] { read_vectors(p); }, p, "truncated file");
    expect_io_error([&] { read_npy(p); }, p, "truncated file");
    // cut inside the header
    write_bytes(p, std::vector<unsigned char>(bytes.begin(), bytes.begin() + 30));
    expect_io_error([&] { read_vectors(p); }, p, "truncated file");
    // extra bytes after the data are corruption too
    bytes.push_back(1);
    write_bytes(p, bytes);
    expect_io_error([&] { read_vectors(p); }, p, "unexpected bytes after the data");
}

TEST(VectorIo, NpyWithUnsupportedDtypeThrowsNamingTheDtype) {
    TempDir dir;
    auto x = random_floats(4, 2, 18);
    write_vectors(dir / "a.npy", x.data(), 4, 2);
    auto bytes = read_bytes(dir / "a.npy");
    std::string text(bytes.begin(), bytes.end());
    for (const char* descr : {">f4", "<c8", "<u4"}) {
        std::string t = text;
        size_t pos = t.find("<f4");
        ASSERT_NE(pos, std::string::npos);
        t.replace(pos, 3, descr);
        std::string p = dir / "u.npy";
        write_bytes(p, std::vector<unsigned char>(t.begin(), t.end()));
        expect_io_error([&] { read_vectors(p); }, p, std::string("unsupported dtype '") + descr + "'");
    }
}

TEST(VectorIo, NpyOfWrongRankOrEmptyShapeThrows) {
    TempDir dir;
    auto x = random_floats(24, 1, 19);
    std::string p3 = dir / "three.npy";
    write_npy(p3, NpyDType::Float32, {2, 3, 4}, x.data());
    expect_io_error([&] { read_vectors(p3); }, p3, "expected a 2-D array");
    std::string p1 = dir / "one.npy";
    write_npy(p1, NpyDType::Float32, {24}, x.data());
    expect_io_error([&] { read_vectors(p1); }, p1, "got shape (24,)");
    std::string p0 = dir / "zero.npy";
    write_npy(p0, NpyDType::Float32, {0, 8}, x.data());
    expect_io_error([&] { read_vectors(p0); }, p0, "no vectors");
    std::string pf = dir / "float.npy";
    write_npy(pf, NpyDType::Float32, {24}, x.data());
    expect_io_error([&] { read_ints(pf); }, pf, "expected integers");
}

TEST(VectorIo, NpyHeaderClaiming2Pow40RowsThrowsTruncatedBeforeAllocating) {
    TempDir dir;
    std::string p = dir / "huge.npy";
    // 2^40 x 4 float32 is 16 TiB: an allocation of that size would fail with
    // bad_alloc (or succeed lazily), so a clear error proves the size check
    write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4), }", 24));
    expect_io_error([&] { read_vectors(p); }, p, "needs 17592186044416 bytes of data, the file has 24");
    expect_io_error([&] { read_npy(p); }, p, "truncated file");
    std::string q = dir / "overflow.npy";
    write_bytes(q, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, "
                             "1099511627776, 1099511627776), }",
                             0));
    expect_io_error([&] { read_vectors(q); }, q, "is too large");
    expect_io_error([&] { read_npy(q); }, q, "is too large");
}

TEST(VectorIo, NpyWithNegativeOrZeroDimensionThrows) {
    TempDir dir;
    std::string p = dir / "neg.npy";
    write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24));
    expect_io_error([&] { read_vectors(p); }, p, "shape entry '-3' is not a size");
    write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", 0));
    expect_io_error([&] { read_vectors(p); }, p, "vectors have no components");
}

TEST(VectorIo, VecsWithNegativeZeroOrHugeDimensionThrowsBadHeader) {
    TempDir dir;
    for (const char* name : {"a.fvecs", "a.bvecs", "a.ivecs"}) {
        std::string p = dir / name;
        for (int32_t d : {-3, 0, int32_t(1) << 30}) {
            write_bytes(p, vecs_bytes(d, 12));
            expect_io_error([&] { read_vectors(p); }, p,
                            "bad header: the first record has d = " + std::to_string(d));
        }
    }
    std::string p = dir / "l.ivecs";
    write_bytes(p, vecs_bytes(-1, 4));
    expect_io_error([&] { read_ints(p); }, p, "bad header: the first record has d = -1");
}

TEST(VectorIo, VecsTruncatedInTheMiddleOfARowThrowsTruncated) {
    TempDir dir;
    // two records of d = 3, less the last 2 bytes of the second
    std::string f = dir / "t.fvecs", b = dir / "t.bvecs", i = dir / "t.ivecs";
    write_bytes(f, vecs_bytes(3, 12 + 16 - 2));
    write_bytes(b, vecs_bytes(3, 3 + 7 - 2));
    write_bytes(i, vecs_bytes(3, 12 + 16 - 2));
    expect_io_error([&] { read_vectors(f); }, f, "not a multiple of the record size 16");
    expect_io_error([&] { read_vectors(b); }, b, "not a multiple of the record size 7");
    expect_io_error([&] { read_ints(i); }, i, "not a multiple of the record size 16");
}

TEST(VectorIo, NpyWithBadShapeOrFortranFlagThrowsNamingTheKey) {
    TempDir dir;
    std::string p = dir / "h.npy";
    const struct {
        const char* dict;
        const char* problem;
    } cases[] = {
            {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", "shape entry 'x' is not a size"},
            {"{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", "no 'shape' tuple"},
            {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3 }", "unterminated 'shape'"},
            {"{'descr': '<f4', 'fortran_order': False, }", "no 'shape' tuple"},
            {"{'descr': '<f4', 'fortran_order': 1, 'shape': (2, 3), }", "'fortran_order' is neither True nor False"},
            {"{'descr': '<f4', 'shape': (2, 3), }", "no 'fortran_order' key"},
            {"{'fortran_order': False, 'shape': (2, 3), }", "no 'descr' key"},
    };
    for (const auto& c : cases) {
        write_bytes(p, npy_bytes(c.dict, 24));
        expect_io_error([&] { read_vectors(p); }, p, c.problem);
        expect_io_error([&] { read_npy(p); }, p, c.problem);
    }
}

TEST(VectorIo, NpyHeaderTextInMessagesIsEscapedToOneLine) {
    // found by tests/fuzz (regressions/npy/found_dtype_text_with_line_break.npy):
    // header bytes were quoted raw, so the message could span several lines
    TempDir dir;
    std::string p = dir / "nl.npy";
    write_bytes(p, npy_bytes("{'descr': '<f\n4', 'fortran_order': False, 'shape': (2, 3), }", 24));
    expect_io_error([&] { read_vectors(p); }, p, "unsupported dtype '<f\\x0a4'");
    write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3\r), }", 24));
    expect_io_error([&] { read_npy(p); }, p, "shape entry '3\\x0d' is not a size");
    write_bytes(p, npy_bytes("{'descr': '" + std::string(100, 'f') + "', 'fortran_order': False, 'shape': (2, 3), }", 24));
    expect_io_error([&] { read_npy(p); }, p, "unsupported dtype '" + std::string(40, 'f') + "...'");
}

TEST(VectorIo, UnwritableValuesAndPathsThrow) {
    TempDir dir;
    std::vector<float> x = {1.f, 2.5f, 3.f, 4.f};
    std::string b = dir / "a.bvecs";
    expect_io_error([&] { write_vectors(b, x.data(), 2, 2); }, b, "cannot store value 2.5");
    EXPECT_FALSE(fs::exists(b));
    std::vector<int64_t> big = {int64_t(1) << 40};
    std::string iv = dir / "a.ivecs";
    expect_io_error([&] { write_ints(iv, big.data(), 1, 1); }, iv, "does not fit the int32");
    EXPECT_FALSE(fs::exists(iv));
    std::string missing = (dir.path / "no_such_dir" / "a.npy").string();
    expect_io_error([&] { write_vectors(missing, x.data(), 2, 2); }, missing, "cannot create");
    // nothing but the directory's own content: no temporaries left behind
    int files = 0;
    for (auto& e : fs::directory_iterator(dir.path)) {
        (void)e;
        files++;
    }
    EXPECT_EQ(files, 0);
}
