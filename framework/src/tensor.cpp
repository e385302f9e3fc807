#include "keras/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "host_memory.hpp"
#include "keras/backend.hpp"
#include "keras/errors.hpp"

namespace keras {

std::string to_string(DType dtype) {
    switch (dtype) {
        case DType::float32: return "float32";
        case DType::int32: return "int32";
        case DType::int64: return "int64";
    }
    return "?";
}

std::string shape_str(const Shape& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += shape[i] < 0 ? "None" : std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

int64_t num_elements(const Shape& shape) {
    int64_t n = 1;
    // Shapes can come from files and configs: an overflowing product is an error, not undefined behaviour.
    for (int64_t d : shape)
        if (__builtin_mul_overflow(n, d, &n))
            value_error("Shape {} has too many elements (the count overflows int64)", shape_str(shape));
    return n;
}

std::string index_str(const Shape& shape, int64_t i) {
    std::vector<int64_t> idx(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
        idx[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
    std::string s = "[";
    for (size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
    return s + "]";
}

size_t dtype_size(DType dtype) { return dtype == DType::int64 ? 8 : 4; }

Tensor::Storage::~Storage() {
    if (device.is_cpu()) host_memory::deallocate(ptr, bytes);
    else backend::device_memory(device).deallocate(ptr, bytes);
}

Tensor::Tensor(Shape shape, DType dtype, Device device) : shape_(std::move(shape)), dtype_(dtype), device_(device) {
    for (int64_t d : shape_)
        if (d < 0) value_error("Tensor dimensions must be >= 0, got shape {}", shape_str(shape_));
    const size_t bytes = std::max<size_t>(nbytes(), 1);
    void* ptr = nullptr;
    if (device.is_cpu()) {
        ptr = host_memory::allocate(bytes);   // 64-byte aligned, for AVX-512 loads in oneDNN and our loops
        if (!ptr) runtime_error("Out of memory allocating a tensor of shape {}", shape_str(shape_));
    } else {
        ptr = backend::device_memory(device).allocate(bytes);   // throws naming the device
    }
    storage_ = std::make_shared<Storage>();
    storage_->ptr = ptr;
    storage_->bytes = bytes;
    storage_->device = device;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
    Tensor t(std::move(shape), dtype, device);
    if (device.is_cpu()) std::memset(t.raw(), 0, t.nbytes());
    else backend::device_memory(device).set_zero(t.raw(), t.nbytes());
    return t;
}

Tensor Tensor::full(Shape shape, float value, Device device) {
    Tensor t(std::move(shape), DType::float32);
    t.fill(value);
    return t.to(device);
}

template <typename T>
static Tensor rows_to_tensor(const std::vector<std::vector<T>>& rows) {
    const size_t width = rows.empty() ? 0 : rows[0].size();
    for (size_t i = 0; i < rows.size(); ++i)
        if (rows[i].size() != width)
            value_error("Tensor::from_rows needs rows of equal length: row 0 has {} values, row {} has {} "
                        "(pad them first with keras::utils::pad_sequences)", width, i, rows[i].size());
    Tensor t({static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)}, dtype_of<T>());
    T* out = t.data<T>();
    for (const auto& row : rows) out = std::copy(row.begin(), row.end(), out);
    return t;
}
Tensor Tensor::from_rows(const std::vector<std::vector<int32_t>>& rows) { return rows_to_tensor(rows); }
Tensor Tensor::from_rows(const std::vector<std::vector<float>>& rows) { return rows_to_tensor(rows); }

int64_t Tensor::dim(int i) const {
    const int n = ndim();
    const int j = i < 0 ? i + n : i;
    if (j < 0 || j >= n) value_error("Axis {} is out of range for a tensor of shape {}", i, shape_str(shape_));
    return shape_[j];
}

double Tensor::item(int64_t i) const {
    if (i < 0 || i >= numel()) value_error("Index {} is out of range for a tensor of {} elements", i, numel());
    switch (dtype_) {
        case DType::float32: return data<float>()[i];
        case DType::int32: return data<int32_t>()[i];
        case DType::int64: return static_cast<double>(data<int64_t>()[i]);
    }
    return 0;
}

void Tensor::check_count(size_t n) const {
    if (static_cast<int64_t>(n) != numel())
        value_error("Cannot make a tensor of shape {} ({} elements) from {} values", shape_str(shape_), numel(), n);
}

void Tensor::check_access(DType want) const {
    if (!storage_) runtime_error("Access to an undefined tensor");
    if (want != dtype_)
        runtime_error("Tensor of dtype {} accessed as {}", to_string(dtype_), to_string(want));
    if (!device_.is_cpu())
        runtime_error("Tensor of shape {} on {} accessed from the host: copy it with .to(keras::Device::cpu()) first",
                      shape_str(shape_), to_string(device_));
}

// Copies `bytes` from src (on src_device) to dst (on dst_device): the one place where bytes cross
// between host and device. Between two GPUs the bytes go through the host (rare: model moves).
static void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
    if (bytes == 0) return;
    if (dst_device.is_cpu() && src_device.is_cpu()) {
        std::memcpy(dst, src, bytes);
    } else if (dst_device == src_device) {
        backend::device_memory(dst_device).copy_on_device(dst, src, bytes);
    } else if (src_device.is_cpu()) {
        backend::device_memory(dst_device).copy_from_host(dst, src, bytes);
    } else if (dst_device.is_cpu()) {
        backend::device_memory(src_device).copy_to_host(dst, src, bytes);
    } else {
        std::vector<char> host(bytes);
        backend::device_memory(src_device).copy_to_host(host.data(), src, bytes);
        backend::device_memory(dst_device).copy_from_host(dst, host.data(), bytes);
    }
}

Tensor Tensor::clone() const {
    if (!defined()) return {};
    Tensor t(shape_, dtype_, device_);
    copy_bytes(t.raw(), device_, raw(), device_, nbytes());
    return t;
}

Tensor Tensor::to(Device device) const {
    if (!defined() || device == device_) return *this;
    Tensor t(shape_, dtype_, device);
    copy_bytes(t.raw(), device, raw(), device_, nbytes());
    return t;
}

Tensor Tensor::reshape(Shape shape) const {
    int64_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1 && infer < 0) infer = static_cast<int>(i);
        else known *= shape[i];
    }
    if (infer >= 0 && known > 0 && numel() % known == 0) shape[infer] = numel() / known;
    // Every size must be known and non-negative: (-2, -3) has 6 "elements" but is no shape.
    const bool all_known = std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d >= 0; });
    if (!all_known || num_elements(shape) != numel())
        value_error("Cannot reshape a tensor of shape {} into shape {}", shape_str(shape_), shape_str(shape));
    Tensor t = detached();   // ops::reshape is the recorded one
    t.shape_ = std::move(shape);
    return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
    if (ndim() < 1 || begin < 0 || end < begin || end > shape_[0])
        value_error("Rows [{}, {}) are out of range for a tensor of shape {}", begin, end, shape_str(shape_));
    Shape s = shape_;
    s[0] = end - begin;
    Tensor t(s, dtype_, device_);
    const size_t row_bytes = nbytes() / std::max<int64_t>(shape_[0], 1);
    copy_bytes(t.raw(), device_, static_cast<const char*>(raw()) + begin * row_bytes, device_, (end - begin) * row_bytes);
    return t;
}

