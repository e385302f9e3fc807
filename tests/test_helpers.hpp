// Small helpers the test suites share.
#pragma once

#include <cmath>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "keras/errors.hpp"
#include "keras/tensor.hpp"

namespace test_helpers {

// Runs f and returns the message of the E it throws ("<no exception>" when it throws nothing).
template <typename E = std::exception, typename F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "<no exception>";
}

// Runs f with `stream` redirected into a string and returns what f printed. Checks belong outside
// f: doctest reports on std::cout.
template <typename F>
std::string captured(std::ostream& stream, F&& f) {
    std::ostringstream buffer;
    std::streambuf* old = stream.rdbuf(buffer.rdbuf());
    try {
        f();
    } catch (...) {
        stream.rdbuf(old);
        throw;
    }
    stream.rdbuf(old);
    return buffer.str();
}

// A float32 tensor from double values.
inline keras::Tensor floats(const std::vector<double>& values, keras::Shape shape) {
    std::vector<float> f(values.begin(), values.end());
    return keras::Tensor(f, std::move(shape));
}

// The values a tensor holds, as doubles (whatever its dtype).
inline std::vector<double> values_of(const keras::Tensor& t) {
    std::vector<double> out(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = t.item(static_cast<int64_t>(i));
    return out;
}

// Deterministic, irregular float values, amplitude * sin(frequency * i + phase) (no RNG needed to
// reproduce a failure).
inline keras::Tensor wavy(const keras::Shape& shape, double phase, double frequency, double amplitude) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        v[static_cast<size_t>(i)] = static_cast<float>(std::sin(frequency * static_cast<double>(i) + phase) * amplitude);
    return keras::Tensor(v, shape);
}

}  // namespace test_helpers
