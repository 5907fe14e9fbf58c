/**
 * The readers take a path, so each reader harness writes the fuzzer's bytes
 * to one file (per process, reused for every input) and reads that. Only
 * io::IoError is an expected outcome, and its message must be the one line
 * the program prints: "<path>: <problem>" with no line break. Anything else
 * escapes the harness and libFuzzer reports it (an uncaught exception or a
 * bad message aborts).
 */
#pragma once

#include "vector_io.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

namespace fuzz {

/// A file named `fuzz_<pid><ext>` in $TMPDIR (scripts/fuzz.sh points it at
/// its scratch folder, which it removes even after a crash), else /dev/shm
/// (memory, so fast), else /tmp; removed when the process exits normally.
inline const std::string& input_path(const char* ext) {
    static const std::string path = [ext] {
        const char* env = std::getenv("TMPDIR");
        std::string dir = env && *env ? env : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        return dir + "/fuzz_" + std::to_string(long(getpid())) + ext;
    }();
    static const bool cleanup = [] {
        std::atexit([] { std::remove(path.c_str()); });
        return true;
    }();
    (void)cleanup;
    return path;
}

/// Writes data to the input file and returns its path.
inline const std::string& write_input(const uint8_t* data, size_t size, const char* ext) {
    const std::string& path = input_path(ext);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort(); // the harness's own failure, not a finding in the reader
    }
    return path;
}

/// Runs read(path); an IoError that names the file in one line is the
/// reader's correct answer to a bad file.
template <typename Read>
void expect_clean(const std::string& path, Read&& read) {
    try {
        read(path);
    } catch (const flashkmeans::io::IoError& e) {
        const char* msg = e.what();
        const std::string head = path + ": ";
        if (std::strncmp(msg, head.c_str(), head.size()) != 0 || std::strchr(msg, '\n') ||
            std::strchr(msg, '\r')) {
            std::fprintf(stderr, "IoError message is not one line naming the file: %s\n", msg);
            std::abort();
        }
    }
}

} // namespace fuzz
