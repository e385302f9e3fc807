// The fixture of real Keras outputs written by tests/fixtures/gen_text_fixtures.py.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

inline const nlohmann::json& text_fixtures() {
    static const nlohmann::json fixtures = [] {
        const std::string path = std::string(KERASCPP_TESTS_DIR) + "/fixtures/text_fixtures.json";
        std::ifstream in(path);
        if (!in) throw std::runtime_error("cannot open " + path);
        return nlohmann::json::parse(in);
    }();
    return fixtures;
}
