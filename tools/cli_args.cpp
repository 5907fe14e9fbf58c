// The flashkmeans command line: command tables, help text and the parser.
#include "cli_args.h"

#include <cerrno>
#include <cstdlib>
#include <initializer_list>

namespace flashkmeans {
namespace cli {

namespace {

const FlagSpec kHelpFlag = {"--help", "-h", nullptr, "show this help and exit"};
const FlagSpec kQuietFlag = {"--quiet", "-q", nullptr,
                             "no progress lines (the final summary is still printed)"};

const std::vector<FlagSpec> kBackendFlags = {
        {"--backend", nullptr, "auto|cpu|cuda",
         "where k-means runs (default auto: CUDA when a GPU is visible, else CPU);\n"
         "cuda on a machine without a usable GPU is an error"},
        {"--device", nullptr, "ID", "CUDA device ordinal (default 0)"},
        {"--dtype", nullptr, "float32|float16|bfloat16",
         "element type of the points in the assignment kernel (default float32;\n"
         "float16/bfloat16 halve the memory traffic, CUDA backend only)"},
        {"--precision", nullptr, "exact|tf32",
         "float32 products: exact (default, matches a float64 reference) or tf32"},
        {"--memory-budget", nullptr, "BYTES",
         "memory k-means may hold where it runs (suffix K, M, G, T: powers of 1024);\n"
         "points beyond it are streamed in chunks every iteration (default: none on\n"
         "the CPU, the GPU's free memory on CUDA)"},
        {"--cpu-kernel", nullptr, "auto|faiss|fused",
         "CPU assignment kernel: faiss (FAISS's sgemm calls, bitwise FAISS's results),\n"
         "fused (own FMA kernel with the argmin fused: faster, not FAISS's bits; AVX2+FMA)\n"
         "or auto (default: fused with --prune, else faiss)"},
};

const std::vector<FlagSpec> kDatasetFlags = {
        {"--n", nullptr, "N", "built-in dataset: number of points (default 100000)"},
        {"--d", nullptr, "D", "built-in dataset: dimension (default 64)"},
        {"--centers", nullptr, "C", "built-in dataset: number of true centres (default 100)"},
        {"--data-seed", nullptr, "S", "built-in dataset: seed of the generator (default 20240611)"},
};

std::vector<FlagSpec> concat(std::initializer_list<std::vector<FlagSpec>> parts) {
    std::vector<FlagSpec> out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

} // namespace

const Command kTrain = {
        "train",
        "flashkmeans train [INPUT] -k K [options]",
        "Exact Lloyd k-means (FAISS semantics) on INPUT (.fvecs, .bvecs or .npy).\n"
        "With no INPUT it runs on a built-in Gaussian mixture with known centres\n"
        "(100000 points, d=64, 100 centres) and reports how well they were found.\n"
        "Under mpirun (mpirun -np R flashkmeans train INPUT ...) each rank trains on\n"
        "its own rows of INPUT, one R-th each, and rank 0 prints and writes.",
        concat({{
                        {"--k", "-k", "K",
                         "number of centroids (required with INPUT; default for the\n"
                         "built-in dataset: its number of centres)"},
                        {"--niter", nullptr, "N", "Lloyd iterations (default 25)"},
                        {"--nredo", nullptr, "N",
                         "run k-means N times, keep the best objective (default 1)"},
                        {"--seed", nullptr, "S",
                         "seed for subsampling and initialisation (default 1234)"},
                        {"--max-points-per-centroid", nullptr, "N",
                         "train on a random subsample of at most K*N points (default 256)"},
                        {"--min-points-per-centroid", nullptr, "N",
                         "warn below K*N training points (default 39)"},
                        {"--spherical", nullptr, nullptr,
                         "normalise the centroids to unit length after each update"},
                        {"--int-centroids", nullptr, nullptr,
                         "round centroid coordinates to integers"},
                        {"--metric", nullptr, "l2|ip",
                         "l2 (default): nearest centroid; ip: largest inner product"},
                        {"--weights", nullptr, "FILE",
                         "per-point weights (.npy 1-D or n x 1, or .fvecs with d=1)"},
                        {"--init", nullptr, "random|kmeans++",
                         "initial centroids: random distinct points as FAISS (default) or k-means++"},
                        {"--prune", nullptr, nullptr,
                         "exact pruning: skip points whose label provably stays; CPU: with the\n"
                         "fused kernel (its default) the unpruned run's result bit for bit; CUDA:\n"
                         "only centroids that moved are compared, same labels but counted near-ties"},
                        {"--devices", nullptr, "IDS",
                         "several GPUs of this process, e.g. 0,1,2,3: one rank per GPU over NCCL,\n"
                         "the rows split across them in order (CUDA builds with NCCL; not under mpirun)"},
                },
                kBackendFlags,
                {
                        {"--output", "-o", "FILE",
                         "write the K x d centroids (.npy float32 or .fvecs)"},
                        {"--labels", nullptr, "FILE",
                         "write the nearest centroid of every input point (.npy int64 or .ivecs)"},
                        kQuietFlag,
                },
                kDatasetFlags,
                {kHelpFlag}}),
};

const Command kAssign = {
        "assign",
        "flashkmeans assign INPUT --centroids C -o LABELS [options]",
        "Nearest centroid of every point of INPUT (.fvecs, .bvecs or .npy), exact, with\n"
        "the flashkmeans assignment kernel.",
        concat({{
                        {"--centroids", "-c", "FILE", "the K x d centroids (.npy or .fvecs), required"},
                        {"--output", "-o", "FILE", "write the labels (.npy int64 1-D or .ivecs), required"},
                        {"--distances", nullptr, "FILE",
                         "also write each point's squared L2 distance (or, with --metric ip,\n"
                         "inner product) to its centroid (.npy float32 1-D or .fvecs)"},
                        {"--metric", nullptr, "l2|ip", "l2 (default): nearest; ip: largest inner product"},
                },
                kBackendFlags,
                {kQuietFlag, kHelpFlag}}),
};

const Command kIvf = {
        "ivf",
        "flashkmeans ivf INPUT --factory STRING -o INDEX [options]",
        "Builds a FAISS index with faiss::index_factory, trains its IVF coarse quantizer\n"
        "with flashkmeans (then FAISS trains the encoder: PQ, SQ, ...), optionally adds\n"
        "INPUT to it, and writes it with faiss::write_index (read it with faiss.read_index).",
        concat({{
                        {"--factory", "-f", "STRING",
                         "FAISS index_factory string with an IVF level, e.g. \"IVF1024,PQ16\",\n"
                         "\"IVF4096,Flat\", \"PCA64,IVF1024,SQ8\"; required (FAISS trains PQ\n"
                         "codes with slow polysemous training unless the PQ ends in np: PQ16np)"},
                        {"--output", "-o", "FILE", "where the index is written, required"},
                        {"--add", nullptr, nullptr, "add the INPUT vectors to the trained index"},
                        {"--metric", nullptr, "l2|ip", "index metric (default l2)"},
                        {"--niter", nullptr, "N", "k-means iterations (default: the index's own, 10 in FAISS)"},
                        {"--seed", nullptr, "S", "k-means seed (default: the index's own, 1234)"},
                        {"--max-points-per-centroid", nullptr, "N",
                         "subsample to nlist*N training points (default: the index's own, 256)"},
                        {"--init", nullptr, "random|kmeans++", "initial centroids (default random)"},
                },
                kBackendFlags,
                {kQuietFlag, kHelpFlag}}),
};

const Command* const kCommands[3] = {&kTrain, &kAssign, &kIvf};

void print_command_help(const Command& cmd, std::FILE* out) {
    std::fprintf(out, "usage: %s\n\n%s\n\noptions:\n", cmd.synopsis, cmd.description);
    for (const auto& f : cmd.flags) {
        std::string head = "  ";
        if (f.short_name) {
            head += std::string(f.short_name) + ", ";
        }
        head += f.name;
        if (f.metavar) {
            head += std::string(" ") + f.metavar;
        }
        const size_t col = 34;
        std::string help = f.help;
        size_t start = 0;
        bool first = true;
        while (start <= help.size()) {
            size_t end = help.find('\n', start);
            std::string line = help.substr(start, end == std::string::npos ? std::string::npos : end - start);
            if (first) {
                if (head.size() + 2 > col) {
                    std::fprintf(out, "%s\n%*s%s\n", head.c_str(), int(col), "", line.c_str());
                } else {
                    std::fprintf(out, "%-*s%s\n", int(col), head.c_str(), line.c_str());
                }
                first = false;
            } else {
                std::fprintf(out, "%*s%s\n", int(col), "", line.c_str());
            }
            if (end == std::string::npos) {
                break;
            }
            start = end + 1;
        }
    }
}

void print_main_help(std::FILE* out) {
    std::fprintf(
            out,
            "usage: flashkmeans <command> [options]\n"
            "\n"
            "Exact Lloyd k-means, IO-aware (FlashAssign + sort-inverse update), as a FAISS plugin.\n"
            "\n"
            "commands:\n"
            "  train    k-means on a .fvecs/.bvecs/.npy file, or on a built-in dataset when\n"
            "           no file is given (try: flashkmeans train)\n"
            "  assign   nearest centroid of every point\n"
            "  ivf      train (and fill) a FAISS IVF index, e.g. --factory \"IVF1024,PQ16\"\n"
            "\n"
            "  flashkmeans <command> --help   the options of a command\n"
            "  flashkmeans --version          version, FAISS version, CUDA support\n"
            "\n"
            "Files: .fvecs/.bvecs/.ivecs (int32 d, then d float32/uint8/int32 per vector) and\n"
            ".npy (float32, float16, float64, uint8, int32, int64; converted to float32).\n"
            "A C-order little-endian float32 .npy is memory-mapped, not read: the points are\n"
            "used in place. Other .npy files (another dtype, Fortran order) and .fvecs/.bvecs\n"
            "(each row follows its own length) are read and converted in memory.\n"
            "Exit status: 0 ok, 1 error, 2 bad command line, 130 interrupted.\n");
}

Args::Args(const Command& cmd, int argc, char** argv, int first) : cmd_(cmd) {
    bool options_done = false;
    for (int i = first; i < argc; i++) {
        std::string a = argv[i];
        if (options_done || a.size() < 2 || a[0] != '-') {
            positional_.push_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        std::string value;
        bool has_value = false;
        size_t eq = a.find('=');
        if (a.compare(0, 2, "--") == 0 && eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            has_value = true;
        }
        const FlagSpec* spec = find(a);
        if (!spec) {
            throw UsageError("unknown option '" + a + "' for '" + cmd.name + "'", cmd.name);
        }
        if (!spec->metavar) {
            if (has_value) {
                throw UsageError(std::string("option ") + spec->name + " takes no value", cmd.name);
            }
            switches_.insert(spec->name);
            continue;
        }
        if (!has_value) {
            if (i + 1 >= argc) {
                throw UsageError(std::string("option ") + spec->name + " needs a value (" +
                                         spec->metavar + ")",
                                 cmd.name);
            }
            value = argv[++i];
        }
        values_[spec->name] = value;
    }
}

int64_t Args::integer(const char* name, int64_t def, int64_t lo, int64_t hi) const {
    auto it = values_.find(name);
    if (it == values_.end()) {
        return def;
    }
    const std::string& s = it->second;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE) {
        throw UsageError(std::string(name) + " expects an integer, got '" + s + "'", cmd_.name);
    }
    if (v < lo || v > hi) {
        std::string range = hi == std::numeric_limits<int64_t>::max()
                                    ? ">= " + std::to_string(lo)
                                    : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        throw UsageError(std::string(name) + " must be " + range + ", got " + s, cmd_.name);
    }
    return v;
}

const FlagSpec* Args::find(const std::string& a) const {
    for (const auto& f : cmd_.flags) {
        if (a == f.name || (f.short_name && a == f.short_name)) {
            return &f;
        }
    }
    return nullptr;
}

CommandLine parse_command_line(int argc, char** argv) {
    CommandLine out;
    if (argc < 2) {
        return out;
    }
    const std::string first = argv[1];
    if (first == "--help" || first == "-h" || first == "help") {
        if (first == "help" && argc > 2) {
            for (const Command* c : kCommands) {
                if (argv[2] == std::string(c->name)) {
                    out.action = CommandLine::Action::CommandHelp;
                    out.command = c;
                    return out;
                }
            }
            throw UsageError("unknown command '" + std::string(argv[2]) + "'", "");
        }
        out.action = CommandLine::Action::MainHelp;
        return out;
    }
    if (first == "--version" || first == "-V") {
        out.action = CommandLine::Action::Version;
        return out;
    }
    for (const Command* c : kCommands) {
        if (first == c->name) {
            out.command = c;
            out.args.emplace(*c, argc, argv, 2);
            out.action = out.args->flag("--help") ? CommandLine::Action::CommandHelp
                                                  : CommandLine::Action::Run;
            return out;
        }
    }
    if (!first.empty() && first[0] == '-') {
        throw UsageError("unknown option '" + first + "' (a command comes first: train, assign or ivf)", "");
    }
    throw UsageError("unknown command '" + first + "' (expected train, assign or ivf)", "");
}

} // namespace cli
} // namespace flashkmeans
