/**
 * flashkmeans: the command-line program.
 *
 *   flashkmeans train  [INPUT] -k K [...]    k-means on a file, or on the built-in dataset
 *   flashkmeans assign INPUT --centroids C   nearest centroid of every point
 *   flashkmeans ivf    INPUT --factory F     train (and fill) a FAISS IVF index
 *
 * Every failure ends in one line on stderr, "flashkmeans: error: ...", and
 * exit status 2 (bad command line), 1 (anything else) or 130 (Ctrl-C). This
 * file chooses the subcommand (one file each, commands.h) and turns what it
 * throws into that line and status.
 */
#include "cli_args.h"
#include "cli_common.h"
#include "commands.h"
#include "ranks.h"

#include <flashkmeans/Options.h>

#include <faiss/Index.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#ifndef FLASHKMEANS_VERSION
#define FLASHKMEANS_VERSION "unknown"
#endif

namespace fk = flashkmeans;
namespace cli = flashkmeans::cli;

namespace {

using cli::clean_message;
using cli::UsageError;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

// ---- Ctrl-C ----------------------------------------------------------------------

std::atomic<bool> g_interrupted{false};

/** The first Ctrl-C asks FAISS and the engine to stop at their next check
 * (the run then ends with "interrupted"); the handler is reset, so a second
 * Ctrl-C kills the program at once even if nothing checks. */
void on_sigint(int) {
    g_interrupted.store(true);
}

struct SigintCallback : faiss::InterruptCallback {
    bool want_interrupt() override {
        return g_interrupted.load();
    }
};

void install_interrupt_handler() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    faiss::InterruptCallback::instance.reset(new SigintCallback());
}

void print_version() {
    std::printf("flashkmeans %s (FAISS %d.%d.%d", FLASHKMEANS_VERSION, FAISS_VERSION_MAJOR,
                FAISS_VERSION_MINOR, FAISS_VERSION_PATCH);
    if (fk::cuda_compiled()) {
        std::printf(", CUDA kernels built, %d GPU(s) visible)\n", fk::cuda_device_count());
    } else {
        std::printf(", CPU only: built without CUDA)\n");
    }
}

int dispatch(int argc, char** argv) {
    const cli::CommandLine cl = cli::parse_command_line(argc, argv);
    switch (cl.action) {
        case cli::CommandLine::Action::NoArguments:
            cli::print_main_help(stderr);
            return kExitUsage;
        case cli::CommandLine::Action::MainHelp:
            cli::print_main_help(stdout);
            return 0;
        case cli::CommandLine::Action::CommandHelp:
            cli::print_command_help(*cl.command, stdout);
            return 0;
        case cli::CommandLine::Action::Version:
            print_version();
            return 0;
        case cli::CommandLine::Action::Run:
            break;
    }
    if (cl.command == &cli::kTrain) {
        return cli::run_train(*cl.args);
    }
    if (cli::ranks().size > 1) {
        throw cl.args->usage("only train runs on several MPI ranks; run this command in one "
                             "process, without mpirun");
    }
    if (cl.command == &cli::kAssign) {
        return cli::run_assign(*cl.args);
    }
    return cli::run_ivf(*cl.args);
}

void error_line(const std::string& msg) {
    std::fflush(stdout);
    if (cli::ranks().size > 1) {
        std::fprintf(stderr, "flashkmeans: error: rank %d: %s\n", cli::ranks().rank, msg.c_str());
    } else {
        std::fprintf(stderr, "flashkmeans: error: %s\n", msg.c_str());
    }
}

} // namespace

int main(int argc, char** argv) {
    install_interrupt_handler();
    int code = kExitRuntime;
    try {
        // under mpirun: MPI, and this rank's share of the work
        cli::start_ranks(&argc, &argv);
        code = dispatch(argc, argv);
        cli::finish_ranks();
        return code;
    } catch (const UsageError& e) {
        std::string see = e.command.empty() ? "flashkmeans --help" : "flashkmeans " + e.command + " --help";
        error_line(clean_message(e.what()) + " (see '" + see + "')");
        code = kExitUsage;
    } catch (const faiss::FaissException& e) {
        if (g_interrupted.load()) {
            error_line("interrupted");
            code = kExitInterrupted;
        } else {
            error_line(clean_message(e.what()));
        }
    } catch (const std::bad_alloc&) {
        error_line("out of memory (try a smaller input, or a smaller --max-points-per-centroid)");
    } catch (const std::exception& e) {
        error_line(clean_message(e.what()));
    } catch (...) {
        error_line("unknown error");
    }
    // one rank's failure ends every rank (none waits in an exchange)
    return cli::abort_ranks(code);
}
