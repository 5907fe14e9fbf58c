// libFuzzer harness: the .bvecs reader on arbitrary bytes.
#include "fuzz_input_file.h"

namespace fio = flashkmeans::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = fuzz::write_input(data, size, ".bvecs");
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_vectors(p); });
    return 0;
}
