// The training loop's pieces: callbacks::CallbackList (the order of hooks), the data adapter's
// batches / shuffle / validation_split, compile()'s argument forms, a Model subclass overriding
// train_step / test_step / predict_step as in Keras, and Sequential running as a graph.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/layers/dense.hpp"
#include "keras/model.hpp"
#include "keras/optimizers.hpp"
#include "keras/random.hpp"
#include "data_adapter.hpp"
#include "functional_graph.hpp"
#include "test_helpers.hpp"

using namespace keras;
using test_helpers::floats;
using test_helpers::message_of;

namespace {

// Writes each hook it receives as "name" or "name:index".
struct Recorder : callbacks::Callback {
    std::vector<std::string>* out;
    std::string tag;
    Recorder(std::vector<std::string>* o, std::string t = "") : out(o), tag(std::move(t)) {}
    void note(const std::string& what) { out->push_back(tag + what); }
    void on_train_begin(Logs&) override { note("train_begin"); }
    void on_train_end(Logs&) override { note("train_end"); }
    void on_epoch_begin(int e, Logs&) override { note("epoch_begin:" + std::to_string(e)); }
    void on_epoch_end(int e, Logs&) override { note("epoch_end:" + std::to_string(e)); }
    void on_train_batch_begin(int64_t b, Logs&) override { note("batch_begin:" + std::to_string(b)); }
    void on_train_batch_end(int64_t b, Logs&) override { note("batch_end:" + std::to_string(b)); }
    void on_test_begin(Logs&) override { note("test_begin"); }
    void on_test_end(Logs&) override { note("test_end"); }
    void on_test_batch_end(int64_t b, Logs&) override { note("test_batch_end:" + std::to_string(b)); }
    void on_predict_begin(Logs&) override { note("predict_begin"); }
    void on_predict_batch_end(int64_t b, Logs&) override { note("predict_batch_end:" + std::to_string(b)); }
    void on_predict_end(Logs&) override { note("predict_end"); }
};

std::unique_ptr<Sequential> small_model() {
    utils::set_random_seed(7);
    auto model = std::make_unique<Sequential>();
    model->add(layers::Dense(1));
    model->build({-1, 2});
    model->compile("sgd", "mse");
    return model;
}

Tensor column(int64_t n, double offset = 0.0) {
    std::vector<double> v;
    for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<double>(i) + offset);
    return floats(v, {n, 1});
}

Tensor pairs(int64_t n) {
    std::vector<double> v;
    for (int64_t i = 0; i < n; ++i) {
        v.push_back(static_cast<double>(i));
        v.push_back(0.5);
    }
    return floats(v, {n, 2});
}

}  // namespace

TEST_CASE("CallbackList: progress bar first, the given callbacks in order (nulls skipped), History last") {
    std::vector<std::string> seen;
    auto a = std::make_shared<Recorder>(&seen, "a.");
    auto b = std::make_shared<Recorder>(&seen, "b.");
    callbacks::CallbackList list({a, nullptr, b}, {.add_history = true, .add_progbar = true});
    REQUIRE(list.callbacks().size() == 4);
    CHECK(dynamic_cast<callbacks::ProgbarLogger*>(list.callbacks()[0].get()) != nullptr);
    CHECK(list.callbacks()[1] == a);
    CHECK(list.callbacks()[2] == b);
    CHECK(list.callbacks()[3] == list.history());
    callbacks::CallbackList bare({a, b});
    CHECK(bare.callbacks().size() == 2);
    CHECK(bare.history() == nullptr);
    Logs logs;
    bare.on_epoch_begin(3, logs);
    bare.on_train_batch_end(1, logs);
    CHECK(seen == std::vector<std::string>{"a.epoch_begin:3", "b.epoch_begin:3", "a.batch_end:1", "b.batch_end:1"});
}

TEST_CASE("fit(): each hook once per event, in Keras's order, with validation silent for the callbacks") {
    auto model = small_model();
    std::vector<std::string> seen;
    model->fit(pairs(5), column(5), {.batch_size = 2, .epochs = 2, .validation_split = 0.2, .verbose = 0,
                                     .callbacks = {std::make_shared<Recorder>(&seen)}});
    const std::vector<std::string> epoch = {"batch_begin:0", "batch_end:0", "batch_begin:1", "batch_end:1"};
    std::vector<std::string> expected = {"train_begin", "epoch_begin:0"};
    expected.insert(expected.end(), epoch.begin(), epoch.end());
    expected.insert(expected.end(), {"epoch_end:0", "epoch_begin:1"});
    expected.insert(expected.end(), epoch.begin(), epoch.end());
    expected.insert(expected.end(), {"epoch_end:1", "train_end"});
    CHECK(seen == expected);

    seen.clear();
    model->evaluate(pairs(3), column(3), {.batch_size = 2, .verbose = 0, .callbacks = {std::make_shared<Recorder>(&seen)}});
    CHECK(seen == std::vector<std::string>{"test_begin", "test_batch_end:0", "test_batch_end:1", "test_end"});
    seen.clear();
    model->predict(pairs(3), {.batch_size = 3, .verbose = 0, .callbacks = {std::make_shared<Recorder>(&seen)}});
    CHECK(seen == std::vector<std::string>{"predict_begin", "predict_batch_end:0", "predict_end"});
}

