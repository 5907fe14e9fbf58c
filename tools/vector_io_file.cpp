// Checked reads, read-only mappings and temporary-file writes for the vector
// file formats.
#include "vector_io_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace flashkmeans {
namespace io {
namespace detail {

namespace fs = std::filesystem;

void fail(const std::string& path, const std::string& problem) {
    throw IoError(path + ": " + problem);
}

Reader::Reader(const std::string& path) : path_(path) {
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

Reader::~Reader() {
    std::fclose(f_);
}

void Reader::read(void* dst, size_t nbytes, const char* what) {
    if (nbytes == 0) {
        return;
    }
    size_t got = std::fread(dst, 1, nbytes, f_);
    if (got != nbytes) {
        if (std::ferror(f_)) {
            fail(path_, std::string("read error in ") + what + ": " + std::strerror(errno));
        }
        std::ostringstream msg;
        msg << "truncated file: expected " << nbytes << " bytes of " << what << " at offset "
            << offset_ << ", got " << got;
        fail(path_, msg.str());
    }
    offset_ += int64_t(nbytes);
}

std::shared_ptr<const MappedFile> Reader::map() const {
    if (size_ == 0) {
        return nullptr; // mmap refuses a length of 0
    }
    // The file is checked through the descriptor that is mapped: a file cut
    // short since its size was taken would end the program with SIGBUS at
    // the first touch past its end, instead of a message. (A file cut short
    // by another program while a run uses it cannot be checked for.)
    const int fd = ::fileno(f_);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        fail(path_, std::string("cannot get the file size: ") + std::strerror(errno));
    }
    if (int64_t(st.st_size) < size_) {
        std::ostringstream msg;
        msg << "truncated file: " << st.st_size << " bytes, " << size_
            << " when it was opened (changed while being read)";
        fail(path_, msg.str());
    }
    void* p = ::mmap(nullptr, size_t(size_), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        return nullptr; // e.g. a file system without mmap: the caller reads
    }
    return std::shared_ptr<const MappedFile>(
            new MappedFile(static_cast<const unsigned char*>(p), size_t(size_)));
}

MappedFile::~MappedFile() {
    ::munmap(const_cast<unsigned char*>(bytes_), size_);
}

Writer::Writer(const std::string& path) : path_(path) {
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (!ec && fs::exists(st) && fs::is_directory(st)) {
        fail(path, "cannot write: is a directory");
    }
    bool in_place = !ec && fs::exists(st) && !fs::is_regular_file(st);
    tmp_ = in_place ? path : path + ".tmp." + std::to_string(long(::getpid()));
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) {
        fail(path, std::string("cannot create: ") + std::strerror(errno));
    }
}

Writer::~Writer() {
    if (f_) {
        std::fclose(f_);
    }
    if (!committed_ && tmp_ != path_) {
        std::remove(tmp_.c_str());
    }
}

void Writer::write(const void* src, size_t nbytes) {
    if (nbytes && std::fwrite(src, 1, nbytes, f_) != nbytes) {
        fail(path_, std::string("write error: ") + std::strerror(errno));
    }
}

void Writer::commit() {
    bool bad = std::fflush(f_) != 0 || std::ferror(f_);
    int err = errno;
    bad = (std::fclose(f_) != 0) || bad;
    f_ = nullptr;
    if (bad) {
        fail(path_, std::string("write error: ") + std::strerror(err ? err : errno));
    }
    if (tmp_ != path_ && std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        fail(path_,
             std::string("cannot rename the finished file into place: ") + std::strerror(errno));
    }
    committed_ = true;
}

} // namespace detail
} // namespace io
} // namespace flashkmeans
