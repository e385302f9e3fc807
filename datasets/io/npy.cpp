#include "io/npy.hpp"

#include <cstring>

#include <fmt/ranges.h>

#include "io/pickle.hpp"
#include "keras/errors.hpp"

namespace keras::io::npy {

namespace {

// numpy writes the header as a Python dict literal:
//   {'descr': '<i8', 'fortran_order': False, 'shape': (25000,), }
// This parser accepts exactly that grammar (quoted keys, strings, True/False, int tuples).
class HeaderParser {
public:
    HeaderParser(std::string_view text, const std::string& where) : text_(text), where_(where) {}

    Header parse() {
        Header header;
        bool seen_descr = false, seen_order = false, seen_shape = false;
        expect('{');
        while (!peek('}')) {
            const std::string key = quoted();
            expect(':');
            if (key == "descr") header.descr = quoted(), seen_descr = true;
            else if (key == "fortran_order") header.fortran_order = boolean(), seen_order = true;
            else if (key == "shape") header.shape = int_tuple(), seen_shape = true;
            else fail("unexpected key '{}'", key);
            if (!peek('}')) expect(',');
        }
        expect('}');
        skip_space();
        if (pos_ != text_.size()) fail("text after the dict");
        if (!seen_descr || !seen_order || !seen_shape) fail("it needs the keys 'descr', 'fortran_order' and 'shape'");
        return header;
    }

private:
    std::string_view text_;
    const std::string& where_;
    size_t pos_ = 0;

    template <typename... Args>
    [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
        runtime_error("{}: bad .npy header ({}): {}", where_, fmt::format(format, std::forward<Args>(args)...), text_);
    }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n')) ++pos_;
    }
    bool peek(char c) {
        skip_space();
        return pos_ < text_.size() && text_[pos_] == c;
    }
    void expect(char c) {
        if (!peek(c)) fail("expected '{}' at character {}", c, pos_);
        ++pos_;
    }
    std::string quoted() {
        skip_space();
        if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a string at character {}", pos_);
        const char quote = text_[pos_++];
        const size_t end = text_.find(quote, pos_);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string out(text_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return out;
    }
    bool boolean() {
        skip_space();
        for (auto [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
            if (text_.substr(pos_, std::strlen(word)) == word) {
                pos_ += std::strlen(word);
                return value;
            }
        }
        fail("fortran_order must be True or False");
    }
    std::vector<int64_t> int_tuple() {
        std::vector<int64_t> out;
        expect('(');
        while (!peek(')')) {
            int64_t v = 0;
            size_t digits = 0;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
                if (v > (INT64_MAX - 9) / 10) fail("dimension too large");
                v = v * 10 + (text_[pos_++] - '0');
                ++digits;
            }
            if (digits == 0) fail("shape must be a tuple of non-negative ints");
            out.push_back(v);
            if (!peek(')')) expect(',');
        }
        expect(')');
        return out;
    }
};

int64_t element_count(const Header& header, const std::string& where) {
    int64_t n = 1;
    for (int64_t d : header.shape) {
        if (d != 0 && n > INT64_MAX / d) runtime_error("{}: .npy shape is too large", where);
        n *= d;
    }
    return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    return fmt::format("({}{})", fmt::join(shape, ", "), shape.size() == 1 ? "," : "");
}

// Reads one integer element of `size` bytes with the given byte order.
int64_t load_int(const char* p, int size, bool big_endian, bool is_signed) {
    uint64_t v = 0;
    for (int i = 0; i < size; ++i) {
        const int byte = big_endian ? i : size - 1 - i;
        v = (v << 8) | static_cast<uint8_t>(p[byte]);
    }
    if (is_signed && size < 8 && (v >> (8 * size - 1)) != 0) v |= ~uint64_t{0} << (8 * size);
    return static_cast<int64_t>(v);
}

// Fortran-ordered data -> C order (only matters for 2+ dimensions).
std::vector<int64_t> to_c_order(const std::vector<int64_t>& f, const std::vector<int64_t>& shape) {
    std::vector<int64_t> c(f.size());
    std::vector<int64_t> index(shape.size(), 0);
    for (size_t flat_f = 0; flat_f < f.size(); ++flat_f) {
        size_t flat_c = 0;
        for (size_t d = 0; d < shape.size(); ++d) flat_c = flat_c * static_cast<size_t>(shape[d]) + static_cast<size_t>(index[d]);
        c[flat_c] = f[flat_f];
        for (size_t d = 0; d < shape.size() && ++index[d] == shape[d]; ++d) index[d] = 0;   // first axis fastest
    }
    return c;
}

using pickle::Value;
template <typename T> const T* as(const Value& v) {
    auto p = std::get_if<std::shared_ptr<T>>(&v);
    return p == nullptr ? nullptr : p->get();
}

[[noreturn]] void not_numpy_array(const std::string& where, const char* what) {
    runtime_error("{}: the pickled object array is not what numpy writes ({})", where, what);
}

// numpy pickles an ndarray as _reconstruct(ndarray, (0,), b'b') followed by BUILD with
// (version, shape, dtype, is_fortran, data); for dtype=object the data is a list of the elements.
const std::vector<Value>& object_array_elements(const Value& root, const std::string& where) {
    auto bad = [&](const char* what) { not_numpy_array(where, what); };
    const pickle::Object* array = as<pickle::Object>(root);
    if (array == nullptr || array->callable.name != "_reconstruct") bad("no numpy _reconstruct call");
    if (!array->has_state) bad("no array state");
    const pickle::Tuple* state = as<pickle::Tuple>(array->state);
    if (state == nullptr || state->items.size() != 5) bad("the state is not a 5-tuple");
    const pickle::Object* dtype = as<pickle::Object>(state->items[2]);
    if (dtype == nullptr || dtype->callable != pickle::Global{"numpy", "dtype"} || dtype->args->items.empty()) bad("no dtype");
    auto code = std::get_if<std::shared_ptr<const std::string>>(&dtype->args->items[0]);
    if (code == nullptr || (**code != "O" && **code != "O8")) bad("dtype is not object");
    const pickle::List* data = as<pickle::List>(state->items[4]);
    if (data == nullptr) bad("the data is not a list");
    return data->items;
}

}  // namespace

Header parse_header(std::string_view file, const std::string& where) {
    static constexpr std::string_view magic = "\x93NUMPY";
    if (file.size() < 10 || file.substr(0, 6) != magic)
        runtime_error("{}: not a .npy file (no \\x93NUMPY magic)", where);
    const int major = static_cast<uint8_t>(file[6]), minor = static_cast<uint8_t>(file[7]);
    if (major < 1 || major > 3 || minor != 0)
        runtime_error("{}: unsupported .npy format version {}.{} (1.0, 2.0 and 3.0 are read)", where, major, minor);
    // Version 1.0 stores the header length in 2 bytes, 2.0 and 3.0 in 4 (3.0 allows UTF-8 text).
    const size_t len_bytes = major == 1 ? 2 : 4;
    if (file.size() < 8 + len_bytes) runtime_error("{}: .npy file truncated in its header", where);
    size_t header_len = 0;
    for (size_t i = len_bytes; i-- > 0;) header_len = (header_len << 8) | static_cast<uint8_t>(file[8 + i]);
    const size_t start = 8 + len_bytes;
    if (header_len > file.size() - start) runtime_error("{}: .npy file truncated in its header", where);
    Header header = HeaderParser(file.substr(start, header_len), where).parse();
    header.data_offset = start + header_len;
    return header;
}

std::optional<uint64_t> declared_file_size(const Header& header, const std::string& where) {
    const std::string& d = header.descr;
    // '<i8' -> 8: a byte-order mark, one kind letter, then the item size in bytes.
    if (d.size() < 3 || d.size() > 5 || d[1] == 'O' || d.find_first_not_of("0123456789", 2) != std::string::npos)
        return std::nullopt;
    const uint64_t item = std::stoull(d.substr(2));
    uint64_t data = 0, total = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(element_count(header, where)), item, &data) ||
        __builtin_add_overflow(data, header.data_offset, &total))
        runtime_error("{}: .npy shape {} with dtype '{}' is too large", where, shape_string(header.shape), d);
    return total;
}

