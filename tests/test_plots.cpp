// plot_history, plot_lr_find (SVG) and plot_model / model_to_dot (Graphviz). The SVG is parsed
// (balanced tags, attributes) and each curve's points are mapped back through the axis ticks to the
// data they came from, so a wrong scale, a lost point or an axis that misses the data fails here.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "keras/callbacks.hpp"
#include "keras/errors.hpp"
#include "keras/input_layer.hpp"
#include "keras/keras_tensor.hpp"
#include "keras/layers/bidirectional.hpp"
#include "keras/layers/dense.hpp"
#include "keras/layers/lstm.hpp"
#include "keras/layers/merge.hpp"
#include "keras/model.hpp"
#include "keras/utils/model_visualization.hpp"
#include "keras/utils/training_curves.hpp"
#include "test_helpers.hpp"

using namespace keras;
namespace fs = std::filesystem;

namespace {

// ---- a minimal XML reader: every tag closed in order, attributes and direct text kept.
struct Element {
    std::string name, text;
    std::map<std::string, std::string> attrs;
    int parent = -1;
};

std::vector<Element> parse_xml(const std::string& xml) {
    std::vector<Element> elements;
    std::vector<int> open;
    static const std::regex attribute(R"re(([\w:-]+)="([^"]*)")re");
    size_t at = 0;
    while ((at = xml.find('<', at)) != std::string::npos) {
        const size_t end = xml.find('>', at);
        REQUIRE(end != std::string::npos);
        std::string tag = xml.substr(at + 1, end - at - 1);
        const size_t next = xml.find('<', end);
        const std::string text = xml.substr(end + 1, next == std::string::npos ? std::string::npos : next - end - 1);
        at = end + 1;
        if (tag.starts_with("?")) continue;
        if (tag.starts_with("/")) {
            REQUIRE_MESSAGE(!open.empty(), "closing tag without an open one: " << tag);
            REQUIRE_MESSAGE(elements[open.back()].name == tag.substr(1), "unbalanced </" << tag.substr(1) << ">");
            open.pop_back();
            if (!open.empty()) elements[open.back()].text += text;
            continue;
        }
        const bool self_closing = tag.ends_with("/");
        if (self_closing) tag.pop_back();
        Element e;
        e.name = tag.substr(0, tag.find_first_of(" \n"));
        e.parent = open.empty() ? -1 : open.back();
        for (std::sregex_iterator it(tag.begin(), tag.end(), attribute), stop; it != stop; ++it)
            e.attrs[(*it)[1]] = (*it)[2];
        if (!self_closing) e.text = text;
        elements.push_back(e);
        if (!self_closing) open.push_back(static_cast<int>(elements.size()) - 1);
    }
    REQUIRE_MESSAGE(open.empty(), "unclosed tags at the end");
    REQUIRE(!elements.empty());
    CHECK(elements.front().name == "svg");
    return elements;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool inside(const std::vector<Element>& doc, int i, int ancestor) {
    for (int p = doc[i].parent; p >= 0; p = doc[p].parent)
        if (p == ancestor) return true;
    return false;
}

int find_group(const std::vector<Element>& doc, const std::string& cls, const std::string& name, int within = -1) {
    for (int i = 0; i < static_cast<int>(doc.size()); ++i)
        if (doc[i].name == "g" && doc[i].attrs.count("class") && doc[i].attrs.at("class") == cls &&
            doc[i].attrs.at("data-name") == name && (within < 0 || inside(doc, i, within)))
            return i;
    return -1;
}

struct P {
    double x, y;
};

// The points of each polyline of a curve group, in order.
std::vector<std::vector<P>> polylines(const std::vector<Element>& doc, int group) {
    std::vector<std::vector<P>> lines;
    for (int i = 0; i < static_cast<int>(doc.size()); ++i) {
        if (doc[i].name != "polyline" || doc[i].parent != group) continue;
        std::vector<P> points;
        std::istringstream in(doc[i].attrs.at("points"));
        std::string pair;
        while (in >> pair) {
            const size_t comma = pair.find(',');
            points.push_back({std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1))});
        }
        lines.push_back(points);
    }
    return lines;
}

std::vector<P> circles(const std::vector<Element>& doc, int group) {
    std::vector<P> points;
    for (int i = 0; i < static_cast<int>(doc.size()); ++i)
        if (doc[i].name == "circle" && doc[i].parent == group)
            points.push_back({std::stod(doc[i].attrs.at("cx")), std::stod(doc[i].attrs.at("cy"))});
    return points;
}

struct Frame {
    double left, top, right, bottom;
};

// The plot area: the panel's black-framed rectangle.
Frame frame_of(const std::vector<Element>& doc, int panel) {
    for (int i = 0; i < static_cast<int>(doc.size()); ++i)
        if (doc[i].name == "rect" && doc[i].parent == panel && doc[i].attrs.count("stroke") &&
            doc[i].attrs.at("stroke") == "#000000") {
            const double x = std::stod(doc[i].attrs.at("x")), y = std::stod(doc[i].attrs.at("y"));
            return {x, y, x + std::stod(doc[i].attrs.at("width")), y + std::stod(doc[i].attrs.at("height"))};
        }
    FAIL("no plot frame in the panel");
    return {};
}

// Tick labels as (value, pixel): y labels are anchored "end" left of the frame (pixel = y - 4); x
// labels "middle" below it (pixel = x; a 10^k label sits 3 px left of its tick).
std::vector<std::pair<double, double>> tick_labels(const std::vector<Element>& doc, int panel, bool y_axis) {
    std::vector<std::pair<double, double>> ticks;
    for (int i = 0; i < static_cast<int>(doc.size()); ++i) {
        const Element& e = doc[i];
        if (e.name != "text" || e.parent != panel || e.attrs.count("transform")) continue;
        if ((e.attrs.at("text-anchor") == "end") != y_axis || e.attrs.at("text-anchor") == "start") continue;
        std::optional<std::string> exponent;
        for (int j = i + 1; j < static_cast<int>(doc.size()) && doc[j].parent == i; ++j)
            if (doc[j].name == "tspan") exponent = doc[j].text;
        char* end = nullptr;
        const double base = std::strtod(e.text.c_str(), &end);
        if (end == e.text.c_str() || *end != '\0') continue;   // the axis label, not a number
        const double value = exponent ? std::pow(base, std::stod(*exponent)) : base;
        const double pixel = y_axis ? std::stod(e.attrs.at("y")) - 4 : std::stod(e.attrs.at("x")) + (exponent ? 3 : 0);
        ticks.emplace_back(value, pixel);
    }
    return ticks;
}

// The value at a pixel, by the line (or log line) through the first and last tick labels.
double value_at(const std::vector<std::pair<double, double>>& ticks, double pixel, bool log = false) {
    REQUIRE(ticks.size() >= 2);
    auto [v0, p0] = ticks.front();
    auto [v1, p1] = ticks.back();
    if (log) v0 = std::log10(v0), v1 = std::log10(v1);
    const double v = v0 + (pixel - p0) * (v1 - v0) / (p1 - p0);
    return log ? std::pow(10.0, v) : v;
}

callbacks::History make_history(std::vector<std::pair<std::string, std::vector<double>>> metrics) {
    callbacks::History h;
    h.history = std::move(metrics);
    for (size_t i = 0; i < h.history.front().second.size(); ++i) h.epoch.push_back(static_cast<int>(i));
    return h;
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::string t = (fs::temp_directory_path() / "kerascpp-plots-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() { fs::remove_all(path); }
    std::vector<std::string> files() const {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(path)) names.push_back(entry.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

// PATH set for one scope (the dot lookups read it).
struct ScopedPath {
    std::string old;
    explicit ScopedPath(const std::string& value) : old(std::getenv("PATH") ? std::getenv("PATH") : "") {
        ::setenv("PATH", value.c_str(), 1);
    }
    ~ScopedPath() { ::setenv("PATH", old.c_str(), 1); }
};

bool dot_installed() {
    const char* path = std::getenv("PATH");
    std::istringstream folders(path ? path : "");
    std::string folder;
    while (std::getline(folders, folder, ':'))
        if (!folder.empty() && ::access((folder + "/dot").c_str(), X_OK) == 0) return true;
    return false;
}

}  // namespace

TEST_CASE("plot_history: a panel per metric, a polyline per curve whose points map back to the data") {
    TempDir dir;
    const std::vector<double> loss = {0.69, 0.52, 0.41, 0.35, 0.31}, val_loss = {0.65, 0.55, 0.47, 0.46, 0.48};
    const std::vector<double> acc = {0.55, 0.74, 0.82, 0.86, 0.88}, val_acc = {0.61, 0.72, 0.78, 0.79, 0.785};
    const auto history = make_history({{"loss", loss}, {"accuracy", acc}, {"val_loss", val_loss}, {"val_accuracy", val_acc}});
    const fs::path path = dir.path / "curves.svg";
    utils::plot_history(history, path.string());
    const auto doc = parse_xml(read_file(path));

    const std::pair<std::string, std::vector<std::pair<std::string, const std::vector<double>*>>> panels[] = {
        {"loss", {{"loss", &loss}, {"val_loss", &val_loss}}},
        {"accuracy", {{"accuracy", &acc}, {"val_accuracy", &val_acc}}}};
    for (const auto& [title, curves] : panels) {
        CAPTURE(title);
        const int panel = find_group(doc, "panel", title);
        REQUIRE(panel >= 0);
        const Frame frame = frame_of(doc, panel);
        const auto xs = tick_labels(doc, panel, false), ys = tick_labels(doc, panel, true);
        for (const auto& [name, values] : curves) {
            CAPTURE(name);
            const int curve = find_group(doc, "curve", name, panel);
            REQUIRE(curve >= 0);
            const auto lines = polylines(doc, curve);
            REQUIRE(lines.size() == 1);
            REQUIRE(lines[0].size() == values->size());
            CHECK(circles(doc, curve).size() == values->size());   // short runs mark each epoch
            for (size_t i = 0; i < values->size(); ++i) {
                const P p = lines[0][i];
                CHECK(p.x > frame.left);   // the axes cover the data, with a margin
                CHECK(p.x < frame.right);
                CHECK(p.y > frame.top);
                CHECK(p.y < frame.bottom);
                CHECK(value_at(xs, p.x) == doctest::Approx(i + 1.0).epsilon(0.01));    // epochs 1..5
                CHECK(value_at(ys, p.y) == doctest::Approx((*values)[i]).epsilon(0.002));
            }
        }
        for (const auto& [value, pixel] : xs) CHECK(value == std::round(value));   // whole epochs only
    }
    CHECK(find_group(doc, "panel", "val_loss") < 0);   // validation curves share their metric's panel
    CHECK(find_group(doc, "legend", "loss") >= 0);
}

TEST_CASE("plot_history: a NaN is a gap in the curve, an all-NaN curve says so in the legend") {
    TempDir dir;
    const double nan = std::nan(""), inf = INFINITY;
    const auto history = make_history({{"loss", {0.9, 0.8, nan, 0.6, 0.5, inf}}, {"val_loss", {nan, nan, nan, nan, nan, nan}}});
    const fs::path path = dir.path / "nan.svg";
    utils::plot_history(history, path.string());
    const std::string svg = read_file(path);
    const auto doc = parse_xml(svg);
    const int curve = find_group(doc, "curve", "loss");
    const auto lines = polylines(doc, curve);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].size() == 2);
    CHECK(lines[1].size() == 2);
    CHECK(polylines(doc, find_group(doc, "curve", "val_loss")).empty());
    CHECK(svg.find("val_loss (no finite values)") != std::string::npos);
    CHECK(svg.find("nan") == std::string::npos);   // no NaN coordinate reached the file
    CHECK(svg.find("inf") == std::string::npos);
}

TEST_CASE("plot_history: errors are ValueErrors and leave the file alone") {
    TempDir dir;
    const fs::path path = dir.path / "curves.svg";
    { std::ofstream(path) << "old"; }
    callbacks::History empty;
    CHECK_THROWS_WITH_AS(utils::plot_history(empty, path.string()), doctest::Contains("no epochs"), ValueError);
    empty.history = {{"loss", {}}};
    CHECK_THROWS_AS(utils::plot_history(empty, path.string()), ValueError);
    const auto history = make_history({{"loss", {1.0, 0.5}}, {"val_loss", {1.1, 0.7}}});
    CHECK_THROWS_WITH_AS(utils::plot_history(history, path.string(), {.metrics = {"accuracy"}}),
                         "plot_history: the history has no metric 'accuracy' (it has: loss, val_loss)", ValueError);
    CHECK_THROWS_WITH_AS(utils::plot_history(history, (dir.path / "curves.png").string()),
                         doctest::Contains("give a path ending in '.svg'"), ValueError);
    CHECK_THROWS_AS(utils::plot_history(history, path.string(), {.panel_width = 10}), ValueError);
    CHECK_THROWS_WITH_AS(utils::plot_history(history, (dir.path / "no" / "such" / "dir.svg").string()),
                         doctest::Contains("does not exist"), ValueError);
    CHECK(read_file(path) == "old");
    CHECK(dir.files() == std::vector<std::string>{"curves.svg"});
}

TEST_CASE("plot_history: written atomically (replaces the old file, leaves no temporary behind)") {
    TempDir dir;
    const fs::path path = dir.path / "curves.svg";
    { std::ofstream(path) << "old"; }
    const auto history = make_history({{"loss", {1.0, 0.5, 0.25}}});
    utils::plot_history(history, path.string(), {.metrics = {"loss"}, .title = "Training <b> & \"more\""});
    const std::string svg = read_file(path);
    CHECK(svg.starts_with("<?xml"));
    CHECK(svg.find(">Training &lt;b&gt; &amp; &quot;more&quot;</text>") != std::string::npos);   // text, not markup
    CHECK(dir.files() == std::vector<std::string>{"curves.svg"});
    parse_xml(svg);
}

TEST_CASE("plot_history: one epoch is a marker, many metrics go in rows of 3") {
    TempDir dir;
    const fs::path path = dir.path / "one.svg";
    utils::plot_history(make_history({{"loss", {0.5}}, {"a", {1}}, {"b", {2}}, {"c", {3}}}), path.string());
    const auto doc = parse_xml(read_file(path));
    CHECK(polylines(doc, find_group(doc, "curve", "loss")).empty());
    CHECK(circles(doc, find_group(doc, "curve", "loss")).size() == 1);
    CHECK(doc.front().attrs.at("width") == "1320");    // 3 columns of 440
    CHECK(doc.front().attrs.at("height") == "660");    // 2 rows of 330
}

TEST_CASE("plot_history: very large and very small values get scientific tick labels of one width") {
    TempDir dir;
    const std::vector<double> big = {2.1e6, 9e5, 4e5, 1.2e5}, tiny = {3e-5, 1e-5, 4e-6, 2e-6};
    const fs::path path = dir.path / "scales.svg";
    utils::plot_history(make_history({{"big", big}, {"tiny", tiny}}), path.string());
    const auto doc = parse_xml(read_file(path));
    for (const auto& [name, values, label] : {std::tuple{"big", &big, "5.0e+05"}, std::tuple{"tiny", &tiny, "1.0e-05"}}) {
        CAPTURE(name);
        const int panel = find_group(doc, "panel", name);
        const auto ys = tick_labels(doc, panel, true);
        const std::string svg = read_file(path);
        CHECK(svg.find(std::string(">") + label + "</text>") != std::string::npos);
        const auto line = polylines(doc, find_group(doc, "curve", name, panel)).at(0);
        for (size_t i = 0; i < values->size(); ++i)
            CHECK(value_at(ys, line[i].y) == doctest::Approx((*values)[i]).epsilon(0.002));
    }
}

TEST_CASE("plot_lr_find: loss against a log learning-rate axis, suggestions marked and named") {
    TempDir dir;
    std::vector<double> lrs, losses;
    for (int i = 0; i < 100; ++i) {
        const double lr = 1e-7 * std::pow(10.0, 8.0 * i / 99);   // 1e-7 .. 10, fastai's sweep
        lrs.push_back(lr);
        const double t = std::log10(lr);
        losses.push_back(2.3 - 1.5 / (1 + std::exp(-(t + 3.5) * 2)) + (t > -1 ? std::pow(t + 1, 2) * 3 : 0));
    }
    const std::vector<std::pair<std::string, double>> suggestions = {
        {"valley", 2.5e-4}, {"steepest", 3.2e-4}, {"minimum", 1.0e-2}};
    const fs::path path = dir.path / "lr.svg";
    utils::plot_lr_find(lrs, losses, suggestions, path.string());
    const auto doc = parse_xml(read_file(path));
    const int panel = find_group(doc, "panel", "");
    REQUIRE(panel >= 0);
    const auto xs = tick_labels(doc, panel, false), ys = tick_labels(doc, panel, true);
    REQUIRE(xs.size() >= 6);   // the decades 1e-7 .. 1
    CHECK(xs.front().first == doctest::Approx(1e-7));
    const auto lines = polylines(doc, find_group(doc, "curve", "loss"));
    REQUIRE(lines.size() == 1);
    REQUIRE(lines[0].size() == 95);   // fastai's skip_end=5
    for (size_t i = 0; i < 95; i += 7) {
        CHECK(value_at(xs, lines[0][i].x, true) == doctest::Approx(lrs[i]).epsilon(0.01));
        CHECK(value_at(ys, lines[0][i].y) == doctest::Approx(losses[i]).epsilon(0.01));
    }
    // Equal steps in log(lr) are equal steps in pixels: the axis is logarithmic.
    CHECK(lines[0][50].x - lines[0][40].x == doctest::Approx(lines[0][20].x - lines[0][10].x).epsilon(0.01));
    const char* names[] = {"valley: 2.50e-04", "steepest: 3.20e-04", "minimum: 1.00e-02"};
    for (size_t k = 0; k < 3; ++k) {
        CAPTURE(names[k]);
        const int group = find_group(doc, "curve", names[k]);
        REQUIRE(group >= 0);
        const auto dots = circles(doc, group);
        REQUIRE(dots.size() == 1);
        CHECK(value_at(xs, dots[0].x, true) == doctest::Approx(suggestions[k].second).epsilon(0.01));
    }
    // The valley's dot sits on the curve: 2.5e-4 is sweep point 42 (log10 -3.602 = -7 + 8 * 42.05 / 99).
    const auto valley = circles(doc, find_group(doc, "curve", names[0]))[0];
    CHECK(value_at(ys, valley.y) == doctest::Approx(losses[42]).epsilon(0.01));

    utils::plot_lr_find(lrs, losses, {}, path.string(), {.skip_end = 0});
    CHECK(polylines(parse_xml(read_file(path)), find_group(parse_xml(read_file(path)), "curve", "loss"))[0].size() == 100);
}

TEST_CASE("plot_lr_find: a short sweep spans less than a decade and still gets labelled ticks") {
    TempDir dir;
    const std::vector<double> lrs = {1e-3, 2e-3, 3e-3, 5e-3}, losses = {1.0, 0.9, 0.85, 0.95};
    const fs::path path = dir.path / "short.svg";
    utils::plot_lr_find(lrs, losses, {{"valley", 2e-3}}, path.string(), {.skip_end = 0});
    const auto doc = parse_xml(read_file(path));
    const auto xs = tick_labels(doc, find_group(doc, "panel", ""), false);
    REQUIRE(xs.size() >= 2);
    const auto lines = polylines(doc, find_group(doc, "curve", "loss"));
    for (size_t i = 0; i < lrs.size(); ++i)
        CHECK(value_at(xs, lines[0][i].x, true) == doctest::Approx(lrs[i]).epsilon(0.01));
}

TEST_CASE("plot_lr_find: Model::lr_find's result, its three suggestions named, a NaN one left out") {
    TempDir dir;
    LRFinderResult found;
    for (int i = 0; i < 40; ++i) {
        found.lrs.push_back(1e-6 * std::pow(10.0, i / 5.0));
        found.losses.push_back(1.0 + 0.01 * (i - 20) * (i - 20));
    }
    found.valley = found.lrs[12];
    found.steepest = found.lrs[8];
    found.minimum = found.lrs[20] / 10;
    const fs::path path = dir.path / "found.svg";
    utils::plot_lr_find(found, path.string(), {.skip_end = 0});
    auto doc = parse_xml(read_file(path));
    const auto xs = tick_labels(doc, find_group(doc, "panel", ""), false);
    const std::pair<const char*, double> expected[] = {{"valley: 2.51e-04", found.valley},
                                                       {"steepest: 3.98e-05", found.steepest},
                                                       {"minimum/10: 1.00e-03", found.minimum}};
    for (const auto& [name, lr] : expected) {
        CAPTURE(name);
        const int group = find_group(doc, "curve", name);
        REQUIRE(group >= 0);
        CHECK(value_at(xs, circles(doc, group).at(0).x, true) == doctest::Approx(lr).epsilon(0.01));
    }
    found.steepest = std::nan("");
    utils::plot_lr_find(found, path.string(), {.skip_end = 0});
    doc = parse_xml(read_file(path));
    CHECK(find_group(doc, "curve", "valley: 2.51e-04") >= 0);
    CHECK(find_group(doc, "curve", "steepest: nan") < 0);
    CHECK(read_file(path).find("steepest") == std::string::npos);
}

TEST_CASE("plot_lr_find: bad inputs are ValueErrors naming the value") {
    TempDir dir;
    const std::string path = (dir.path / "lr.svg").string();
    const std::vector<double> lrs = {1e-4, 1e-3, 0.0}, losses = {1, 2, 3};
    CHECK_THROWS_WITH_AS(utils::plot_lr_find(lrs, losses, {}, path),
                         "plot_lr_find: learning rates go on a log axis and must be finite and > 0; lrs[2] is 0",
                         ValueError);
    const std::vector<double> good = {1e-4, 1e-3, 1e-2};
    CHECK_THROWS_WITH_AS(utils::plot_lr_find(good, std::vector<double>{1, 2}, {}, path),
                         "plot_lr_find: lrs and losses differ in length (3 and 2)", ValueError);
    CHECK_THROWS_WITH_AS(utils::plot_lr_find(good, losses, {{"valley", std::nan("")}}, path),
                         "plot_lr_find: the suggestion 'valley' must be a finite learning rate > 0 (got nan)", ValueError);
    CHECK_THROWS_AS(utils::plot_lr_find(std::vector<double>{1e-3}, std::vector<double>{1}, {}, path), ValueError);
    CHECK(dir.files().empty());
}

namespace {

Sequential small_sequential() {
    Sequential model("seq");
    model.add(layers::Input({8}, {.name = "features"}));
    model.add(layers::Dense(4, {.activation = "relu", .name = "hidden"}));
    model.add(layers::Dense(1, {.activation = "sigmoid", .name = "out"}));
    return model;
}

Model two_input_model() {
    auto a = keras::Input({3}, {.name = "a"}), b = keras::Input({5}, {.name = "b"});
    auto da = (*share(layers::Dense(4, {.name = "da"})))(a);
    auto merged = (*share(layers::Concatenate({.name = "merge"})))({da, b});
    auto out = (*share(layers::Dense(1, {.activation = "sigmoid", .name = "prob"})))(merged);
    return Model({a, b}, {out}, "two_inputs");
}

}  // namespace

TEST_CASE("model_to_dot: a Sequential, with Keras's defaults and with every option") {
    Sequential model = small_sequential();
    CHECK(utils::model_to_dot(model) ==
          "digraph G {\n"
          "  graph [rankdir=TB, concentrate=true, dpi=96];\n"
          "  node [shape=record, fontname=\"Helvetica\"];\n"
          "  \"features\" [label=\"features: InputLayer\"];\n"
          "  \"hidden\" [label=\"hidden: Dense\"];\n"
          "  \"out\" [label=\"out: Dense\"];\n"
          "  \"features\" -> \"hidden\";\n"
          "  \"hidden\" -> \"out\";\n"
          "}\n");
    model.layers()[0]->trainable = false;
    CHECK(utils::model_to_dot(model, {.show_shapes = true, .show_layer_names = true, .rankdir = "LR", .dpi = 200,
                                      .show_layer_activations = true, .show_trainable = true}) ==
          "digraph G {\n"
          "  graph [rankdir=LR, concentrate=true, dpi=200];\n"
          "  node [shape=record, fontname=\"Helvetica\"];\n"
          "  \"features\" [label=\"T|features: InputLayer|{input:|output:}|{{[(None, 8)]}|{[(None, 8)]}}\"];\n"
          "  \"hidden\" [label=\"NT|{hidden: Dense|relu}|{input:|output:}|{{(None, 8)}|{(None, 4)}}\"];\n"
          "  \"out\" [label=\"T|{out: Dense|sigmoid}|{input:|output:}|{{(None, 4)}|{(None, 1)}}\"];\n"
          "  \"features\" -> \"hidden\";\n"
          "  \"hidden\" -> \"out\";\n"
          "}\n");
    CHECK(utils::model_to_dot(model, {.show_layer_names = false}).find("\"hidden\" [label=\"Dense\"]") !=
          std::string::npos);
    // A name is only text: record syntax and quotes in it are escaped.
    Sequential odd("odd");
    odd.add(layers::Input({2}, {.name = "in\"put"}));
    odd.add(layers::Dense(1, {.name = "a|b{c}<d>"}));
    const std::string text = utils::model_to_dot(odd);
    CHECK(text.find("  \"in\\\"put\" [label=\"in\\\"put: InputLayer\"];\n") != std::string::npos);
    CHECK(text.find("  \"a|b{c}<d>\" [label=\"a\\|b\\{c\\}\\<d\\>: Dense\"];\n") != std::string::npos);
    CHECK_THROWS_WITH_AS(utils::model_to_dot(model, {.rankdir = "TD"}),
                         "plot_model: rankdir must be 'TB', 'LR', 'BT' or 'RL' (got 'TD')", ValueError);
}

// The layers in the graph's order (summary()'s): each input just before its first use.
TEST_CASE("model_to_dot: a functional model of two inputs, shapes and edges from its graph") {
    Model model = two_input_model();
    CHECK(utils::model_to_dot(model, {.show_shapes = true}) ==
          "digraph G {\n"
          "  graph [rankdir=TB, concentrate=true, dpi=96];\n"
          "  node [shape=record, fontname=\"Helvetica\"];\n"
          "  \"a\" [label=\"a: InputLayer|{input:|output:}|{{[(None, 3)]}|{[(None, 3)]}}\"];\n"
          "  \"da\" [label=\"da: Dense|{input:|output:}|{{(None, 3)}|{(None, 4)}}\"];\n"
          "  \"b\" [label=\"b: InputLayer|{input:|output:}|{{[(None, 5)]}|{[(None, 5)]}}\"];\n"
          "  \"merge\" [label=\"merge: Concatenate|{input:|output:}|{{[(None, 4), (None, 5)]}|{(None, 9)}}\"];\n"
          "  \"prob\" [label=\"prob: Dense|{input:|output:}|{{(None, 9)}|{(None, 1)}}\"];\n"
          "  \"a\" -> \"da\";\n"
          "  \"da\" -> \"merge\";\n"
          "  \"b\" -> \"merge\";\n"
          "  \"merge\" -> \"prob\";\n"
          "}\n");
}

TEST_CASE("model_to_dot: wrappers, a shared layer, an unbuilt Sequential") {
    auto x = keras::Input({6, 3}, {.name = "seq_in"});
    layers::LSTMOptions lstm_options;
    lstm_options.name = "enc";
    auto encoded = (*share(layers::Bidirectional(layers::LSTM(4, lstm_options), {.name = "bi"})))(x);
    auto short_in = keras::Input({8}, {.name = "short"}), long_in = keras::Input({8}, {.name = "long"});
    auto shared = share(layers::Dense(2, {.name = "shared"}));
    auto merged = (*share(layers::Concatenate({.name = "cat"})))({encoded, (*shared)(short_in), (*shared)(long_in)});
    Model model({x, short_in, long_in}, {merged}, "mixed");
    const std::string text = utils::model_to_dot(model, {.show_shapes = true});
    CAPTURE(text);
    // The wrapped layer as the wrapper holds it: Bidirectional's forward copy is "forward_<name>".
    CHECK(text.find("  \"bi\" [label=\"bi(forward_enc): Bidirectional(LSTM)|{input:|output:}|{{(None, 6, 3)}|{(None, 8)}}\"];\n") !=
          std::string::npos);
    // Called twice with the same shapes: one node, both edges.
    CHECK(text.find("  \"shared\" [label=\"shared: Dense|{input:|output:}|{{(None, 8)}|{(None, 2)}}\"];\n") !=
          std::string::npos);
    CHECK(text.find("  \"short\" -> \"shared\";\n  \"long\" -> \"shared\";\n") != std::string::npos);
    CHECK(text.find("  \"shared\" -> \"cat\";\n") != std::string::npos);

    auto flat = keras::Input({8}, {.name = "flat"}), steps = keras::Input({3, 8}, {.name = "steps"});
    auto reused = share(layers::Dense(2, {.name = "reused"}));
    Model differing({flat, steps}, {(*reused)(flat), (*reused)(steps)}, "differing");
    CHECK(utils::model_to_dot(differing, {.show_shapes = true})
              .find("\"reused\" [label=\"reused: Dense|{input:|output:}|{{multiple}|{multiple}}\"]") != std::string::npos);

    Sequential unbuilt("unbuilt");   // no Input: built on its first data, so no shapes yet
    unbuilt.add(layers::Dense(3, {.name = "first"}));
    unbuilt.add(layers::Dense(1, {.name = "second"}));
    CHECK(utils::model_to_dot(unbuilt, {.show_shapes = true}) ==
          "digraph G {\n"
          "  graph [rankdir=TB, concentrate=true, dpi=96];\n"
          "  node [shape=record, fontname=\"Helvetica\"];\n"
          "  \"first\" [label=\"first: Dense|{input:|output:}|{{?}|{?}}\"];\n"
          "  \"second\" [label=\"second: Dense|{input:|output:}|{{?}|{?}}\"];\n"
          "  \"first\" -> \"second\";\n"
          "}\n");
}

TEST_CASE("plot_model: without dot on PATH, the .dot file beside and a warning naming it") {
    TempDir dir;
    const ScopedPath no_tools(dir.path.string());   // a folder without dot
    Model model = two_input_model();
    std::string written;
    const std::string warning =
        test_helpers::captured(std::cerr, [&] { written = utils::plot_model(model, (dir.path / "model.png").string()); });
    CHECK(written == (dir.path / "model.dot").string());
    CHECK(warning.find("'" + written + "'") != std::string::npos);
    CHECK(warning.find("not on PATH") != std::string::npos);
    CHECK(read_file(written) == utils::model_to_dot(model));
    CHECK(dir.files() == std::vector<std::string>{"model.dot"});
    CHECK_THROWS_WITH_AS(utils::plot_model(model, (dir.path / "model.bmp").string()),
                         doctest::Contains("the extension must be one of png, svg, pdf"), ValueError);
}

TEST_CASE("plot_model: a failing dot is a RuntimeError with the command and its message; the file is kept") {
    TempDir dir;
    const fs::path fake = dir.path / "dot";
    { std::ofstream(fake) << "#!/bin/sh\necho 'Error: syntax error in line 1' >&2\necho partial > \"$3\"\nexit 3\n"; }
    fs::permissions(fake, fs::perms::owner_all);
    const ScopedPath fake_dot(dir.path.string() + ":/usr/bin:/bin");
    const fs::path target = dir.path / "model.png";
    { std::ofstream(target) << "old picture"; }
    Model model = two_input_model();
    try {
        utils::plot_model(model, target.string());
        FAIL("no error");
    } catch (const RuntimeError& e) {
        const std::string message = e.what();
        CHECK(message.find(fake.string() + " -Tpng -o ") != std::string::npos);
        CHECK(message.find("exit status 3") != std::string::npos);
        CHECK(message.find("Error: syntax error in line 1") != std::string::npos);
    }
    CHECK(read_file(target) == "old picture");
    CHECK(dir.files() == std::vector<std::string>{"dot", "model.png"});
}

TEST_CASE("plot_model: rendered by Graphviz when dot is installed") {
    if (!dot_installed()) {
        MESSAGE("skipped: Graphviz's dot is not on PATH");
        return;
    }
    TempDir dir;
    Model model = two_input_model();
    const std::string png = utils::plot_model(model, (dir.path / "model.png").string(), {.show_shapes = true});
    CHECK(png == (dir.path / "model.png").string());
    CHECK(read_file(png).starts_with("\x89PNG\r\n\x1a\n"));
    const std::string svg = utils::plot_model(model, (dir.path / "model.svg").string());
    const std::string text = read_file(svg);
    CHECK(text.find("<svg") != std::string::npos);
    CHECK(text.find("merge: Concatenate") != std::string::npos);
    CHECK(text.find("scale(1.33") == std::string::npos);   // no dpi in an SVG: Graphviz would cut it off
    CHECK(read_file(utils::plot_model(model, (dir.path / "model").string())).starts_with("\x89PNG"));
    CHECK(dir.files() == std::vector<std::string>{"model", "model.png", "model.svg"});
}
