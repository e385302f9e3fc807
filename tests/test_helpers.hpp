// Small helpers the test suites share.
#pragma once

#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <hdf5.h>
#include <nlohmann/json.hpp>

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

// Replaces an .h5 model file's model_config attribute (a variable-length string, as we write it), to
// test how load_model reacts to a config it cannot rebuild.
inline void rewrite_model_config(const std::string& path, const nlohmann::json& config) {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) throw std::runtime_error("rewrite_model_config: cannot open " + path);
    H5Adelete(file, "model_config");
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file, "model_config", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const std::string text = config.dump();
    const char* p = text.c_str();
    H5Awrite(attr, type, &p);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(file);
}

}  // namespace test_helpers
