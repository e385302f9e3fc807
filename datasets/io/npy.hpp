// numpy's .npy format (versions 1.0, 2.0 and 3.0): the header, plain integer arrays, and object
// arrays of integer lists (decoded with the strict pickle reader). Internal: not an installed header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keras::io::npy {

struct Header {
    std::string descr;             // numpy dtype string, e.g. "<i8", "|u1", "|O"
    bool fortran_order = false;
    std::vector<int64_t> shape;
    size_t data_offset = 0;        // where the array data starts in the file
};

// Parses and checks the magic, version and header dict; `where` names the file in errors.
Header parse_header(std::string_view file, const std::string& where);

// The size of a whole .npy file with this header (header plus data), when its dtype has a fixed item
// size ('<i8', '|b1', '<f4', ...); nullopt for object arrays, whose pickled size the header does not tell.
std::optional<uint64_t> declared_file_size(const Header& header, const std::string& where);

// An integer (or bool) array of any byte order, converted to int64 in C order.
struct IntArray {
    std::vector<int64_t> shape;
    std::vector<int64_t> values;
};
IntArray read_int_array(std::string_view file, const std::string& where);

// A 1-D object array whose elements are lists of ints (Keras's imdb x_train / x_test).
std::vector<std::vector<int64_t>> read_int_list_array(std::string_view file, const std::string& where);

}  // namespace keras::io::npy
