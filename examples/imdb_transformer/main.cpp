// Keras's "Text classification with Transformer" example, in C++, with the functional API, on the real
// IMDb reviews (bench/keras_examples/imdb_transformer.py is the same model in Keras):
//   imdb.load_data(num_words=20000) -> pad_sequences(maxlen=200)
//   token Embedding(20000, 32) + position embedding (200, 32)
//   -> Transformer block: MultiHeadAttention(num_heads=2, key_dim=32)(x, x) -> Dropout(0.1)
//      -> LayerNormalization(epsilon=1e-6)(x + attention) -> Dense(32, relu) -> Dense(32) -> Dropout(0.1)
//      -> LayerNormalization(epsilon=1e-6)(out1 + ffn)
//   -> GlobalAveragePooling1D -> Dropout(0.1) -> Dense(20, relu) -> Dropout(0.1) -> Dense(2, softmax),
//   adam, sparse_categorical_crossentropy, batch 32, 2 epochs, validated on the test set.
//
// The position embedding is a small layer of this file, written with keras::ops as a user would.
// The data comes from --data PATH (imdb.npz, an aclImdb folder or aclImdb_v1.tar.gz), else Keras's
// cache, else a download; with none reachable it trains on kerascpp's generated corpus and says so
// (keras::datasets::imdb::load_data_or_generated; the options are examples/imdb_options.hpp's).
//
// Usage: imdb_transformer [--epochs N] [--data PATH] [--num-words N] [--maxlen N] [--batch-size N]
//                         [--limit N] [--threads N] [--verbose 0|1|2]   (--help lists every option with its default)
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
    args.maxlen = 200;
    args.batch_size = 32;
    CLI::App app{"Trains Keras's text-classification Transformer (token + position embedding, one Transformer\n"
                 "block, pooling, Dense) on the real IMDb reviews and prints the test accuracy."};
    examples::add_imdb_options(app, args);
    if (!examples::parse_command_line(app, argc, argv, exit_code)) return std::nullopt;
    return args;
}

// The example's own layer: adds a learned vector per position to (batch, steps, dim) embeddings (the
// position half of Keras's TokenAndPositionEmbedding; positions 0..steps-1 are the rows of `table`).
class PositionEmbedding : public keras::Layer {
public:
    explicit PositionEmbedding(int64_t maxlen) : Layer("PositionEmbedding", ""), maxlen(maxlen) {}
    void build(const keras::Shape& input_shape) override {
        table = add_weight("embeddings", {maxlen, input_shape.back()}, "uniform");   // as Keras's Embedding
    }
    keras::Tensor call(const keras::Tensor& x) override {
        const int64_t steps = x.shape()[1];
        return keras::ops::add(x, keras::ops::slice(*table, {0, 0}, {steps, x.shape()[2]}));
    }
    int64_t maxlen;
    keras::VariablePtr table;
};

// Keras's TransformerBlock, as functional calls: self-attention and a feed-forward net, each added
// back to its input and layer-normalized.
keras::KerasTensor transformer_block(const keras::KerasTensor& x, int embed_dim, int num_heads, int ff_dim) {
    using namespace keras;
    auto attention = (*share(layers::MultiHeadAttention(num_heads, embed_dim)))({x, x});
    attention = (*share(layers::Dropout(0.1f)))(attention);
    auto out1 = (*share(layers::LayerNormalization({.epsilon = 1e-6f})))((*share(layers::Add()))({x, attention}));
    auto ffn = (*share(layers::Dense(ff_dim, "relu")))(out1);
    ffn = (*share(layers::Dense(embed_dim)))(ffn);
    ffn = (*share(layers::Dropout(0.1f)))(ffn);
    return (*share(layers::LayerNormalization({.epsilon = 1e-6f})))((*share(layers::Add()))({out1, ffn}));
}

std::shared_ptr<keras::Model> build_model(int64_t num_words, int64_t maxlen) {
    using namespace keras;
    const int embed_dim = 32, num_heads = 2, ff_dim = 32;
    auto inputs = Input({maxlen}, {.dtype = DType::int32});
    auto x = (*share(layers::Embedding(num_words, embed_dim)))(inputs);
    x = (*std::make_shared<PositionEmbedding>(maxlen))(x);
    x = transformer_block(x, embed_dim, num_heads, ff_dim);
    x = (*share(layers::GlobalAveragePooling1D()))(x);
    x = (*share(layers::Dropout(0.1f)))(x);
    x = (*share(layers::Dense(20, "relu")))(x);
    x = (*share(layers::Dropout(0.1f)))(x);
    auto outputs = (*share(layers::Dense(2, "softmax")))(x);
    auto model = std::make_shared<Model>(std::vector<KerasTensor>{inputs}, std::vector<KerasTensor>{outputs});
    model->compile(optimizers::Adam(), "sparse_categorical_crossentropy", {"accuracy"});
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
    std::cerr << "imdb_transformer: " << e.what() << "\n";
    return 1;
}
