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
// --limit N keeps the first N training and test reviews (a quick run); --threads N fixes the CPU
// thread count (adaptive by default). The options and the data loading are shared with the other IMDb
// examples (examples/imdb_options.hpp, keras::datasets::imdb::load_data_or_generated).
//
// Usage: imdb_cnn_lstm [--epochs N] [--data PATH] [--num-words N] [--maxlen N] [--batch-size N]
//                      [--limit N] [--threads N] [--verbose 0|1|2]   (--help lists every option with its default)
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <keras/keras.hpp>

#include "../imdb_options.hpp"

namespace {
// --help, unknown flags and bad values: CLI11's message, and its exit code (0 for --help) in *exit_code.
std::optional<examples::ImdbArgs> parse(int argc, char** argv, int* exit_code) {
    examples::ImdbArgs args;   // the defaults of Keras's script
    args.num_words = 20000;
    args.maxlen = 100;
    args.batch_size = 30;
    CLI::App app{"Trains Keras's imdb_cnn_lstm model (Embedding -> Dropout -> Conv1D -> MaxPooling1D -> LSTM ->\n"
                 "Dense) on the real IMDb reviews and prints the test accuracy."};
    auto opts = examples::add_imdb_options(app, args, 1, 8);
    opts.maxlen->description("reviews padded or cut to this many words (at least 8: the conv and pool)");
    if (!examples::parse_command_line(app, argc, argv, exit_code)) return std::nullopt;
    return args;
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
    const std::optional<examples::ImdbArgs> parsed = parse(argc, argv, &exit_code);
    if (!parsed) return exit_code;
    const examples::ImdbArgs& args = *parsed;
    examples::apply_threads(args);

    utils::set_random_seed(args.seed);
    auto [train, test] = datasets::imdb::load_data_or_generated(
        {.path = args.data, .num_words = args.num_words, .limit = args.limit});
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
