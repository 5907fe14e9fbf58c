// libFuzzer harness: the .ivecs readers (as points and as labels) on arbitrary bytes.
#include "fuzz_input_file.h"

namespace fio = flashkmeans::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = fuzz::write_input(data, size, ".ivecs");
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_vectors(p); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_ints(p); });
    return 0;
}
