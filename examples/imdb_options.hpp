// The command-line options the IMDb examples share (CLI11), so that each spells them, checks them and
// documents them the same way, and bench/keras_examples/ can mirror them one for one.
#pragma once

#include <limits>
#include <string>

#include <CLI/CLI.hpp>
#include <keras/config.hpp>

namespace examples {

// Filled by the command line; an example sets its own defaults before add_imdb_options.
struct ImdbArgs {
    int epochs = 2;
    std::string data;   // empty: Keras's cache, then a download, then the generated corpus
    int num_words = 20000, maxlen = 200, batch_size = 32;
    int limit = 0;      // 0: every review
    int threads = 0;    // 0: adaptive (keras::config's default)
    int verbose = 2;
    int seed = 42;      // keras::utils::set_random_seed: weights, shuffling, dropout
};

// The options added, for an example that changes how one is shown or combined with its own.
struct ImdbOptions {
    CLI::Option *epochs, *num_words, *maxlen, *batch_size;
};

// --epochs, --data, --num-words, --maxlen, --batch-size, --limit, --threads, --verbose, --seed, with the values
// in `args` as their defaults. min_epochs: 0 where the example can evaluate a loaded model without
// training; min_maxlen: the shortest review the model's layers accept.
inline ImdbOptions add_imdb_options(CLI::App& app, ImdbArgs& args, int min_epochs = 1, int min_maxlen = 1) {
    constexpr int kMax = std::numeric_limits<int>::max();
    const auto positive = CLI::Range(1, kMax);
    ImdbOptions added{};
    added.epochs = app.add_option("--epochs", args.epochs, "training epochs")
                       ->capture_default_str()
                       ->check(CLI::Range(min_epochs, kMax));
    app.add_option("--data", args.data, "imdb.npz, an aclImdb folder or aclImdb_v1.tar.gz")
        ->default_str("Keras's cache, then a download, then the generated corpus");
    added.num_words = app.add_option("--num-words", args.num_words, "vocabulary size")
                          ->capture_default_str()
                          ->check(CLI::Range(100, kMax));
    added.maxlen = app.add_option("--maxlen", args.maxlen, "reviews padded or cut to this many words")
                       ->capture_default_str()
                       ->check(CLI::Range(min_maxlen, kMax));
    added.batch_size = app.add_option("--batch-size", args.batch_size, "batch size")->capture_default_str()->check(positive);
    app.add_option("--limit", args.limit, "keep only the first N training and test reviews")
        ->default_str("all")
        ->check(positive);
    app.add_option("--threads", args.threads, "CPU threads per op (keras::config::set_intra_op_parallelism_threads)")
        ->default_str("adaptive, up to $OMP_NUM_THREADS")
        ->check(positive);
    app.add_option("--verbose", args.verbose, "fit's verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
        ->capture_default_str()
        ->check(CLI::Range(0, 2));
    app.add_option("--seed", args.seed, "random seed (weights, shuffling, dropout)")->capture_default_str();
    return added;
}

// Parses the command line. --help, unknown flags and bad values are CLI11's: it prints them, and this
// returns false with CLI11's exit code (0 for --help) in *exit_code.
inline bool parse_command_line(CLI::App& app, int argc, char** argv, int* exit_code) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        *exit_code = app.exit(e);
        return false;
    }
    return true;
}

// --threads N fixes the thread count (a timing run's); without it the count stays adaptive.
inline void apply_threads(const ImdbArgs& args) {
    if (args.threads > 0) keras::config::set_intra_op_parallelism_threads(args.threads);
}

}  // namespace examples
