// Keras's classic imdb_cnn_lstm example, in C++, on the real IMDb reviews:
//   imdb.load_data(num_words=20000) -> pad_sequences(maxlen=100)
//   Embedding(20000, 128) -> Dropout(0.25) -> Conv1D(64, 5, padding="valid", activation="relu", strides=1)
//   -> MaxPooling1D(4) -> LSTM(70) -> Dense(1) -> Activation("sigmoid"),
//   Adam, binary_crossentropy, batch 30, 2 epochs, validated on the test set as Keras's script does
//   (Keras's example reports a test accuracy of about 0.85 after 2 epochs).
//
// The data comes from --data PATH (imdb.npz, an aclImdb folder or aclImdb_v1.tar.gz), else Keras's
// cache ($KERAS_HOME or ~/.keras, datasets/imdb.npz), else a download from Keras's URL; with none
// reachable it trains on kerascpp's generated corpus of the same shape and says so in one line.
// --limit N keeps the first N training and test reviews (a quick run).
//
// Usage: imdb_cnn_lstm [--epochs N] [--data PATH] [--num-words N] [--maxlen N] [--batch-size N]
//                      [--limit N] [--verbose 0|1|2]   (--help lists every option with its default)
#include <algorithm>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <keras/keras.hpp>

namespace {
struct Args {
    int epochs = 2;
    std::string data;   // empty: cache, then download
    int num_words = 20000, maxlen = 100, batch_size = 30;
    int limit = 0;      // 0: every review
    int verbose = 2;
};

// --help, unknown flags and bad values are CLI11's: a message and exit code (0 for --help) in *exit_code.
std::optional<Args> parse(int argc, char** argv, int* exit_code) {
    Args args;
    CLI::App app{"Trains Keras's imdb_cnn_lstm model (Embedding -> Dropout -> Conv1D -> MaxPooling1D -> LSTM ->\n"
                 "Dense) on the real IMDb reviews and prints the test accuracy."};
    const auto positive = CLI::Range(1, std::numeric_limits<int>::max());
    app.add_option("--epochs", args.epochs, "training epochs")->capture_default_str()->check(positive);
    app.add_option("--data", args.data, "imdb.npz, an aclImdb folder or aclImdb_v1.tar.gz")
        ->default_str("Keras's cache, then a download, then the generated corpus");
    app.add_option("--num-words", args.num_words, "vocabulary size")
        ->capture_default_str()
        ->check(CLI::Range(100, std::numeric_limits<int>::max()));
    app.add_option("--maxlen", args.maxlen, "reviews padded or cut to this many words (at least 8: the conv and pool)")
        ->capture_default_str()
        ->check(CLI::Range(8, std::numeric_limits<int>::max()));
    app.add_option("--batch-size", args.batch_size, "batch size")->capture_default_str()->check(positive);
    app.add_option("--limit", args.limit, "keep only the first N training and test reviews")
        ->default_str("all")
        ->check(positive);
    app.add_option("--verbose", args.verbose, "fit's verbosity: 0 silent, 1 progress bar, 2 one line per epoch")
        ->capture_default_str()
        ->check(CLI::Range(0, 2));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        *exit_code = app.exit(e);
        return std::nullopt;
    }
    return args;
}

// The real reviews; with no --data and nothing reachable, the generated corpus (one line says so).
std::pair<keras::datasets::imdb::Split, keras::datasets::imdb::Split> load(const Args& args) {
    using namespace keras::datasets;
    if (!args.data.empty()) return imdb::load_data({.path = args.data, .num_words = args.num_words});
    try {
        return imdb::load_data({.num_words = args.num_words});
    } catch (const keras::RuntimeError& e) {
        std::string why = e.what();
        std::replace(why.begin(), why.end(), '\n', ' ');
        fmt::print("No IMDb data reachable ({}); training on kerascpp's generated corpus instead.\n", why);
    }
    auto [train, test] = synthetic_sentiment::load_data({.num_words = args.num_words});
    return {{std::move(train.x), std::move(train.y)}, {std::move(test.x), std::move(test.y)}};
}

// The first `limit` rows of a split (all of them for 0).
void keep_first(keras::datasets::imdb::Split& split, int limit) {
    if (limit <= 0 || static_cast<size_t>(limit) >= split.x.size()) return;
    split.x.resize(limit);
    split.y = keras::ops::slice(split.y, {0}, {limit});
}

std::shared_ptr<keras::Sequential> build_model(int64_t num_words, int64_t maxlen) {
    using namespace keras;
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({maxlen}));
    model->add(layers::Embedding(num_words, 128));
    model->add(layers::Dropout(0.25f));
    model->add(layers::Conv1D(64, 5, {.strides = 1, .padding = "valid", .activation = "relu"}));
    model->add(layers::MaxPooling1D(4));
    model->add(layers::LSTM(70));
    model->add(layers::Dense(1));
    model->add(layers::Activation("sigmoid"));
    model->compile(optimizers::Adam(), "binary_crossentropy", {"accuracy"});
    return model;
}
}  // namespace

int main(int argc, char** argv) try {
    using namespace keras;
    int exit_code = 0;
    const std::optional<Args> parsed = parse(argc, argv, &exit_code);
    if (!parsed) return exit_code;
    const Args& args = *parsed;

    utils::set_random_seed(42);
    auto [train, test] = load(args);
    keep_first(train, args.limit);
    keep_first(test, args.limit);
    const Tensor x_train = utils::pad_sequences(train.x, {.maxlen = args.maxlen});
    const Tensor x_test = utils::pad_sequences(test.x, {.maxlen = args.maxlen});
    fmt::print("{} train sequences, {} test sequences, padded to {}\n", x_train.dim(0), x_test.dim(0), args.maxlen);

    auto model = build_model(args.num_words, args.maxlen);
    model->summary();
    model->fit(x_train, train.y, {.batch_size = args.batch_size, .epochs = args.epochs,
                                  .validation_data = std::make_pair(x_test, test.y), .verbose = args.verbose});
    auto [loss, accuracy] = model->evaluate(x_test, test.y, {.batch_size = args.batch_size, .verbose = 0});
    fmt::print("Test score: {:.4f}, test accuracy: {:.4f}\n", loss, accuracy);
    return 0;
} catch (const std::exception& e) {
    std::cerr << "imdb_cnn_lstm: " << e.what() << "\n";
    return 1;
}
