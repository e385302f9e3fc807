// The classic Keras IMDb sentiment program, in C++:
// Embedding(6000, 100) -> SimpleRNN(16) -> Dense(1, sigmoid), Adam(1e-3), 5 epochs.
// Until the IMDb loader lands it trains on kerascpp's generated stand-in corpus of the same shape.
//
// Usage: imdb_sentiment [--model simplernn|lstm|gru] [--epochs N] [--verbose 0|1|2]
#include <cstdlib>
#include <iostream>
#include <string>

#include <fmt/format.h>
#include <keras/keras.hpp>

namespace {
struct Args {
    std::string model = "simplernn";
    int epochs = 5;
    int verbose = 2;
};

Args parse(int argc, char** argv) {
    Args args;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw keras::ValueError(fmt::format("{} needs a value", flag));
            return argv[++i];
        };
        auto integer = [&]() {
            const std::string v = value();
            size_t used = 0;
            int n = 0;
            try {
                n = std::stoi(v, &used);
            } catch (const std::exception&) {
            }
            if (v.empty() || used != v.size())
                throw keras::ValueError(fmt::format("{} needs an integer, got '{}'", flag, v));
            return n;
        };
        if (flag == "--model") args.model = value();
        else if (flag == "--epochs") args.epochs = integer();
        else if (flag == "--verbose") args.verbose = integer();
        else throw keras::ValueError(fmt::format("unknown flag {} (flags: --model simplernn|lstm|gru, --epochs N, "
                                                 "--verbose 0|1|2)", flag));
    }
    if (args.model != "simplernn" && args.model != "lstm" && args.model != "gru")
        throw keras::ValueError(fmt::format("--model must be simplernn, lstm or gru, not '{}'", args.model));
    return args;
}
}  // namespace

int main(int argc, char** argv) try {
    using namespace keras;
    const Args args = parse(argc, argv);
    const int64_t num_words = 6000, maxlen = 130;

    std::cout << "No IMDb loader yet: training on kerascpp's generated sentiment corpus "
                 "(20000 train / 5000 test reviews, 6000 words).\n";
    auto [train, test] = datasets::synthetic_sentiment::load_data({.num_words = num_words});
    const Tensor x_train = utils::pad_sequences(train.x, {.maxlen = maxlen});
    const Tensor x_test = utils::pad_sequences(test.x, {.maxlen = maxlen});

    utils::set_random_seed(42);
    Sequential model;
    model.add(layers::Input({maxlen}));
    model.add(layers::Embedding(num_words, 100));
    if (args.model == "lstm") model.add(layers::LSTM(16));
    else if (args.model == "gru") model.add(layers::GRU(16));
    else model.add(layers::SimpleRNN(16));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile(optimizers::Adam(0.001), "binary_crossentropy", {"accuracy"});
    model.summary();

    model.fit(x_train, train.y,
              {.batch_size = 100, .epochs = args.epochs, .validation_split = 0.2, .shuffle = true, .verbose = args.verbose});
    auto [loss, accuracy] = model.evaluate(x_test, test.y, {.batch_size = 100, .verbose = 0});
    fmt::print("Test loss: {:.4f}, test accuracy: {:.2f}%\n", loss, 100.0 * accuracy);
    return 0;
} catch (const std::exception& e) {
    std::cerr << "imdb_sentiment: " << e.what() << "\n";
    return 1;
}
