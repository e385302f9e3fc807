// Test helpers that need HDF5 (suites linked with it): rewriting a saved model's config.
#pragma once

#include <stdexcept>
#include <string>

#include <hdf5.h>
#include <nlohmann/json.hpp>

namespace test_helpers {

// An .h5 model file's model_config attribute (a variable-length string), read through the HDF5 C API
// so tests do not depend on kerascpp's own reader.
inline std::string read_model_config(const std::string& path) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) throw std::runtime_error("read_model_config: cannot open " + path);
    const hid_t attr = H5Aopen(f, "model_config", H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    // The file's character set (UTF-8 as Keras writes it): libhdf5 1.14 refuses to convert UTF-8 to ASCII.
    const hid_t file_type = H5Aget_type(attr);
    H5Tset_cset(type, H5Tget_cset(file_type));
    H5Tclose(file_type);
    char* p = nullptr;
    H5Aread(attr, type, &p);
    std::string out = p ? p : "";
    H5free_memory(p);
    H5Tclose(type);
    H5Aclose(attr);
    H5Fclose(f);
    return out;
}

// Replaces an .h5 model file's model_config attribute (a variable-length string, as we write it) with
// raw text (which need not be valid JSON), to test how load_model reacts to a config it cannot rebuild.
inline void rewrite_model_config_text(const std::string& path, const std::string& text) {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) throw std::runtime_error("rewrite_model_config: cannot open " + path);
    H5Adelete(file, "model_config");
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file, "model_config", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = text.c_str();
    H5Awrite(attr, type, &p);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(file);
}

inline void rewrite_model_config(const std::string& path, const nlohmann::json& config) {
    rewrite_model_config_text(path, config.dump());
}

}  // namespace test_helpers
