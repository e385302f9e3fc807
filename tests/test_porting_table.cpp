// The C++ column of docs/porting_from_keras.md, compiled and run: each line of the table is written
// here as a program would use it (small data, one or two epochs), and the last test case checks that
// every C++ cell of the page's tables appears in this file verbatim, so the page cannot drift from
// code that compiles.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <unistd.h>

#include <keras/keras.hpp>

#include "read_text.hpp"

using namespace keras;
namespace fs = std::filesystem;

using test_helpers::read_text;

namespace {

// Runs a test case inside a fresh folder (the page's lines save to relative paths like "model.h5").
struct InScratchFolder {
    fs::path previous = fs::current_path();
    fs::path folder;
    InScratchFolder() {
        folder = fs::temp_directory_path() / ("kerascpp_porting_" + std::to_string(::getpid()));
        fs::create_directories(folder);
        fs::current_path(folder);
    }
    ~InScratchFolder() {
        fs::current_path(previous);
        fs::remove_all(folder);
    }
};

// n sequences of 20 token ids below 100 and a 0/1 label each: 1 when the sequence holds id 7.
std::pair<Tensor, Tensor> toy_sentiment(int n, uint32_t seed) {
    std::vector<std::vector<int32_t>> rows;
    std::vector<float> labels;
    uint32_t state = seed;
    for (int i = 0; i < n; ++i) {
        std::vector<int32_t> row;
        for (int t = 0; t < 20; ++t) {
            state = state * 1664525u + 1013904223u;
            row.push_back(static_cast<int32_t>(8 + (state >> 8) % 92));
        }
        if (i % 2 == 0) row[(i * 7) % 20] = 7;
        labels.push_back(i % 2 == 0 ? 1.0f : 0.0f);
        rows.push_back(row);
    }
    return {Tensor::from_rows(rows), Tensor(labels, {n})};
}

}  // namespace

TEST_CASE("porting table: data and preprocessing") {
    const std::string imdb_path = std::string(KERASCPP_TESTS_DIR) + "/fixtures/imdb/tiny_p3.npz";
    utils::set_random_seed(42);
    auto [train, test] = datasets::imdb::load_data({.path = imdb_path, .num_words = 6000});
    auto& [x_train, y_train] = train;
    CHECK(x_train.size() == static_cast<size_t>(y_train.dim(0)));
    CHECK(test.x.size() == static_cast<size_t>(test.y.dim(0)));

    std::vector<std::vector<int32_t>> sequences = x_train;
    Tensor x = utils::pad_sequences(sequences, {.maxlen = 130});
    CHECK(x.shape() == Shape{static_cast<int64_t>(sequences.size()), 130});
    Tensor x_post = utils::pad_sequences(sequences, {.maxlen = 130, .padding = "post", .truncating = "post"});
    CHECK(x_post.shape() == x.shape());

    Tensor labels = Tensor(std::vector<int32_t>{0, 2, 1}, {3});
    Tensor y_onehot = utils::to_categorical(labels, 3);
    CHECK(y_onehot.shape() == Shape{3, 3});

    std::vector<std::string> texts = {"The movie was great!", "The movie was bad."};
    preprocessing::text::Tokenizer tokenizer({.num_words = 1000});
    tokenizer.fit_on_texts(texts);
    auto seqs = tokenizer.texts_to_sequences(texts);
    CHECK(seqs.size() == 2);
    CHECK(tokenizer.word_index().at("movie") >= 1);
    Tensor padded = utils::pad_sequences(seqs, {.maxlen = 10});
    CHECK(padded.shape() == Shape{2, 10});
}

