// keras::utils::pad_sequences and to_categorical against REAL Keras 3 (tests/fixtures/text_fixtures.json,
// written by tests/fixtures/gen_text_fixtures.py): shapes, dtypes and every value must match exactly;
// where Keras fails, we fail too (with Keras's message for bad padding/truncating strings).
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "keras/errors.hpp"
#include "keras/utils/sequence.hpp"
#include "test_helpers.hpp"
#include "text_fixtures.hpp"

using keras::DType;
using keras::Tensor;
using keras::ValueError;
using keras::utils::pad_sequences;
using keras::utils::PadSequencesOptions;
using keras::utils::to_categorical;
using nlohmann::json;
using test_helpers::message_of;
using test_helpers::values_of;

namespace {

DType dtype_named(const std::string& name) {
    if (name == "int32") return DType::int32;
    if (name == "int64") return DType::int64;
    if (name == "float32") return DType::float32;
    FAIL("unexpected dtype " << name);
    return DType::float32;
}

PadSequencesOptions pad_options(const json& kwargs) {
    PadSequencesOptions o;
    if (kwargs.contains("maxlen")) o.maxlen = kwargs["maxlen"].get<int64_t>();
    if (kwargs.contains("dtype")) o.dtype = dtype_named(kwargs["dtype"]);
    if (kwargs.contains("padding")) o.padding = kwargs["padding"];
    if (kwargs.contains("truncating")) o.truncating = kwargs["truncating"];
    if (kwargs.contains("value")) o.value = kwargs["value"].get<float>();
    return o;
}

void check_same(const Tensor& t, const json& expected) {
    CHECK(t.shape() == expected["shape"].get<keras::Shape>());
    CHECK(values_of(t) == expected["values"].get<std::vector<double>>());
}

// Where Keras fails with numpy's own words, our message says the same thing in ours.
const std::map<std::string, std::string> kOurPadErrors = {
    {"empty_list", "pad_sequences: cannot infer maxlen from an empty list of sequences; pass maxlen"},
    {"maxlen0_pre",
     "pad_sequences: maxlen=0 with truncating=\"pre\" keeps all 3 items of the sequence at position 0 (Python's "
     "s[-0:]); they cannot fit in 0 columns. Use truncating=\"post\""},
    {"negative_maxlen", "pad_sequences: maxlen must be >= 0 (or unset), got -1"},
};

}  // namespace

TEST_CASE("pad_sequences matches Keras 3 on every fixture case") {
    const json& cases = text_fixtures().at("pad_sequences");
    REQUIRE(cases.size() >= 20);
    for (const auto& c : cases) {
        const std::string name = c["name"];
        CAPTURE(name);
        const auto sequences = c["sequences"].get<std::vector<std::vector<int64_t>>>();
        const PadSequencesOptions options = pad_options(c["kwargs"]);
        if (c.contains("error")) {
            const std::string message = message_of<ValueError>([&] { pad_sequences(sequences, options); });
            if (c["error"].get<std::string>().find("not understood") != std::string::npos)
                CHECK(message == c["error"].get<std::string>());   // Keras's own message
            else
                CHECK(message == kOurPadErrors.at(name));
            continue;
        }
        const Tensor t = pad_sequences(sequences, options);
        CHECK(t.dtype() == dtype_named(c["dtype"]));
        check_same(t, c);
        // The int32 overload gives the same (values that fit in int32).
        if (name.ends_with("random") || name == "defaults") {
            std::vector<std::vector<int32_t>> narrow;
            for (const auto& s : sequences) narrow.emplace_back(s.begin(), s.end());
            check_same(pad_sequences(narrow, options), c);
        }
    }
}

TEST_CASE("pad_sequences: defaults are Keras's") {
    const PadSequencesOptions o;
    CHECK(!o.maxlen);
    CHECK(o.dtype == DType::int32);
    CHECK(o.padding == "pre");
    CHECK(o.truncating == "pre");
    CHECK(o.value == 0.0f);
}

TEST_CASE("pad_sequences: bad option strings fail even when every sequence is empty") {
    // Keras only looks at the strings when it meets a non-empty sequence; checking them up front is stricter.
    CHECK(message_of<ValueError>([] { pad_sequences(std::vector<std::vector<int64_t>>{{}}, {.padding = "x"}); }) ==
          "Padding type \"x\" not understood");
    CHECK(message_of<ValueError>([] { pad_sequences(std::vector<std::vector<int64_t>>{}, {.maxlen = 2, .truncating = "end"}); }) ==
          "Truncating type \"end\" not understood");
}

TEST_CASE("to_categorical matches Keras 3 on every fixture case (as float32)") {
    const json& cases = text_fixtures().at("to_categorical");
    for (const auto& c : cases) {
        const std::string name = c["name"];
        CAPTURE(name);
        const auto flat = c["labels"].get<std::vector<int32_t>>();
        const Tensor labels(flat, c["shape_in"].get<keras::Shape>());
        std::optional<int64_t> num_classes;
        if (!c["num_classes"].is_null()) num_classes = c["num_classes"].get<int64_t>();
        if (c.contains("error")) {
            const std::string message = message_of<ValueError>([&] { to_categorical(labels, num_classes); });
            if (name == "label_too_big")
                CHECK(message == "to_categorical: label 3 at index 1 is outside [0, 3) (num_classes=3)");
            else
                CHECK(message == "to_categorical: cannot infer num_classes from empty labels; pass num_classes");
            continue;
        }
        const Tensor t = to_categorical(labels, num_classes);
        CHECK(t.dtype() == DType::float32);
        check_same(t, c);
    }
}

TEST_CASE("to_categorical: negative labels and num_classes are errors; float labels are truncated like numpy's int cast") {
    // numpy would silently wrap -1 around to the last class.
    CHECK(message_of<ValueError>([] { to_categorical(Tensor(std::vector<int32_t>{0, -1}, {2}), 3); }) ==
          "to_categorical: label -1 at index 1 is outside [0, 3) (num_classes=3)");
    CHECK(message_of<ValueError>([] { to_categorical(Tensor(std::vector<int32_t>{0}, {1}), -2); }) ==
          "to_categorical: num_classes must be >= 0, got -2");
    const Tensor t = to_categorical(Tensor(std::vector<float>{1.9f, 0.2f}, {2}));
    CHECK(t.shape() == keras::Shape{2, 2});
    CHECK(values_of(t) == std::vector<double>{0, 1, 1, 0});
}
