// The classic Keras IMDb sentiment program, in C++, on the real IMDb reviews:
//   imdb.load_data(num_words=6000) -> pad_sequences(maxlen=130)
//   Embedding(6000, 100) -> SimpleRNN(16) -> Dense(1, sigmoid), Adam(1e-3), binary_crossentropy,
//   batch 100, 5 epochs, validation_split 0.2, shuffle.
// --model lstm is Keras's bigger IMDb LSTM: num_words 20000, maxlen 200,
//   Embedding(20000, 128) -> LSTM(128) -> Dense(1, sigmoid), same training settings plus
//   EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True).
// --model gru is the seed model with GRU(16) in place of SimpleRNN(16).
// --mask-zero builds the Embedding with mask_zero=True: the recurrent layer skips the padding
// (exactly, as Keras does) instead of reading it as data.
//
// The data comes from --data PATH (imdb.npz, an aclImdb folder or aclImdb_v1.tar.gz), else Keras's
// cache ($KERAS_HOME or ~/.keras, datasets/imdb.npz), else a download from Keras's URL. When none of
// these works (a fresh offline machine) it trains on kerascpp's generated corpus of the same shape
// and says so in one line.
//
// --save PATH writes the trained model as a Keras HDF5 file; --load PATH starts from such a file
// (architecture, weights and optimizer state) instead of a new model, and --epochs 0 only evaluates it.
// --plot-history FILE.svg draws the training and validation loss and accuracy per epoch
// (keras::utils::plot_history).
// --policy mixed_bfloat16 builds the model under keras::mixed_precision's global policy (bfloat16
// compute on CPUs with AVX512_BF16; the output Dense stays float32; docs/mixed_precision.md).
// --distributed trains data-parallel over the processes mpirun started (Keras's
// MultiWorkerMirroredStrategy; docs/distributed.md): `mpirun -np 2 imdb_sentiment --distributed`.
// The batch (100 by default) is split over the workers; only worker 0 prints and saves.
//
// --batch-size, --limit N (the first N reviews) and --threads N are the options every IMDb example
// shares (examples/imdb_options.hpp); the data comes through keras::datasets::imdb::load_data_or_generated.
//
// Usage: imdb_sentiment [--model simplernn|lstm|gru] [--epochs N] [--data PATH] [--num-words N]
//                       [--maxlen N] [--batch-size N] [--limit N] [--threads N]
//                       [--verbose 0|1|2] [--save PATH] [--load PATH] [--mask-zero]
//                       [--plot-history FILE.svg] [--policy float32|mixed_bfloat16] [--distributed]
//   (--help lists every option with its default)
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <keras/keras.hpp>

#include "../imdb_options.hpp"

namespace {
struct Args {
    examples::ImdbArgs common;          // --epochs, --data, --num-words, --maxlen, --batch-size, ...
    std::string model = "simplernn";
    std::string save, load;             // model files; empty: none
    bool mask_zero = false;             // Embedding(mask_zero=True)
    std::string plot_history;           // an .svg of the training curves; empty: none
    std::string policy = "float32";     // the dtype policy a new model is built under
    bool distributed = false;           // data-parallel over mpirun's processes
};

// --help, unknown flags and bad values: CLI11's message, and its exit code (0 for --help) in *exit_code.
std::optional<Args> parse(int argc, char** argv, int* exit_code) {
    Args args;
    args.common.epochs = 5;
    args.common.batch_size = 100;
    CLI::App app{"Trains Keras's IMDb sentiment model (Embedding -> recurrent layer -> Dense) on the real reviews\n"
                 "and prints the test accuracy."};
    app.add_option("--model", args.model, "simplernn: Keras's seed model; lstm: its LSTM(128) model; gru: GRU(16)")
        ->capture_default_str()
        ->check(CLI::IsMember({"simplernn", "lstm", "gru"}));
    // --num-words and --maxlen default by --model (below), so their shown defaults say so.
    const examples::ImdbOptions shared = examples::add_imdb_options(app, args.common, 0);
    shared.epochs->description("training epochs (0 with --load: evaluate only)");
    shared.num_words->default_str("6000; 20000 with --model lstm");
    shared.maxlen->default_str("130; 200 with --model lstm");
    app.add_option("--save", args.save, "write the trained model to this Keras HDF5 file")->default_str("none");
    app.add_option("--load", args.load, "start from this saved model (its num_words and maxlen) instead of a new one")
        ->default_str("none")
        ->excludes(shared.num_words)
        ->excludes(shared.maxlen);
    app.add_flag("--mask-zero", args.mask_zero, "Embedding(mask_zero=True): the recurrent layer skips the padding");
    // Checked here, not after the training it would otherwise waste.
    app.add_option("--plot-history", args.plot_history, "draw the loss and accuracy per epoch into this .svg file")
        ->default_str("none")
        ->check([](const std::string& path) {
            return path.size() > 4 && path.ends_with(".svg") ? "" : "the picture is SVG: give a FILE ending in .svg";
        });
    app.add_option("--policy", args.policy, "dtype policy of a new model (mixed_bfloat16: bfloat16 compute)")
        ->check(CLI::IsMember({"float32", "mixed_bfloat16"}))
        ->capture_default_str();
    app.add_flag("--distributed", args.distributed,
                 "train data-parallel over the processes mpirun started (MultiWorkerMirroredStrategy)");
    if (!examples::parse_command_line(app, argc, argv, exit_code)) return std::nullopt;
    const bool lstm = args.model == "lstm";
    if (shared.num_words->count() == 0) args.common.num_words = lstm ? 20000 : 6000;
    if (shared.maxlen->count() == 0) args.common.maxlen = lstm ? 200 : 130;
    return args;
}

// The seed program's model (or its LSTM / GRU variant), compiled.
std::shared_ptr<keras::Sequential> build_model(const std::string& kind, int64_t num_words, int64_t maxlen,
                                               bool mask_zero) {
    using namespace keras;
    auto model = std::make_shared<Sequential>();
    model->add(layers::Input({maxlen}));
    if (kind == "lstm") {
        model->add(layers::Embedding(num_words, 128, {.mask_zero = mask_zero}));
        model->add(layers::LSTM(128));
    } else {
        model->add(layers::Embedding(num_words, 100, {.mask_zero = mask_zero}));
        if (kind == "gru") model->add(layers::GRU(16));
        else model->add(layers::SimpleRNN(16));
    }
    model->add(layers::Dense(1, {.activation = "sigmoid", .dtype = "float32"}));   // outputs in float32 (Keras)
    model->compile(optimizers::Adam(0.001), "binary_crossentropy", {"accuracy"});
    return model;
}

// A loaded model fixes the vocabulary and the padded length: its Embedding's input_dim and its input.
std::pair<int64_t, int64_t> vocabulary_and_length(const keras::Model& model) {
    int64_t num_words = 0;
    for (const auto& layer : model.layers())
        if (layer->class_name() == "Embedding") num_words = layer->get_config().at("input_dim").get<int64_t>();
    const keras::Shape input = model.layers().front()->input_shape();
    if (num_words == 0 || input.size() != 2)
        throw keras::ValueError(fmt::format("the loaded model '{}' is not an IMDb model: it needs an Embedding "
                                            "layer and (batch, length) inputs", model.name()));
    return {num_words, input[1]};
}
}  // namespace

