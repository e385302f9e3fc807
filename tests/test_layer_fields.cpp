// The field tables (keras/layers/fields.hpp): every layer's get_config() is loaded back (the
// factory, layer_factory.cpp) into the same config, with non-default options so a value lost on the
// way would show; the keys a config holds are exactly its table's written ones plus the Layer's and
// the constructor's; and an option declared by one table line is written by get_config() and loaded.
#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_reader.hpp"
#include "keras/errors.hpp"
#include "keras/layers/bidirectional.hpp"
#include "keras/layers/core.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/embedding.hpp"
#include "keras/layers/gru.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/masking.hpp"
#include "keras/layers/merge.hpp"
#include "keras/layers/noise.hpp"
#include "keras/layers/normalization.hpp"
#include "keras/layers/rnn_cells.hpp"
#include "keras/layers/simple_rnn.hpp"
#include "keras/layers/wrappers.hpp"
#include "layer_factory.hpp"
#include "test_helpers.hpp"

using nlohmann::json;
using test_helpers::message_of;
namespace kl = keras::layers;

namespace {

const kl::ConfigSource keras3{.keras_major = 3, .file = "(test)"};

template <typename O>
std::set<std::string> written_keys() {
    std::set<std::string> keys;
    for (const auto& f : O::fields().entries)
        if (f.written) keys.insert(std::string(f.key));
    return keys;
}

std::set<std::string> keys_of(const json& config) {
    std::set<std::string> keys;
    for (const auto& [k, v] : config.items()) keys.insert(k);
    return keys;
}

// One layer of the round trip: how to make it (non-default options), its options' written keys and
// the keys its constructor's positional arguments or nested layers add.
struct Case {
    std::string class_name;
    std::function<keras::LayerPtr()> make;
    std::set<std::string> table_keys;
    std::set<std::string> positional;
};

template <typename O>
Case make_case(std::string class_name, std::function<keras::LayerPtr()> make, std::set<std::string> positional = {}) {
    return {std::move(class_name), std::move(make), written_keys<O>(), std::move(positional)};
}

std::vector<Case> every_layer() {
    using keras::share;
    return {
        make_case<kl::DenseOptions>("Dense", [] {
            return share(kl::Dense(3, {.activation = "relu", .use_bias = false, .kernel_initializer = "he_normal",
                                       .bias_initializer = "ones"}));
        }, {"units"}),
        make_case<kl::EmbeddingOptions>("Embedding", [] {
            return share(kl::Embedding(10, 4, {.embeddings_initializer = "glorot_uniform", .mask_zero = true}));
        }, {"input_dim", "output_dim"}),
        make_case<kl::DropoutOptions>("Dropout", [] { return share(kl::Dropout(0.3f)); }, {"rate"}),
        make_case<kl::ActivationOptions>("Activation", [] { return share(kl::Activation("softplus")); }, {"activation"}),
        make_case<kl::FlattenOptions>("Flatten", [] { return share(kl::Flatten()); }),
        make_case<kl::GlobalAveragePooling1DOptions>("GlobalAveragePooling1D",
                                                     [] { return share(kl::GlobalAveragePooling1D()); }),
        make_case<kl::MaskingOptions>("Masking", [] { return share(kl::Masking(-1.0f)); }, {"mask_value"}),
        make_case<kl::RepeatVectorOptions>("RepeatVector", [] { return share(kl::RepeatVector(5)); }, {"n"}),
        make_case<kl::MergeOptions>("Add", [] { return share(kl::Add()); }),
        make_case<kl::MergeOptions>("Multiply", [] { return share(kl::Multiply()); }),
        make_case<kl::MergeOptions>("Average", [] { return share(kl::Average()); }),
        make_case<kl::MergeOptions>("Subtract", [] { return share(kl::Subtract()); }),
        make_case<kl::MergeOptions>("Maximum", [] { return share(kl::Maximum()); }),
        make_case<kl::MergeOptions>("Minimum", [] { return share(kl::Minimum()); }),
        make_case<kl::DotOptions>("Dot", [] { return share(kl::Dot(std::vector<int>{1, 2}, {.normalize = true})); }, {"axes"}),
        make_case<kl::ConcatenateOptions>("Concatenate", [] { return share(kl::Concatenate({.axis = 1})); }),
        make_case<kl::SimpleRNNOptions>("SimpleRNN", [] {
            return share(kl::SimpleRNN(4, {.activation = "relu", .use_bias = false, .dropout = 0.25f,
                                           .return_sequences = true, .go_backwards = true}));
        }, {"units"}),
        make_case<kl::LSTMOptions>("LSTM", [] {
            return share(kl::LSTM(5, {.recurrent_activation = "hard_sigmoid", .recurrent_initializer = "glorot_normal",
                                      .unit_forget_bias = false, .recurrent_dropout = 0.1f, .return_state = true,
                                      .stateful = true, .zero_output_for_mask = true}));
        }, {"units"}),
        make_case<kl::GRUOptions>("GRU", [] {
            return share(kl::GRU(6, {.activation = "sigmoid", .bias_initializer = "ones", .dropout = 0.2f,
                                     .reset_after = false}));
        }, {"units"}),
        make_case<kl::TimeDistributedOptions>("TimeDistributed",
                                              [] { return share(kl::TimeDistributed(kl::Dense(2, "tanh"))); }, {"layer"}),
        make_case<kl::BidirectionalOptions>("Bidirectional", [] {
            return share(kl::Bidirectional(kl::LSTM(3, {.return_sequences = true}), {.merge_mode = std::nullopt}));
        }, {"layer", "backward_layer"}),
        make_case<kl::BidirectionalOptions>("Bidirectional", [] {
            return share(kl::Bidirectional(kl::GRU(3), {.merge_mode = "sum"}));
        }, {"layer", "backward_layer"}),
        make_case<kl::BatchNormalizationOptions>("BatchNormalization", [] {
            return share(kl::BatchNormalization({.axis = 1, .momentum = 0.9f, .epsilon = 0.01f, .center = false,
                                                 .gamma_initializer = "zeros", .moving_variance_initializer = "zeros"}));
        }, {"axis"}),
        make_case<kl::LayerNormalizationOptions>("LayerNormalization", [] {
            return share(kl::LayerNormalization({.axis = {1, 2}, .epsilon = 1e-5f, .scale = false, .rms_scaling = true,
                                                 .beta_initializer = "ones"}));
        }, {"axis"}),
        make_case<kl::UnitNormalizationOptions>("UnitNormalization",
                                                [] { return share(kl::UnitNormalization({.axis = {1}})); }, {"axis"}),
        make_case<kl::NoiseOptions>("SpatialDropout1D", [] { return share(kl::SpatialDropout1D(0.3f)); }, {"rate"}),
        make_case<kl::NoiseOptions>("GaussianNoise", [] { return share(kl::GaussianNoise(0.1f)); }, {"stddev"}),
        make_case<kl::NoiseOptions>("GaussianDropout", [] { return share(kl::GaussianDropout(0.2f)); }, {"rate"}),
    };
}

}  // namespace

