// libFuzzer harness: every .npy reader entry point on arbitrary bytes.
#include "fuzz_input_file.h"

namespace fio = flashkmeans::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = fuzz::write_input(data, size, ".npy");
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_npy(p); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_vectors(p, /*allow_1d=*/false); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_vectors(p, /*allow_1d=*/true); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_ints(p); });
    return 0;
}