TEST_CASE("porting table: a Sequential model, trained, evaluated, saved and loaded") {
    InScratchFolder scratch;
    utils::set_random_seed(42);
    auto [x, y] = toy_sentiment(64, 1);
    auto [x_test, y_test] = toy_sentiment(32, 2);

    Sequential model;
    model.add(layers::Input({20}));
    model.add(layers::Embedding(100, 8, {.mask_zero = true}));
    model.add(layers::Bidirectional(layers::LSTM(8, {.dropout = 0.2f, .return_sequences = true})));
    model.add(layers::GRU(8));
    model.add(layers::Dropout(0.5f));
    model.add(layers::Dense(1, "sigmoid"));
    model.compile("adam", "binary_crossentropy", {"accuracy"});
    model.summary();

    auto history = model.fit(x, y, {.batch_size = 32, .epochs = 2, .validation_split = 0.25, .verbose = 0});
    CHECK(history["val_loss"].size() == 2);
    CHECK(history["accuracy"].size() == 2);

    auto early_stop = std::make_shared<callbacks::EarlyStopping>(callbacks::EarlyStoppingOptions{.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
    auto checkpoint = std::make_shared<callbacks::ModelCheckpoint>("best.h5", callbacks::ModelCheckpointOptions{.save_best_only = true});
    auto csv = std::make_shared<callbacks::CSVLogger>("log.csv");
    auto reduce_lr = std::make_shared<callbacks::ReduceLROnPlateau>(callbacks::ReduceLROnPlateauOptions{.factor = 0.5, .patience = 1});
    model.fit(x, y, {.epochs = 2, .validation_split = 0.2, .verbose = 0, .callbacks = {early_stop, checkpoint, csv, reduce_lr}});
    CHECK(fs::exists("best.h5"));
    CHECK(fs::exists("log.csv"));

    auto [loss, acc] = model.evaluate(x_test, y_test, {.verbose = 0});
    CHECK(std::isfinite(loss));
    CHECK(acc >= 0.0);
    Tensor probs = model.predict(x_test, {.verbose = 0});
    CHECK(probs.shape() == Shape{32, 1});
    auto [x_one, y_one] = toy_sentiment(1, 3);
    Tensor one = model.predict_on_batch(x_one);
    CHECK(one.shape() == Shape{1, 1});

    model.save("model.h5");
    auto loaded = models::load_model("model.h5");
    CHECK(loaded->predict(x_test, {.verbose = 0}).to_vector<float>() == probs.to_vector<float>());

    model.save_weights("w.weights.h5");
    model.load_weights("w.weights.h5");

    auto weights = model.get_weights();
    model.set_weights(weights);
    CHECK(weights.size() == model.weights().size());
    auto embedding_weights = model.layers()[0]->get_weights();
    CHECK(embedding_weights.at(0).shape() == Shape{100, 8});
    model.layers()[0]->trainable = false;
    CHECK(model.trainable_weights().size() == model.weights().size() - 1);
    model.pop();
    CHECK(model.layers().size() == 4);
}

TEST_CASE("porting table: optimizers, losses and schedules") {
    utils::set_random_seed(42);
    auto [x, y] = toy_sentiment(32, 3);
    Sequential model;
    model.add(layers::Input({20}));
    model.add(layers::Embedding(100, 4));
    model.add(layers::SimpleRNN(4));
    model.add(layers::Dense(1));

    model.compile(optimizers::Adam(1e-3), losses::BinaryCrossentropy({.from_logits = true}));
    model.fit(x, y, {.epochs = 1, .verbose = 0});
    model.compile(optimizers::SGD({.learning_rate = 0.01, .momentum = 0.9f}), "mse", {"mae"});
    model.fit(x, y, {.epochs = 1, .verbose = 0});
    model.compile(optimizers::RMSprop({.learning_rate = 1e-3, .clipnorm = 1.0f}), "mse");
    model.fit(x, y, {.epochs = 1, .verbose = 0});

    namespace schedules = optimizers::schedules;
    auto schedule = std::make_shared<schedules::ExponentialDecay>(schedules::ExponentialDecayOptions{.initial_learning_rate = 1e-3, .decay_steps = 1000, .decay_rate = 0.9});
    model.compile(optimizers::Adam(schedule), "mse");
    model.fit(x, y, {.epochs = 1, .verbose = 0});
    CHECK((*schedule)(1000) == doctest::Approx(0.9e-3));
    CHECK(model.optimizer().iterations == 1);
}

TEST_CASE("porting table: the functional API, ops and a custom training step") {
    utils::set_random_seed(42);
    auto inputs = keras::Input({10});
    auto hidden = keras::share(layers::Dense(16, "relu"))->operator()(inputs);
    auto outputs = keras::share(layers::Dense(3, "softmax"))->operator()(hidden);
    keras::Model functional(inputs, outputs);
    functional.compile("adam", "sparse_categorical_crossentropy", "accuracy");

    Tensor x = Tensor::full({8, 10}, 0.5f);
    Tensor y = Tensor(std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
    functional.fit(x, y, {.epochs = 1, .verbose = 0});
    Tensor probs = functional.predict(x, {.verbose = 0});

    Tensor a = Tensor::full({2, 3}, 1.0f), b = Tensor::full({3, 4}, 2.0f);
    Tensor c = ops::matmul(a, b);
    CHECK(c.shape() == Shape{2, 4});
    Tensor p = ops::softmax(c, -1);
    Tensor classes = ops::argmax(probs, -1);
    CHECK(classes.shape() == Shape{8});
    Tensor total = ops::sum(p, {1});
    CHECK(total.item(0) == doctest::Approx(1.0));
    {   // its own scope: x and y are the model's data above
        Tensor x = ops::ones({2, 9, 4});
        Tensor k = ops::ones({3, 4, 5});
        Tensor y = ops::conv(x, k, {.strides = 2, .padding = "same"});
        CHECK(y.shape() == Shape{2, 5, 5});
        CHECK(y.item(0) == doctest::Approx(8.0));   // the first window: padding, then 2 steps of 4 ones
    }

    Tensor y_float = Tensor::full({8, 3}, 0.0f);
    optimizers::SGD optimizer(0.01);
    GradientTape tape;
    Tensor y_pred = functional(x, {.training = true});
    Tensor loss = losses::MeanSquaredError()(y_float, y_pred);
    auto grads = tape.gradient(loss, functional.trainable_weights());
    optimizer.apply(grads, functional.trainable_weights());
    CHECK(grads.size() == functional.trainable_weights().size());
    CHECK(optimizer.iterations == 1);
}

TEST_CASE("docs/porting_from_keras.md quotes only C++ lines this file compiles") {
    const fs::path root = fs::path(KERASCPP_TESTS_DIR) / "..";
    const std::string page = read_text(root / "docs" / "porting_from_keras.md");
    const std::string source = read_text(root / "tests" / "test_porting_table.cpp");
    // Table rows: | `python` | `c++` | ... (the C++ cell is the second code cell of the row).
    const std::regex row(R"(^\| *`([^`]+)` *\| *`([^`]+)` *\|)");
    int rows = 0;
    std::istringstream lines(page);
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (!std::regex_search(line, m, row)) continue;
        ++rows;
        INFO("the page's C++ line: " << m[2].str());
        CHECK(source.find(m[2].str()) != std::string::npos);
    }
    CHECK(rows >= 40);
}
