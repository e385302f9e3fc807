// A small, strict decoder for the pickles numpy writes for object arrays (np.save of a dtype=object
// array, as in Keras's imdb.npz). It builds plain values and NEVER calls anything: a "call"
// (REDUCE) of one of the few allowed numpy globals just records the callable and its arguments
// for the caller to interpret. Any other opcode or global is rejected with an error naming it.
// Internal: not an installed header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace keras::io::pickle {

struct List;
struct Tuple;
struct Object;

struct None {};
// A module-level name the pickle refers to (GLOBAL / STACK_GLOBAL), only from the allowed set.
struct Global {
    std::string module, name;
    bool operator==(const Global&) const = default;
};
// Both str and bytes: the files only use them as dtype codes and byte-order marks.
using Value = std::variant<None, bool, int64_t, std::shared_ptr<const std::string>, Global, std::shared_ptr<List>,
                           std::shared_ptr<Tuple>, std::shared_ptr<Object>>;

struct List {
    // A list of ints only (the bulk of an imdb.npz: ~6 million ids per split) is kept in `ints`,
    // 8 bytes an element instead of a Value's 24; any other list is in `items`. At most one of the
    // two is non-empty.
    std::vector<int64_t> ints;
    std::vector<Value> items;
    int depth = 1;          // nesting depth, bounded so that nothing recurses without limit
    bool frozen = false;    // set once it sits inside another value; frozen values never change
};
struct Tuple {
    std::vector<Value> items;
    int depth = 1;
};
// callable(*args), then BUILD's state, recorded and not executed.
struct Object {
    Global callable;
    std::shared_ptr<Tuple> args;
    Value state = None{};
    bool has_state = false;
    int depth = 1;
    bool frozen = false;
};

// The globals a numpy object-array pickle needs (numpy 1 and numpy 2 module names).
bool is_allowed_global(const Global& global);

// Decodes protocol 2-5 pickles of plain data; `where` names the source in error messages.
// Throws keras::RuntimeError on any opcode or global outside the allowed set, on truncation and on
// malformed data.
Value loads(std::string_view bytes, const std::string& where);

// Readable names for error messages ("list", "tuple", ...).
std::string type_name(const Value& value);

}  // namespace keras::io::pickle
