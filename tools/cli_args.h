/**
 * The flashkmeans program's command line: its commands and their flags, the
 * help text, and the parser that turns argv into a CommandLine. Nothing here
 * runs k-means, so a fuzzer links this file alone (tests/fuzz).
 *
 * A bad command line throws UsageError; the program reports it as one line
 * with a pointer to --help and exit status 2.
 */
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace flashkmeans {
namespace cli {

/// A bad command line: reported with a pointer to --help, exit status 2.
struct UsageError : std::runtime_error {
    std::string command; ///< the subcommand whose --help to point at ("" = top level)
    UsageError(const std::string& msg, std::string cmd)
            : std::runtime_error(msg), command(std::move(cmd)) {}
};

struct FlagSpec {
    const char* name;       ///< long form, "--niter"
    const char* short_name; ///< "-k", or nullptr
    const char* metavar;    ///< "N" for flags with a value; nullptr for switches
    const char* help;       ///< one or more lines ('\n' separated)
};

struct Command {
    const char* name;
    const char* synopsis;
    const char* description;
    std::vector<FlagSpec> flags;
};

extern const Command kTrain;
extern const Command kAssign;
extern const Command kIvf;
/// Every command, in the order the help lists them.
extern const Command* const kCommands[3];

void print_command_help(const Command& cmd, std::FILE* out);
void print_main_help(std::FILE* out);

/// The parsed command line of one subcommand, keyed by long flag name.
class Args {
   public:
    /// Parses argv[first..argc) against cmd's flags; throws UsageError for an
    /// unknown option, a switch given a value or a missing value.
    Args(const Command& cmd, int argc, char** argv, int first);

    bool has(const char* name) const {
        return switches_.count(name) || values_.count(name);
    }
    bool flag(const char* name) const {
        return switches_.count(name) > 0;
    }
    std::string str(const char* name, const std::string& def = "") const {
        auto it = values_.find(name);
        return it == values_.end() ? def : it->second;
    }
    /// An integer value within [lo, hi], or `def` when the flag is absent;
    /// throws UsageError naming the flag for anything else.
    int64_t integer(const char* name, int64_t def, int64_t lo,
                    int64_t hi = std::numeric_limits<int64_t>::max()) const;
    const std::vector<std::string>& positional() const {
        return positional_;
    }
    const Command& command() const {
        return cmd_;
    }
    UsageError usage(const std::string& msg) const {
        return UsageError(msg, cmd_.name);
    }

   private:
    const FlagSpec* find(const std::string& a) const;

    const Command& cmd_;
    std::map<std::string, std::string> values_;
    std::set<std::string> switches_;
    std::vector<std::string> positional_;
};

/// What a command line asks for; nothing has run yet.
struct CommandLine {
    enum class Action {
        NoArguments, ///< no command at all: the main help on stderr, exit status 2
        MainHelp,    ///< --help, -h or help: the main help on stdout
        CommandHelp, ///< help CMD, or CMD ... --help: `command`'s help on stdout
        Version,     ///< --version or -V
        Run,         ///< run `command` with `args`
    };
    Action action = Action::NoArguments;
    const Command* command = nullptr; ///< set for CommandHelp and Run
    std::optional<Args> args;         ///< set for Run (and for CMD --help)
};

/** Parses argv (argv[0] is the program) into a CommandLine; throws UsageError
 * for an unknown command or option, or a flag without its value. The values
 * themselves (ranges of --niter, --backend names, ...) are checked by each
 * command when it starts, through Args::integer and the Options parsers. */
CommandLine parse_command_line(int argc, char** argv);

} // namespace cli
} // namespace flashkmeans
