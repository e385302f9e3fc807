// docs/layers.md's table of every layer against the code and the tests: each layer the loader knows
// (the layer factory's and the cell factory's own "kerascpp can load: ..." lists) has a row, each row
// names a layer the loader knows (or says it is not in files at all, as Lambda), and each "yes" in the
// load Keras 2 / load Keras 3 / save columns names the files that back it: fixture generators run by
// real Keras for the load columns (tests/fixtures/*.py), a test program for save (tests/test_*.cpp),
// every one of which must exist and build the layer or name its class (`Conv1D(`, "Conv1D"). So a new layer
// without a row, a row for a removed one, or a "yes" without a file that uses the layer fails here.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "read_text.hpp"
#include "keras/keras.hpp"
#include "../layers/layer_factory.hpp"

using namespace keras;
namespace fs = std::filesystem;

using test_helpers::read_text;

namespace {

const fs::path kTests = fs::path(KERASCPP_TESTS_DIR);
const std::vector<std::string> kColumns = {"layer", "CPU", "GPU", "load Keras 2", "load Keras 3", "save"};

std::string trim(const std::string& s) {
    const size_t begin = s.find_first_not_of(' '), end = s.find_last_not_of(' ');
    return begin == std::string::npos ? "" : s.substr(begin, end - begin + 1);
}

// "| a | b |" -> {"a", "b"}
std::vector<std::string> cells_of(const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream in(line.substr(1));
    for (std::string cell; std::getline(in, cell, '|');) cells.push_back(trim(cell));
    return cells;
}

// The names a factory lists when asked for a class it does not know ("... kerascpp can load: A, B.").
std::set<std::string> known_names(const std::function<void()>& ask_for_unknown) {
    std::string message;
    try {
        ask_for_unknown();
    } catch (const ValueError& e) {
        message = e.what();
    }
    const std::string marker = "kerascpp can load: ";
    REQUIRE_MESSAGE(message.find(marker) != std::string::npos, "unexpected factory message: " << message);
    std::set<std::string> names;
    const std::string list = message.substr(message.find(marker) + marker.size());
    const std::regex word("\\w+");
    for (auto it = std::sregex_iterator(list.begin(), list.end(), word); it != std::sregex_iterator(); ++it)
        names.insert(it->str());
    return names;
}

std::set<std::string> registered_layers() {
    const layers::ConfigSource source{.keras_major = 3, .file = "x.h5"};
    auto names = known_names([&] { layers::layer_from_config("NoSuchLayer", nlohmann::json::object(), source); });
    for (const auto& cell : known_names([&] { layers::cell_from_config("NoSuchCell", nlohmann::json::object(), source); }))
        names.insert(cell);
    return names;
}

struct Row {
    std::string layer;                 // the first word of the first cell
    std::map<std::string, std::string> cells;
};

// The table whose header starts with kColumns: one Row per line after the separator.
std::vector<Row> layers_table() {
    std::stringstream page(read_text(kTests / ".." / "docs" / "layers.md"));
    std::vector<Row> rows;
    std::vector<std::string> header;
    for (std::string line; std::getline(page, line);) {
        if (line.rfind("|", 0) != 0) {
            if (!header.empty() && !rows.empty()) break;   // the end of the table
            continue;
        }
        const auto cells = cells_of(line);
        if (header.empty()) {
            if (cells.size() >= kColumns.size() && std::equal(kColumns.begin(), kColumns.end(), cells.begin()))
                header = cells;
            continue;
        }
        if (line.rfind("|---", 0) == 0) continue;
        REQUIRE_MESSAGE(cells.size() == header.size(), "docs/layers.md: this row has " << cells.size()
                                                           << " cells, the header " << header.size() << ": " << line);
        Row row;
        std::smatch name;
        REQUIRE_MESSAGE(std::regex_search(cells[0], name, std::regex("^`?(\\w+)")), "no layer name in: " << line);
        row.layer = name[1];
        for (size_t i = 0; i < header.size(); ++i) row.cells[header[i]] = cells[i];
        rows.push_back(row);
    }
    REQUIRE_MESSAGE(!rows.empty(), "docs/layers.md has no table headed | layer | CPU | GPU | load Keras 2 | ...");
    return rows;
}

// The files a cell names in backquotes, relative to tests/: `fixtures/gen_conv_fixtures.py`, `test_conv.cpp`.
std::vector<std::string> files_named(const std::string& cell) {
    std::vector<std::string> files;
    const std::regex quoted("`([\\w/.]+\\.(?:cpp|py))`");
    for (auto it = std::sregex_iterator(cell.begin(), cell.end(), quoted); it != std::sregex_iterator(); ++it)
        files.push_back((*it)[1]);
    return files;
}

// A file builds or names the layer: `Conv1D(`, `make_shared<Conv1D>`, `Conv1D conv(` / `Conv1D conv;`
// (a construction) or "Conv1D" / 'Conv1D' (a class name in a config); a word in a comment is not enough.
bool uses_layer(const std::string& text, const std::string& layer) {
    const std::string built = "\\b" + layer + "(\\s*[({>]|\\s+[a-z_]\\w*\\s*[({;=])";
    return std::regex_search(text, std::regex(built + "|[\"']" + layer + "[\"']"));
}

bool says_yes(const std::string& cell) { return cell.rfind("yes", 0) == 0; }

}  // namespace

TEST_CASE("docs/layers.md has a row for every layer the loader knows, and no other") {
    const auto registered = registered_layers();
    CHECK(registered.count("Conv1D") == 1);
    CHECK(registered.count("LSTMCell") == 1);
    std::set<std::string> in_table;
    for (const auto& row : layers_table()) {
        INFO("docs/layers.md row " << row.layer);
        CHECK_MESSAGE(in_table.insert(row.layer).second, "two rows for " << row.layer);
        // A layer the loader does not know can only be one the table says no file holds.
        const bool in_no_file = row.cells.at("load Keras 2").rfind("no", 0) == 0 &&
                                row.cells.at("load Keras 3").rfind("no", 0) == 0;
        if (registered.count(row.layer) == 0)
            CHECK_MESSAGE(in_no_file, row.layer << " is in the table but load_model does not know it");
    }
    for (const auto& name : registered) CHECK_MESSAGE(in_table.count(name) == 1, name << " has no row in docs/layers.md");
}

TEST_CASE("every yes in docs/layers.md's load and save columns names the files that check it") {
    for (const auto& row : layers_table()) {
        for (const auto& [column, cell] : row.cells) {
            if (column == "layer") continue;
            const auto files = files_named(cell);
            const bool load_column = column == "load Keras 2" || column == "load Keras 3";
            if (says_yes(cell) && (load_column || column == "save")) {
                INFO(row.layer << ", column '" << column << "': " << cell);
                // Load: an oracle file real Keras wrote; save: a test program that round-trips.
                const std::string kind = load_column ? "fixtures/" : "test_";
                const bool backed = std::any_of(files.begin(), files.end(),
                                                [&](const std::string& f) { return f.rfind(kind, 0) == 0; });
                CHECK_MESSAGE(backed, "a yes here needs a `" << kind << "...` file that checks it");
            }
            for (const auto& file : files) {
                INFO(row.layer << ", column '" << column << "' names tests/" << file);
                REQUIRE_MESSAGE(fs::exists(kTests / file), "tests/" << file << " does not exist");
                CHECK_MESSAGE(uses_layer(read_text(kTests / file), row.layer),
                              "tests/" << file << " never builds or names " << row.layer);
            }
        }
    }
}
