// A whole text file for the doc-checking tests (the layers table, the porting table, the reference
// pages, the custom-layers page): a REQUIRE failure naming the path when it cannot be read.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace test_helpers {

inline std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace test_helpers