TEST_CASE("every layer: get_config() loads back into the same config, its keys from its table") {
    const std::set<std::string> layer_keys = {"name", "trainable", "dtype"};
    for (const Case& c : every_layer()) {
        CAPTURE(c.class_name);
        const keras::LayerPtr layer = c.make();
        REQUIRE(layer->class_name() == c.class_name);
        const json config = layer->get_config();
        // Nothing is written outside the table, the Layer's keys and the constructor's.
        std::set<std::string> expected = layer_keys;
        expected.insert(c.table_keys.begin(), c.table_keys.end());
        expected.insert(c.positional.begin(), c.positional.end());
        CHECK(keys_of(config) == expected);
        const keras::LayerPtr loaded = kl::layer_from_config(c.class_name, config, keras3);
        CHECK(loaded->class_name() == c.class_name);
        CHECK(loaded->name() == layer->name());
        CHECK(loaded->get_config() == config);
    }
}

TEST_CASE("every layer: a non-default option survives the round trip (the configs differ from the defaults')") {
    // A Dense with default options has another config: the round trip above compared real values.
    const json defaults = kl::Dense(3, {.name = "d"}).get_config();
    json custom = kl::Dense(3, {.activation = "relu", .use_bias = false, .name = "d"}).get_config();
    CHECK(custom != defaults);
    const auto loaded = kl::layer_from_config("Dense", custom, keras3);
    CHECK(loaded->get_config()["activation"] == "relu");
    CHECK(loaded->get_config()["use_bias"] == false);
}