int main(int argc, char** argv) try {
    using namespace keras;
    int exit_code = 0;
    const std::optional<Args> parsed = parse(argc, argv, &exit_code);
    if (!parsed) return exit_code;
    const Args& args = *parsed;
    const examples::ImdbArgs& common = args.common;
    examples::apply_threads(common);
    const bool lstm = args.model == "lstm";
    int64_t num_words = common.num_words;
    int64_t maxlen = common.maxlen;

    // --distributed: every worker runs this program; the models compiled in the strategy's scope
    // train together, and only the chief (worker 0) prints.
    std::optional<distribute::MultiWorkerMirroredStrategy> strategy;
    if (args.distributed) strategy.emplace();
    const bool chief = !strategy || strategy->is_chief();
    auto in_scope = [&](const std::function<void()>& fn) { strategy ? strategy->scope(fn) : fn(); };
    if (strategy && chief)
        fmt::print("Distributed over {} workers (global batch {})\n", strategy->num_replicas_in_sync(),
                   common.batch_size);

    utils::set_random_seed(common.seed);
    std::shared_ptr<Model> model;
    if (args.load.empty()) {
        mixed_precision::set_global_policy(args.policy);
        in_scope([&] { model = build_model(args.model, num_words, maxlen, args.mask_zero); });
    } else {
        in_scope([&] {
            model = models::load_model(args.load);
            if (!model->compiled()) model->compile(optimizers::Adam(0.001), "binary_crossentropy", {"accuracy"});
        });
        std::tie(num_words, maxlen) = vocabulary_and_length(*model);
        if (chief) fmt::print("Loaded {} from {} (num_words {}, maxlen {})\n", model->name(), args.load, num_words, maxlen);
    }

    auto [train, test] = datasets::imdb::load_data_or_generated(
        {.path = common.data, .num_words = num_words, .limit = common.limit});
    const Tensor x_train = utils::pad_sequences(train.x, {.maxlen = maxlen});
    const Tensor x_test = utils::pad_sequences(test.x, {.maxlen = maxlen});
    if (chief) {
        fmt::print("{} train sequences, {} test sequences, padded to {}\n", x_train.dim(0), x_test.dim(0), maxlen);
        model->summary();
    }

    // The 2.7M-parameter LSTM overfits after two or three epochs (validation loss rises while the
    // training loss keeps falling), so it stops when validation loss stops improving and keeps the
    // best epoch's weights, the usual Keras remedy.
    std::vector<callbacks::CallbackPtr> stop_early;
    if (lstm)
        stop_early.push_back(std::make_shared<callbacks::EarlyStopping>(
            callbacks::EarlyStoppingOptions{.monitor = "val_loss", .patience = 1, .restore_best_weights = true}));
    if (common.epochs > 0) {
        const auto history = model->fit(x_train, train.y,
                                        {.batch_size = common.batch_size, .epochs = common.epochs,
                                         .validation_split = 0.2, .shuffle = true, .verbose = common.verbose,
                                         .callbacks = stop_early});
        if (!args.plot_history.empty() && chief) {
            utils::plot_history(history, args.plot_history, {.title = "IMDb sentiment: " + args.model});
            fmt::print("Wrote the training curves to {}\n", args.plot_history);
        }
    }
    auto [loss, accuracy] = model->evaluate(x_test, test.y, {.batch_size = common.batch_size, .verbose = 0});
    if (chief) fmt::print("Test loss: {:.4f}, test accuracy: {:.2f}%\n", loss, 100.0 * accuracy);
    if (!args.save.empty()) {
        model->save(args.save);   // written by the chief alone
        if (chief) fmt::print("Saved the model to {}\n", args.save);
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "imdb_sentiment: " << e.what() << "\n";
    return 1;
}
