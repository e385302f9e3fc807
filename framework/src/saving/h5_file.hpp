// A small RAII layer over the HDF5 C API for Keras's .h5 files: files, groups, float32 datasets
// and string attributes (fixed- and variable-length, scalars and arrays, split like Keras when
// too big for an object header). Internal: not installed. Every failure is a keras::ValueError or
// keras::RuntimeError naming the file and the object; HDF5's own error printing is switched off.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <hdf5.h>

namespace keras::saving {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class H5Handle {
public:
    H5Handle() = default;
    explicit H5Handle(hid_t id) : id_(id) {}
    H5Handle(const H5Handle&) = delete;
    H5Handle& operator=(const H5Handle&) = delete;
    H5Handle(H5Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
    H5Handle& operator=(H5Handle&& other) noexcept;
    ~H5Handle() { close(); }
    hid_t get() const { return id_; }
    bool valid() const { return id_ >= 0; }
    void close();
    // Gives up ownership without closing (the caller closes it).
    hid_t release() { const hid_t id = id_; id_ = H5I_INVALID_HID; return id; }

private:
    hid_t id_ = H5I_INVALID_HID;
};

// A float32 array as Keras stores a weight: numpy shape and row-major values.
struct H5Array {
    std::vector<int64_t> shape;
    std::vector<float> values;
};

// Keras splits an attribute bigger than this into name0, name1, ... (HDF5's object header limit).
inline constexpr size_t kH5AttributeLimit = 64512;

class H5Group {
public:
    H5Group(H5Handle handle, std::string file, std::string path)
        : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)) {}
    hid_t id() const { return handle_.get(); }
    const std::string& path() const { return path_; }   // "/model_weights/lstm"
    const std::string& file() const { return file_; }

    bool has_group(const std::string& name) const;
    H5Group group(const std::string& name) const;          // ValueError when missing
    H5Group create_group(const std::string& name) const;

    bool has_attr(const std::string& name) const;
    // A string attribute, fixed- or variable-length; ValueError when missing or not a string.
    std::string string_attr(const std::string& name) const;
    // A string-array attribute (layer_names, weight_names), also when split into name0, name1, ...
    std::vector<std::string> string_array_attr(const std::string& name) const;
    bool has_string_array_attr(const std::string& name) const;
    // A scalar variable-length UTF-8 string (what h5py writes for a Python str).
    void write_string_attr(const std::string& name, const std::string& value) const;
    // A 1-D fixed-length byte-string array (numpy 'S' array), split like Keras when too big.
    void write_string_array_attr(const std::string& name, const std::vector<std::string>& values) const;

    bool has_dataset(const std::string& path) const;        // path may contain '/'
    // Converted to float32. check_shape sees the declared shape before anything is allocated and
    // throws when it is not the one the caller expects (a hostile file may declare any size); then
    // the size is checked against what the file can hold, so a forged shape cannot make us allocate
    // gigabytes either way.
    using ShapeCheck = std::function<void(const std::vector<int64_t>& declared)>;
    H5Array read_dataset(const std::string& path, const ShapeCheck& check_shape) const;
    std::vector<int64_t> dataset_shape(const std::string& path) const;
    // Creates intermediate groups of `path` as needed.
    void write_dataset(const std::string& path, const std::vector<int64_t>& shape, const float* values) const;
    // A scalar int64 dataset (Keras 3's optimizer "iteration"); reading accepts any integer or float type.
    void write_scalar_int64(const std::string& path, int64_t value) const;
    int64_t read_scalar_int64(const std::string& path) const;

    // "'/model_weights/lstm' in file 'm.h5'", for messages.
    std::string where(const std::string& name = "") const;

protected:
    H5Handle& handle() { return handle_; }

private:
    H5Handle handle_;
    std::string file_;
    std::string path_;
};

class H5File : public H5Group {
public:
    // Read-only. ValueError when missing, not HDF5 or unreadable (e.g. truncated).
    static H5File open(const std::string& filepath);
    // Creates (truncates) a file for writing.
    static H5File create(const std::string& filepath);
    // Flushes and closes; errors here are errors of the write (the destructor ignores them).
    void close();

private:
    H5File(H5Handle handle, std::string filepath);
};

// Stops HDF5 from printing its error stack to stderr (we turn failures into exceptions instead).
void silence_hdf5_errors();

}  // namespace keras::saving