IntArray read_int_array(std::string_view file, const std::string& where) {
    const Header header = parse_header(file, where);
    const std::string& d = header.descr;
    const bool order_ok = d.size() >= 2 && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=');
    const char kind = order_ok ? d[1] : '?';
    const int size = order_ok && d.size() == 3 ? d[2] - '0' : 0;
    if (!order_ok || (kind != 'i' && kind != 'u' && kind != 'b') || !(size == 1 || size == 2 || size == 4 || size == 8) ||
        (kind == 'b' && size != 1))
        runtime_error("{}: unsupported .npy dtype '{}' (expected an integer or bool array)", where, d);
    if (kind == 'u' && size == 8) runtime_error("{}: .npy dtype '{}' does not fit in int64", where, d);
    const int64_t count = element_count(header, where);
    const size_t have = file.size() - header.data_offset;
    if (static_cast<uint64_t>(count) * static_cast<uint64_t>(size) != have)
        runtime_error("{}: .npy shape {} with dtype '{}' needs {} bytes of data, the file has {}", where,
                      shape_string(header.shape), d, count * size, have);

    IntArray out{header.shape, std::vector<int64_t>(static_cast<size_t>(count))};
    const char* p = file.data() + header.data_offset;
    for (int64_t i = 0; i < count; ++i)
        out.values[static_cast<size_t>(i)] = load_int(p + i * size, size, d[0] == '>', kind == 'i');
    if (header.fortran_order && header.shape.size() > 1) out.values = to_c_order(out.values, header.shape);
    return out;
}

std::vector<std::vector<int64_t>> read_int_list_array(std::string_view file, const std::string& where) {
    const Header header = parse_header(file, where);
    if (header.descr != "|O")
        runtime_error("{}: .npy dtype is '{}', expected an object array ('|O') of lists", where, header.descr);
    if (header.shape.size() != 1)
        runtime_error("{}: object array has shape {}, expected one dimension", where, shape_string(header.shape));
    const Value root = pickle::loads(file.substr(header.data_offset), where);
    const std::vector<Value>& elements = object_array_elements(root, where);
    if (static_cast<int64_t>(elements.size()) != header.shape[0])
        runtime_error("{}: .npy shape {} but the pickled array holds {} elements", where, shape_string(header.shape),
                      elements.size());

    std::vector<std::vector<int64_t>> out;
    out.reserve(elements.size());
    for (size_t i = 0; i < elements.size(); ++i) {
        const pickle::List* list = as<pickle::List>(elements[i]);
        if (list == nullptr) runtime_error("{}: element {} is a {}, expected a list of ints", where, i, pickle::type_name(elements[i]));
        std::vector<int64_t>& row = out.emplace_back(list->ints);
        for (const Value& v : list->items) {   // empty unless the list holds something besides ints
            auto x = std::get_if<int64_t>(&v);
            if (x == nullptr) runtime_error("{}: element {} holds a {}, expected ints", where, i, pickle::type_name(v));
            row.push_back(*x);
        }
    }
    return out;
}

}  // namespace keras::io::npy
