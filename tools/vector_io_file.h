/**
 * Checked file access for the vector file formats (vector_io_vecs.cpp,
 * vector_io_npy*.cpp): a Reader whose every read is checked against the file's
 * size and which can map the file it reads, a Writer that writes under a
 * temporary name and renames the finished file over the target, and fail(),
 * which throws IoError naming the file. Internal to tools/; vector_io.h is the
 * interface.
 */
#pragma once

#include "vector_io.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace flashkmeans {
namespace io {
namespace detail {

/// Throws IoError("<path>: <problem>").
[[noreturn]] void fail(const std::string& path, const std::string& problem);

/// Records are streamed in blocks of about this many bytes, so a large file
/// never needs a second full-size buffer.
constexpr size_t kBlockBytes = size_t(16) << 20;

/** A whole file mapped read-only (PROT_READ, MAP_PRIVATE), unmapped when
 * destroyed. Only bytes below size() may be touched; Reader::map() maps a
 * file whose size every read so far was checked against, so a reader that
 * checked a header's claims against Reader::size() stays inside. */
class MappedFile {
   public:
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const unsigned char* bytes() const {
        return bytes_;
    }
    size_t size() const {
        return size_;
    }

   private:
    friend class Reader;
    MappedFile(const unsigned char* bytes, size_t size) : bytes_(bytes), size_(size) {}

    const unsigned char* bytes_;
    size_t size_;
};

/// A file opened for reading whose every read is checked against its size.
class Reader {
   public:
    explicit Reader(const std::string& path);
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    int64_t size() const {
        return size_;
    }
    int64_t offset() const {
        return offset_;
    }

    /// Reads exactly `nbytes`; `what` says what was being read, for the error.
    void read(void* dst, size_t nbytes, const char* what);

    /** The whole file mapped read-only, or null where the system cannot map
     * it (the caller reads it instead). Throws IoError if the open file is no
     * longer size() bytes long, the size every check was made against. */
    std::shared_ptr<const MappedFile> map() const;

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
    explicit Writer(const std::string& path);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    void write(const void* src, size_t nbytes);
    void commit();

   private:
    std::string path_;
    std::string tmp_;
    std::FILE* f_ = nullptr;
    bool committed_ = false;
};

} // namespace detail
} // namespace io
} // namespace flashkmeans
