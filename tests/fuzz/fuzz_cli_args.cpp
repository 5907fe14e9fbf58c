/**
 * libFuzzer harness: the flashkmeans command-line parser on arbitrary argv.
 * The input is split on '\0' into the arguments after the program name. Only
 * cli::UsageError is an expected outcome. A parsed command line's values are
 * then read through every accessor, the integer one with the widest range:
 * each command checks its own ranges when it starts (run_train in
 * tools/train.cpp, which needs FAISS), so those are not reached here.
 */
#include "cli_args.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cli = flashkmeans::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> words = {"flashkmeans"};
    std::string cur;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == 0) {
            words.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(char(data[i]));
        }
    }
    if (size > 0) {
        words.push_back(cur);
    }
    std::vector<char*> argv;
    for (auto& w : words) {
        argv.push_back(w.data());
    }
    argv.push_back(nullptr);
    try {
        cli::CommandLine cl = cli::parse_command_line(int(words.size()), argv.data());
        if (!cl.args) {
            return 0;
        }
        for (const auto& f : cl.command->flags) {
            (void)cl.args->has(f.name);
            (void)cl.args->flag(f.name);
            (void)cl.args->str(f.name);
            try {
                (void)cl.args->integer(f.name, 0, std::numeric_limits<int64_t>::min());
            } catch (const cli::UsageError&) {
            }
        }
    } catch (const cli::UsageError&) {
    }
    return 0;
}