TEST_CASE("EpochIterator: batches of rows in order, the last one short; shuffled per epoch from the random stream") {
    const Tensor x = column(7), y = column(7, 100.0);
    data_adapter::EpochIterator in_order({x}, {y}, 3, false);
    CHECK(in_order.num_samples() == 7);
    REQUIRE(in_order.num_batches() == 3);
    in_order.start_epoch();
    CHECK(test_helpers::values_of(in_order.batch(0).x[0]) == std::vector<double>{0, 1, 2});
    CHECK(test_helpers::values_of(in_order.batch(2).x[0]) == std::vector<double>{6});
    CHECK(test_helpers::values_of(in_order.batch(2).y[0]) == std::vector<double>{106});
    CHECK(in_order.batch_rows(2) == 1);

    data_adapter::EpochIterator shuffled({x}, {y}, 4, true);
    random::seed_for_epoch(1);
    const auto order = random::permutation(7);   // what the epoch must draw
    random::seed_for_epoch(1);
    shuffled.start_epoch();
    std::vector<double> rows, targets;
    for (int64_t s = 0; s < shuffled.num_batches(); ++s) {
        const Batch b = shuffled.batch(s);
        for (double v : test_helpers::values_of(b.x[0])) rows.push_back(v);
        for (double v : test_helpers::values_of(b.y[0])) targets.push_back(v);
    }
    REQUIRE(rows.size() == 7);
    for (size_t i = 0; i < rows.size(); ++i) {
        CHECK(rows[i] == static_cast<double>(order[i]));
        CHECK(targets[i] == rows[i] + 100.0);   // x and y rows stay paired
    }
    CHECK(message_of<ValueError>([&] { (void)data_adapter::EpochIterator({x}, {y}, 0, false); }) ==
          "Invalid `batch_size`: 0. It must be a positive integer.");
}

TEST_CASE("train_validation_split: the last fraction, before shuffling; too few samples is Keras's ValueError") {
    const auto split = data_adapter::train_validation_split({column(10)}, {column(10, 100.0)}, 0.25);
    CHECK(test_helpers::values_of(split.x_train[0]) == std::vector<double>{0, 1, 2, 3, 4, 5, 6});
    CHECK(test_helpers::values_of(split.x_val[0]) == std::vector<double>{7, 8, 9});
    CHECK(test_helpers::values_of(split.y_val[0]) == std::vector<double>{107, 108, 109});
    CHECK(message_of<ValueError>([&] { data_adapter::train_validation_split({column(1)}, {column(1)}, 0.5); }).find(
              "Training data contains 1 samples, which is not sufficient to split it") == 0);
}

TEST_CASE("compile(): names, optimizer values and pointers, loss values and lists all reach one compile") {
    auto model = small_model();
    model->compile("adam", "mae");
    CHECK(model->optimizer().name() == "Adam");
    CHECK(model->loss().name() == "mean_absolute_error");
    model->compile(optimizers::SGD(0.5f), "mse", {"mae"});
    CHECK(model->optimizer().learning_rate == doctest::Approx(0.5));
    CHECK(model->metric_names() == std::vector<std::string>{"mae"});
    model->compile(std::make_shared<optimizers::Adam>(0.02f), losses::get("mse"), CompileOptions{.loss_weights = {2.0}});
    CHECK(model->loss_weights() == std::vector<double>{2.0});
    model->compile(std::string("sgd"), {"mse"});   // a list of one loss for the one output
    CHECK(model->output_losses().size() == 1);
    CHECK(message_of<ValueError>([&] { model->compile("sgd", {"mse", "mae"}); }).find(
              "`loss` must be one loss or a list of one loss per output") != std::string::npos);
}

