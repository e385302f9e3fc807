// docs/reference/*.md list what the code has: every layer class the loader knows, every optimizer,
// loss and metric name compile() resolves, every callback, optimizer, loss, metric and schedule
// class of the public headers appears on its page (as `Name`), so adding one without documenting it
// fails here. The names come from the code itself: the layer factory's own error message, and the
// name tables and class declarations of the sources, each name checked to resolve.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "read_text.hpp"
#include "keras/keras.hpp"
#include "../layers/layer_factory.hpp"

using namespace keras;
namespace fs = std::filesystem;

using test_helpers::read_text;

namespace {

const fs::path kRoot = fs::path(KERASCPP_TESTS_DIR) / "..";

// Every first capture group of `pattern` in `text`.
std::set<std::string> matches(const std::string& text, const std::string& pattern) {
    std::set<std::string> found;
    const std::regex re(pattern);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
        found.insert((*it)[1].str());
    return found;
}

// The part of a source file from `start` to the next line that is "}" or "};" alone.
std::string block_from(const std::string& text, const std::string& start) {
    const size_t begin = text.find(start);
    REQUIRE_MESSAGE(begin != std::string::npos, "'" << start << "' not found");
    const size_t end = text.find("\n}", begin);
    return text.substr(begin, end - begin);
}

void check_page_lists(const std::string& page_name, const std::set<std::string>& names) {
    const std::string page = read_text(kRoot / "docs" / "reference" / page_name);
    REQUIRE(!names.empty());
    for (const auto& name : names) {
        INFO(page_name << " should list `" << name << "`");
        CHECK(page.find("`" + name + "`") != std::string::npos);
    }
}

// Classes of a public header that derive from `base`: "class KERAS_API Adam : public Optimizer".
std::set<std::string> subclasses(const std::string& header, const std::string& base) {
    return matches(read_text(kRoot / header), "class KERAS_API (\\w+) : public " + base + "\\b");
}

}  // namespace

TEST_CASE("docs/reference/layers.md lists every layer class load_model knows") {
    // The factory names what it can load when asked for a class it does not know.
    std::string message;
    try {
        layers::layer_from_config("NoSuchLayer", nlohmann::json::object(), {.keras_major = 3, .file = "x.h5"});
    } catch (const ValueError& e) {
        message = e.what();
    }
    const std::string marker = "kerascpp can load: ";
    REQUIRE(message.find(marker) != std::string::npos);
    std::set<std::string> names = matches(message.substr(message.find(marker)), "(\\w+)");
    names.erase("kerascpp"), names.erase("can"), names.erase("load");
    CHECK(names.count("LSTM") == 1);
    for (const char* cell : {"SimpleRNNCell", "LSTMCell", "GRUCell", "Lambda"}) names.insert(cell);
    check_page_lists("layers.md", names);
}

TEST_CASE("docs/reference/optimizers.md lists every optimizer and schedule") {
    std::set<std::string> names = subclasses("framework/keras/optimizers.hpp", "Optimizer");
    CHECK(names.count("Adam") == 1);
    const std::string source = read_text(kRoot / "framework/src/optimizers.cpp");
    const auto keys = matches(block_from(source, "OptimizerPtr get(const std::string& name)"), "key == \"(\\w+)\"");
    for (const auto& key : keys) CHECK_NOTHROW(optimizers::get(key));
    names.insert(keys.begin(), keys.end());
    const auto schedules = subclasses("framework/keras/schedules.hpp", "LearningRateSchedule");
    CHECK(schedules.count("CosineDecayRestarts") == 1);
    names.insert(schedules.begin(), schedules.end());
    check_page_lists("optimizers.md", names);
}

TEST_CASE("docs/reference/losses.md lists every loss class and name") {
    std::set<std::string> names = subclasses("framework/keras/losses.hpp", "Loss");
    names.erase("LossFunctionWrapper");   // documented in prose, not a Keras class
    const std::string source = read_text(kRoot / "framework/src/losses.cpp");
    const auto keys = matches(block_from(source, "LossPtr get(const std::string& name)"), "\\{\"(\\w+)\", \\[");
    CHECK(keys.count("mse") == 1);
    for (const auto& key : keys) CHECK_NOTHROW(losses::get(key));
    names.insert(keys.begin(), keys.end());
    check_page_lists("losses.md", names);
}

TEST_CASE("docs/reference/metrics.md lists every metric class and name") {
    std::set<std::string> names = subclasses("framework/keras/metrics.hpp", "Metric");
    names.erase("MeanMetricWrapper");   // documented in prose, not a Keras class
    const std::string source = read_text(kRoot / "framework/src/metrics.cpp");
    const auto keys = matches(block_from(source, "MetricPtr get(const std::string& name, const std::string& loss_name"),
                              "\\{\"(\\w+)\", \\w+\\}");
    CHECK(keys.count("mae") == 1);
    for (const auto& key : keys) CHECK_NOTHROW(metrics::get(key, "mse", 1));
    names.insert(keys.begin(), keys.end());
    names.insert({"accuracy", "acc"});
    check_page_lists("metrics.md", names);
}

TEST_CASE("docs/reference/callbacks.md lists every callback") {
    std::set<std::string> names = subclasses("framework/keras/callbacks.hpp", "Callback");
    names.erase("CallbackList");   // the training loop's, not a callback users pass
    CHECK(names.count("BackupAndRestore") == 1);
    check_page_lists("callbacks.md", names);
}

TEST_CASE("the reference pages link only to pages that exist") {
    for (const auto& entry : fs::directory_iterator(kRoot / "docs" / "reference")) {
        if (entry.path().extension() != ".md") continue;
        const std::string page = read_text(entry.path());
        for (const auto& target : matches(page, "\\]\\(([^)#]+\\.md)[)#]")) {
            INFO(entry.path().filename().string() << " links to " << target);
            CHECK(fs::exists(entry.path().parent_path() / target));
        }
    }
}