Tensor Tensor::gather_rows(const std::vector<int64_t>& rows) const {
    if (ndim() < 1) value_error("Rows cannot be taken from a 0-d tensor (shape {})", shape_str(shape_));
    Shape s = shape_;
    s[0] = static_cast<int64_t>(rows.size());
    Tensor t(s, dtype_, device_);
    const size_t row_bytes = nbytes() / std::max<int64_t>(shape_[0], 1);
    char* out = static_cast<char*>(t.raw());
    for (int64_t r : rows) {
        if (r < 0 || r >= shape_[0]) value_error("Row {} is out of range for a tensor of shape {}", r, shape_str(shape_));
        copy_bytes(out, device_, static_cast<const char*>(raw()) + r * row_bytes, device_, row_bytes);
        out += row_bytes;
    }
    return t;
}

template <typename From, typename To>
static void convert(const Tensor& src, Tensor& dst) {
    std::transform(src.data<From>(), src.data<From>() + src.numel(), dst.data<To>(),
                   [](From v) { return static_cast<To>(v); });
}

Tensor Tensor::astype(DType dtype) const {
    if (dtype == dtype_) return *this;
    if (!device_.is_cpu()) return to(Device::cpu()).astype(dtype).to(device_);
    Tensor t(shape_, dtype, device_);
    auto dispatch_to = [&](auto from) {
        using F = decltype(from);
        switch (dtype) {
            case DType::float32: convert<F, float>(*this, t); break;
            case DType::int32: convert<F, int32_t>(*this, t); break;
            case DType::int64: convert<F, int64_t>(*this, t); break;
        }
    };
    switch (dtype_) {
        case DType::float32: dispatch_to(float{}); break;
        case DType::int32: dispatch_to(int32_t{}); break;
        case DType::int64: dispatch_to(int64_t{}); break;
    }
    return t;
}

void Tensor::fill(float value) {
    if (!device_.is_cpu() && defined() && dtype_ == DType::float32) {
        copy_from(full(shape_, value));
        return;
    }
    float* p = data<float>();
    std::fill(p, p + numel(), value);
}

void Tensor::copy_from(const Tensor& other) {
    if (other.numel() != numel() || other.dtype() != dtype_)
        value_error("Cannot copy a {} tensor of shape {} into a {} tensor of shape {}", to_string(other.dtype()),
                    shape_str(other.shape()), to_string(dtype_), shape_str(shape_));
    if (!defined() || !other.defined()) value_error("Cannot copy between undefined tensors");
    copy_bytes(raw(), device_, other.raw(), other.device(), nbytes());
}

std::vector<Shape> shapes_of(const std::vector<Tensor>& xs) {
    std::vector<Shape> shapes;
    for (const auto& x : xs) shapes.push_back(x.shape());
    return shapes;
}

}  // namespace keras
