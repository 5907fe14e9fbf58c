// libFuzzer harness: every .npy reader entry point on arbitrary bytes, read
// and mapped.
#include "fuzz_input_file.h"

namespace fio = flashkmeans::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = fuzz::write_input(data, size, ".npy");
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_npy(p); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_vectors(p, /*allow_1d=*/false); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_vectors(p, /*allow_1d=*/true); });
    fuzz::expect_clean(path, [](const std::string& p) { fio::read_ints(p); });
    // mapped: every value is read, so a mapping shorter than the header's
    // shape would fault here
    for (bool allow_1d : {false, true}) {
        fuzz::expect_clean(path, [allow_1d](const std::string& p) {
            fio::FloatMatrix m = fio::map_vectors(p, allow_1d);
            volatile float sink = 0;
            for (int64_t i = 0; i < m.n * m.d; i++) {
                sink = m.values()[i];
            }
            (void)sink;
        });
    }
    return 0;
}