TEST_CASE("compile() on two outputs: a braced list of names, a list of LossPtrs, one loss value for both") {
    auto in = keras::Input({2});
    auto a = (*keras::share(layers::Dense(1, {.name = "a"})))(in);
    auto b = (*keras::share(layers::Dense(2, {.name = "b"})))(in);
    Model model(std::vector<KerasTensor>{in}, {a, b});
    model.compile("adam", {"mse", "mae"}, {"mae"});
    REQUIRE(model.output_losses().size() == 2);
    CHECK(model.output_losses()[1]->name() == "mean_absolute_error");
    model.compile(optimizers::SGD(0.1f), {losses::get("mae"), losses::get("mse")},
                  {.per_output_metrics = {{"mae"}, {}}, .loss_weights = {0.5, 2.0}});
    CHECK(model.output_losses()[0]->name() == "mean_absolute_error");
    CHECK(model.loss_weights() == std::vector<double>{0.5, 2.0});
    model.compile("sgd", losses::MeanSquaredError());   // one loss, applied to each output
    CHECK(model.output_losses().size() == 2);
    CHECK(model.output_losses()[0] == model.output_losses()[1]);
    const auto history = model.fit({pairs(4)}, {column(4), pairs(4)}, {.batch_size = 2, .verbose = 0});
    CHECK(history["loss"].size() == 1);
    CHECK(history["a_loss"].size() == 1);   // Keras 2's per-output names
    CHECK(history["b_loss"].size() == 1);
}

namespace {
// Keras's documented pattern: a subclass customising the per-batch steps fit / evaluate / predict call.
class CountingModel : public Sequential {
public:
    int train_steps = 0, test_steps = 0, predict_steps = 0;
    Logs train_step(const Batch& batch) override {
        ++train_steps;
        Logs logs = Model::train_step(batch);
        logs.set("rows", static_cast<double>(batch.x[0].dim(0)));
        return logs;
    }
    Logs test_step(const Batch& batch) override {
        ++test_steps;
        return Model::test_step(batch);
    }
    std::vector<Tensor> predict_step(const std::vector<Tensor>& x) override {
        ++predict_steps;
        return Model::predict_step(x);
    }
};
}  // namespace

TEST_CASE("a subclass's train_step / test_step / predict_step are the ones fit / evaluate / predict use") {
    auto make = [] {
        utils::set_random_seed(7);
        auto m = std::make_unique<CountingModel>();
        m->add(layers::Dense(1));
        m->build({-1, 2});
        m->compile("sgd", "mse");
        return m;
    };
    auto model = make();
    const auto history = model->fit(pairs(5), column(5), {.batch_size = 2, .epochs = 2, .validation_split = 0.2,
                                                           .shuffle = false, .verbose = 0});
    CHECK(model->train_steps == 4);   // 4 training samples in batches of 2, twice
    CHECK(model->test_steps == 2);    // one validation batch per epoch
    // The step's own logs reach the callbacks: the last batch of each epoch had 2 rows.
    CHECK(history["rows"] == std::vector<double>{2, 2});
    model->predict(pairs(3), {.batch_size = 2, .verbose = 0});
    CHECK(model->predict_steps == 2);

    // The overriding steps call the default ones, so the numbers are the plain model's.
    utils::set_random_seed(7);
    Sequential plain;
    plain.add(layers::Dense(1));
    plain.build({-1, 2});
    plain.compile("sgd", "mse");
    const auto plain_history = plain.fit(pairs(5), column(5), {.batch_size = 2, .epochs = 2, .validation_split = 0.2,
                                                               .shuffle = false, .verbose = 0});
    CHECK(history["loss"] == plain_history["loss"]);
    CHECK(history["val_loss"] == plain_history["val_loss"]);
    const Logs one = model->train_on_batch(pairs(2), column(2));
    CHECK(model->train_steps == 5);
    CHECK(one.at("rows") == 2);
}

TEST_CASE("Sequential runs as a chain graph once built; add / pop rebuild it; its InputLayer is the input node") {
    Sequential model;
    model.add(layers::Dense(3));
    CHECK(model.functional_graph() == nullptr);   // no input shape yet
    model.build({-1, 2});
    REQUIRE(model.functional_graph() != nullptr);
    CHECK_FALSE(model.is_functional());           // saved and summarized as a Sequential all the same
    CHECK(model.functional_graph()->nodes.size() == 2);   // an input node standing for the data, then Dense
    CHECK(model.outputs()[0].shape == Shape{-1, 3});
    model.add(layers::Dense(1));
    CHECK(model.functional_graph()->nodes.size() == 3);
    CHECK(model.outputs()[0].node->layer == model.layers().back());
    CHECK(model.outputs()[0].shape == Shape{-1, 1});
    model.pop();
    CHECK(model.functional_graph()->nodes.size() == 2);
    CHECK(model.layers().size() == 1);   // the stand-in input is not one of the model's layers
    model.pop();
    CHECK(model.functional_graph() == nullptr);
    CHECK_FALSE(model.built());

    Sequential with_input;
    with_input.add(layers::Input({4}));
    with_input.add(layers::Dense(2));
    REQUIRE(with_input.functional_graph() != nullptr);
    CHECK(with_input.functional_graph()->nodes.size() == 2);
    CHECK(with_input.inputs()[0].node->layer == with_input.all_layers().front());
    CHECK(with_input.predict(floats({1, 2, 3, 4}, {1, 4}), {.verbose = 0}).shape() == Shape{1, 2});
}