TEST_CASE("recurrent cells: get_config() loads back through cell_from_config") {
    const std::vector<std::shared_ptr<keras::Layer>> cells = {
        keras::share(kl::SimpleRNNCell(3, {.activation = "relu", .use_bias = false})),
        keras::share(kl::LSTMCell(4, {.recurrent_activation = "hard_sigmoid", .unit_forget_bias = false})),
        keras::share(kl::GRUCell(5, {.kernel_initializer = "he_uniform", .reset_after = false})),
    };
    for (const auto& cell : cells) {
        CAPTURE(cell->class_name());
        const json config = cell->get_config();
        const auto loaded = kl::cell_from_config(cell->class_name(), config, keras3);
        CHECK(loaded->get_config() == config);
    }
    // A cell's dropout is the layer's in kerascpp: a file's other value is refused, naming the field.
    json config = kl::LSTMCell(2, {.name = "c"}).get_config();
    config["dropout"] = 0.5;
    CHECK(message_of([&] { kl::cell_from_config("LSTMCell", config, keras3); }) ==
          "Layer \"c\" (LSTMCell) in file '(test)', field `dropout`: 0.5 is not supported (only 0.0)");
}

TEST_CASE("an LSTM's config holds its cell's fields: the tables share the cell's fragment") {
    const auto lstm_keys = written_keys<kl::LSTMOptions>();
    for (const auto& key : written_keys<kl::LSTMCellOptions>()) {
        if (key == "dropout" || key == "recurrent_dropout" || key == "seed") continue;   // the cell's own
        CAPTURE(key);
        CHECK(lstm_keys.count(key) == 1);
    }
    // convert_fields copies by key: the layer's options give the cell's without a line per field.
    const kl::LSTMOptions layer_options{.activation = "relu", .unit_forget_bias = false, .dropout = 0.5f};
    const auto cell = kl::convert_fields(kl::LSTMCellOptions{}, layer_options);
    CHECK(cell.activation == "relu");
    CHECK(cell.unit_forget_bias == false);
    CHECK(cell.recurrent_initializer == "orthogonal");
}

namespace {

// A toy options struct: each option is one member plus one table line.
struct ToyOptions {
    float alpha = 0.5f;
    bool flag = false;
    int axis = 2;
    std::string activation = "relu";
    std::string init = "zeros";
    std::optional<std::string> mode = "concat";
    bool legacy = true;   // a file without the key predates it: false
    std::string name{};
    static const kl::FieldTable<ToyOptions>& fields();
};
const kl::FieldTable<ToyOptions>& ToyOptions::fields() {
    using O = ToyOptions;
    static const auto table = kl::FieldTable<O>()
        .nulls({"toy_regularizer"})
        .fixed("data_format", "\"channels_last\"")
        .fixed("seed", "null", true, false)
        .fixed("time_major", "false", false, true)
        .number("alpha", &O::alpha)
        .boolean("flag", &O::flag)
        .integer("axis", &O::axis)
        .activation("activation", &O::activation)
        .initializer("init", &O::init)
        .optional_string("mode", &O::mode)
        .boolean("legacy", &O::legacy, "false");
    return table;
}

ToyOptions read_toy(const json& config, int keras_major = 3) {
    const kl::ConfigSource source{.keras_major = keras_major, .file = "toy.keras"};
    return kl::read_fields<ToyOptions>(kl::ConfigReader("Toy", config, source));
}

}  // namespace

