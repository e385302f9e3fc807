// Tensor: a shape, a dtype, a device and contiguous row-major storage (host memory, or device memory
// from the device's caching allocator). Copies share storage (like torch::Tensor); clone() makes a
// deep copy on the same device; to() is the only way between host and device.
#pragma once

#include "keras/export.hpp"

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "keras/device.hpp"

namespace keras {

namespace autodiff {
struct Node;
}

// A tensor's element type.
enum class DType { float32, int32, int64 };

// A tensor's sizes, outermost first; -1 stands for Keras's None in symbolic shapes.
using Shape = std::vector<int64_t>;

// "float32", "int32" or "int64".
KERAS_API std::string to_string(DType dtype);
// Keras-style shape text: "(None, 130, 100)" where -1 stands for None.
KERAS_API std::string shape_str(const Shape& shape);
// The product of the sizes; ValueError when it overflows int64.
KERAS_API int64_t num_elements(const Shape& shape);
// The multi-index of flat element i in a row-major tensor of this shape, as "[3, 17]".
KERAS_API std::string index_str(const Shape& shape, int64_t i);
// Bytes per element.
KERAS_API size_t dtype_size(DType dtype);

// The DType of a C++ element type: float, int32_t or int64_t.
template <typename T> constexpr DType dtype_of();
// float -> float32.
template <> constexpr DType dtype_of<float>() { return DType::float32; }
// int32_t -> int32.
template <> constexpr DType dtype_of<int32_t>() { return DType::int32; }
// int64_t -> int64.
template <> constexpr DType dtype_of<int64_t>() { return DType::int64; }

// An n-dimensional array: shape, dtype, device and shared contiguous storage (see the file's description).
class KERAS_API Tensor {
public:
    Tensor() = default;
    // Uninitialised storage of the given shape (zeros(), full() for filled ones).
    Tensor(Shape shape, DType dtype, Device device = Device::cpu());

    // A host tensor of `shape` holding `values` (float, int32_t or int64_t; the count must match).
    template <typename T>
    Tensor(const std::vector<T>& values, Shape shape) : Tensor(std::move(shape), dtype_of<T>()) {
        check_count(values.size());
        std::copy(values.begin(), values.end(), data<T>());
    }
    // A host tensor of `shape` copied from numel() values at `values`.
    template <typename T>
    Tensor(const T* values, Shape shape) : Tensor(std::move(shape), dtype_of<T>()) {
        std::copy(values, values + numel(), data<T>());
    }

    static Tensor zeros(Shape shape, DType dtype = DType::float32, Device device = Device::cpu());   // Zeros of a shape.
    static Tensor full(Shape shape, float value, Device device = Device::cpu());   // float32 filled with value.
    // Rows of token ids (ragged input must be padded first, see utils::pad_sequences).
    static Tensor from_rows(const std::vector<std::vector<int32_t>>& rows);
    static Tensor from_rows(const std::vector<std::vector<float>>& rows);

    bool defined() const { return storage_ != nullptr; }   // False for a default-constructed tensor.
    const Shape& shape() const { return shape_; }   // The sizes, outermost first.
    int64_t dim(int i) const;          // negative i counts from the end
    int ndim() const { return static_cast<int>(shape_.size()); }   // The number of axes.
    int64_t numel() const { return num_elements(shape_); }   // The number of elements.
    DType dtype() const { return dtype_; }   // The element type.
    Device device() const { return device_; }   // Where the storage is.
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }   // The storage's size in bytes.

    // Typed access to host memory; throws if T does not match dtype() or the tensor is not on the CPU
    // (a CUDA tensor must be copied with .to(Device::cpu()) first).
    template <typename T> T* data() { check_access(dtype_of<T>()); return static_cast<T*>(raw()); }
    template <typename T> const T* data() const { check_access(dtype_of<T>()); return static_cast<const T*>(raw()); }
    template <typename T> std::vector<T> to_vector() const {
        const T* p = data<T>();
        return std::vector<T>(p, p + numel());
    }
    // Element i of the flattened tensor converted to double, whatever the dtype (CPU only).
    double item(int64_t i = 0) const;

    // The storage address (a device address for CUDA tensors): for backends.
    void* raw() { return storage_ ? storage_->ptr : nullptr; }
    const void* raw() const { return storage_ ? storage_->ptr : nullptr; }

    Tensor clone() const;   // A deep copy on the same device.
    // Whether another tensor shares this one's storage (copies and reshapes do).
    bool storage_shared() const { return storage_.use_count() > 1; }
    // This tensor on `device`: itself when already there, else a copy (host <-> device).
    Tensor to(Device device) const;
    // Same storage, new shape with the same number of elements.
    Tensor reshape(Shape shape) const;
    // Rows [begin, end) of the first axis, copied.
    Tensor slice_rows(int64_t begin, int64_t end) const;
    // The given rows of the first axis, copied, in order.
    Tensor gather_rows(const std::vector<int64_t>& rows) const;
    Tensor astype(DType dtype) const;   // on a CUDA tensor: converted through the host
    void fill(float value);   // Sets every element (float32).
    void copy_from(const Tensor& other);   // same numel and dtype, from any device

    // Automatic differentiation (keras/autodiff.hpp): the recorded op that produced this tensor, or
    // null for a constant. Copies share it; the raw operations above (reshape, clone, ...) do not
    // carry it: keras::ops are the recorded ones.
    const std::shared_ptr<autodiff::Node>& grad_node() const { return grad_node_; }
    void set_grad_node(std::shared_ptr<autodiff::Node> node) { grad_node_ = std::move(node); }
    // This tensor's values without its recorded history (TensorFlow's stop_gradient).
    Tensor detached() const { Tensor t = *this; t.grad_node_.reset(); return t; }

private:
    struct Storage {
        void* ptr = nullptr;
        size_t bytes = 0;
        Device device = Device::cpu();
        ~Storage();
    };
    void check_count(size_t n) const;
    void check_access(DType want) const;

    std::shared_ptr<Storage> storage_;
    Shape shape_;
    DType dtype_ = DType::float32;
    Device device_;
    std::shared_ptr<autodiff::Node> grad_node_;
};

// The values as numpy's str() of the same array prints them: nested brackets, float32 with up to 8
// significant digits and trailing zeros dropped ("[[0.1 0.2]\n [0.3 0.4]]"), "..." past 1000 elements.
// No shape or dtype header (shape_str and to_string(DType) give those). A CUDA tensor is copied to
// the host first.
KERAS_API std::string to_string(const Tensor& tensor);
// Writes to_string(tensor).
KERAS_API std::ostream& operator<<(std::ostream& os, const Tensor& tensor);

// Each tensor's shape, in order (what a layer of several inputs is built and checked for).
KERAS_API std::vector<Shape> shapes_of(const std::vector<Tensor>& xs);

}  // namespace keras
