// keras::to_string(Tensor) / operator<< against numpy's str() of the same arrays: the cases and the
// text numpy 2.x printed are in tests/fixtures/tensor_print/tensor_print.txt (gen_tensor_print.py).
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "keras/tensor.hpp"

using keras::DType;
using keras::Shape;
using keras::Tensor;

namespace {

struct Case {
    std::string name, dtype, expected;
    Shape shape;
    std::vector<std::string> values;
};

// The words after the line's first one.
std::vector<std::string> words_after_key(const std::string& line) {
    std::istringstream in(line);
    std::string word;
    std::vector<std::string> words;
    in >> word;
    while (in >> word) words.push_back(word);
    return words;
}

std::vector<Case> read_cases() {
    std::ifstream in(std::string(KERASCPP_TESTS_DIR) + "/fixtures/tensor_print/tensor_print.txt");
    REQUIRE(in);
    std::vector<Case> cases;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("case ", 0) != 0) continue;
        Case c;
        c.name = line.substr(5);
        std::getline(in, line);
        c.dtype = line.substr(6);
        std::getline(in, line);
        for (const std::string& w : words_after_key(line)) c.shape.push_back(std::stoll(w));
        std::getline(in, line);
        c.values = words_after_key(line);
        std::getline(in, line);
        const int n = std::stoi(line.substr(9));
        for (int i = 0; i < n; ++i) {
            std::getline(in, line);
            c.expected += (i ? "\n" : "") + line;
        }
        cases.push_back(c);
    }
    return cases;
}

Tensor tensor_of(const Case& c) {
    if (c.dtype == "float32") {
        std::vector<float> v;
        for (const std::string& w : c.values) v.push_back(std::stof(w));   // reads "nan", "inf", "-inf"
        return Tensor(v, c.shape);
    }
    if (c.dtype == "int32") {
        std::vector<int32_t> v;
        for (const std::string& w : c.values) v.push_back(static_cast<int32_t>(std::stol(w)));
        return Tensor(v, c.shape);
    }
    REQUIRE(c.dtype == "int64");
    std::vector<int64_t> v;
    for (const std::string& w : c.values) v.push_back(std::stoll(w));
    return Tensor(v, c.shape);
}

}  // namespace

TEST_CASE("to_string prints a tensor as numpy's str() prints the same array") {
    const std::vector<Case> cases = read_cases();
    REQUIRE(cases.size() >= 30);
    for (const Case& c : cases) {
        CAPTURE(c.name);
        CHECK(keras::to_string(tensor_of(c)) == c.expected);
    }
}

TEST_CASE("operator<< writes to_string's text; an undefined tensor says so") {
    std::ostringstream out;
    out << Tensor(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, Shape{2, 2});
    CHECK(out.str() == "[[0.1 0.2]\n [0.3 0.4]]");
    CHECK(keras::to_string(Tensor()) == "Tensor(undefined)");
}