TEST_CASE("an option added to a table appears in get_config() and loads") {
    json config = json::object();
    kl::write_fields(config, ToyOptions{.alpha = 0.2f, .flag = true, .axis = -1, .activation = "silu",
                                        .init = "he_uniform", .mode = std::nullopt});
    CHECK(config["alpha"].dump() == "0.2");   // the float's shortest text
    CHECK(config["flag"] == true);
    CHECK(config["axis"] == -1);
    CHECK(config["activation"] == "swish");   // normalised to Keras's name
    CHECK(config["init"]["class_name"] == "HeUniform");
    CHECK(config["mode"].is_null());
    CHECK(config["toy_regularizer"].is_null());
    CHECK(config["data_format"] == "channels_last");
    CHECK(config["seed"].is_null());
    CHECK(config["legacy"] == true);
    CHECK(!config.contains("time_major"));   // checked on load only
    CHECK(!config.contains("name"));         // the Layer's

    config["name"] = "toy";
    const ToyOptions loaded = read_toy(config);
    CHECK(loaded.alpha == 0.2f);
    CHECK(loaded.flag);
    CHECK(loaded.axis == -1);
    CHECK(loaded.activation == "swish");
    CHECK(loaded.init == "he_uniform");
    CHECK(!loaded.mode);
    CHECK(loaded.legacy);
    CHECK(loaded.name == "toy");

    // Absent keys: the struct's defaults, or the field's when_absent.
    const ToyOptions defaults = read_toy({{"name", "t"}});
    CHECK(defaults.alpha == 0.5f);
    CHECK(defaults.activation == "relu");
    CHECK(defaults.mode == "concat");
    CHECK(!defaults.legacy);
    // Keras 2's hard_sigmoid keeps its slope.
    CHECK(read_toy({{"activation", "hard_sigmoid"}}, 2).activation == "hard_sigmoid_keras2");
    // Ignored and refused values, and malformed ones, each naming the field.
    CHECK_NOTHROW(read_toy({{"seed", 42}}));
    CHECK(message_of([] { read_toy({{"name", "t"}, {"toy_regularizer", "l2"}}); }) ==
          "Layer \"t\" (Toy) in file 'toy.keras', field `toy_regularizer`: \"l2\" is not supported (only null)");
    CHECK(message_of([] { read_toy({{"name", "t"}, {"time_major", true}}); }) ==
          "Layer \"t\" (Toy) in file 'toy.keras', field `time_major`: true is not supported (only false)");
    CHECK(message_of([] { read_toy({{"name", "t"}, {"data_format", "channels_first"}}); }) ==
          "Layer \"t\" (Toy) in file 'toy.keras', field `data_format`: \"channels_first\" is not supported (only "
          "\"channels_last\")");
    CHECK(message_of([] { read_toy({{"name", "t"}, {"axis", 1.5}}); }) ==
          "Layer \"t\" (Toy) in file 'toy.keras', field `axis`: expected an integer, got 1.5");
    CHECK(message_of([] { read_toy({{"name", "t"}, {"mode", 3}}); }) ==
          "Layer \"t\" (Toy) in file 'toy.keras', field `mode`: expected a string or null, got 3");
}

TEST_CASE("a recurrent layer holds its cell: the cell's options, validation and weights are the layer's") {
    kl::LSTM lstm(3, {.recurrent_activation = "hard_sigmoid", .unit_forget_bias = false, .dropout = 0.5f,
                      .return_sequences = true, .name = "held"});
    CHECK(lstm.cell().class_name() == "LSTMCell");
    CHECK(lstm.cell().name() == "held");   // the cell's errors name the layer
    CHECK(lstm.cell().options().recurrent_activation == "hard_sigmoid");
    CHECK(lstm.cell().options().unit_forget_bias == false);
    CHECK(lstm.cell().spec().units == 3);
    lstm.build_for({-1, 5, 2});
    // The layer's weights are the cell's Variables, in Keras's order and names.
    REQUIRE(lstm.weights().size() == 3);
    REQUIRE(lstm.cell().weights().size() == 3);
    for (size_t i = 0; i < 3; ++i) CHECK(lstm.weights()[i] == lstm.cell().weights()[i]);
    CHECK(lstm.weights()[0]->name == "kernel");
    CHECK(lstm.weights()[1]->name == "recurrent_kernel");
    CHECK(lstm.weights()[2]->name == "bias");
    CHECK(lstm.weights()[0]->value.shape() == keras::Shape{2, 12});
    CHECK(lstm.weights()[2]->value.shape() == keras::Shape{12});
    // A GRU's reset_after bias comes from its cell.
    kl::GRU gru(4, {.name = "g"});
    gru.build_for({-1, 2, 3});
    CHECK(gru.weights()[2]->value.shape() == keras::Shape{2, 12});
    // The cell validates the options once, with the layer's name.
    CHECK(message_of([] { kl::LSTM(2, {.activation = "softmax", .name = "soft"}); }) ==
          "Layer \"soft\": softmax is not supported as a recurrent activation");
    CHECK(message_of([] { kl::SimpleRNN(0); }) ==
          "Received an invalid value for argument `units`, expected a positive integer, got 0.");
    // A copy of an unbuilt layer gets its own cell, so the two build their own weights.
    kl::SimpleRNN a(2, {.name = "a"});
    kl::SimpleRNN b = a;
    CHECK(&a.cell() != &b.cell());
    a.build_for({-1, 3, 4});
    b.build_for({-1, 3, 4});
    CHECK(a.weights()[0] != b.weights()[0]);
}
