#include "io/pickle.hpp"

#include <array>
#include <cstring>
#include <unordered_map>

#include "keras/errors.hpp"

namespace keras::io::pickle {

namespace {

// Every standard opcode by name, so that a rejected one is named in the error.
const char* opcode_name(uint8_t op) {
    switch (op) {
        case '(': return "MARK";            case '.': return "STOP";          case '0': return "POP";
        case '1': return "POP_MARK";        case '2': return "DUP";           case 'F': return "FLOAT";
        case 'I': return "INT";             case 'J': return "BININT";        case 'K': return "BININT1";
        case 'L': return "LONG";            case 'M': return "BININT2";       case 'N': return "NONE";
        case 'P': return "PERSID";          case 'Q': return "BINPERSID";     case 'R': return "REDUCE";
        case 'S': return "STRING";          case 'T': return "BINSTRING";     case 'U': return "SHORT_BINSTRING";
        case 'V': return "UNICODE";         case 'X': return "BINUNICODE";    case 'a': return "APPEND";
        case 'b': return "BUILD";           case 'c': return "GLOBAL";        case 'd': return "DICT";
        case '}': return "EMPTY_DICT";      case 'e': return "APPENDS";       case 'g': return "GET";
        case 'h': return "BINGET";          case 'i': return "INST";          case 'j': return "LONG_BINGET";
        case 'l': return "LIST";            case ']': return "EMPTY_LIST";    case 'o': return "OBJ";
        case 'p': return "PUT";             case 'q': return "BINPUT";        case 'r': return "LONG_BINPUT";
        case 's': return "SETITEM";         case 't': return "TUPLE";         case ')': return "EMPTY_TUPLE";
        case 'u': return "SETITEMS";        case 'G': return "BINFLOAT";      case 'B': return "BINBYTES";
        case 'C': return "SHORT_BINBYTES";  case 0x80: return "PROTO";        case 0x81: return "NEWOBJ";
        case 0x82: return "EXT1";           case 0x83: return "EXT2";         case 0x84: return "EXT4";
        case 0x85: return "TUPLE1";         case 0x86: return "TUPLE2";       case 0x87: return "TUPLE3";
        case 0x88: return "NEWTRUE";        case 0x89: return "NEWFALSE";     case 0x8a: return "LONG1";
        case 0x8b: return "LONG4";          case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8";
        case 0x8e: return "BINBYTES8";      case 0x8f: return "EMPTY_SET";    case 0x90: return "ADDITEMS";
        case 0x91: return "FROZENSET";      case 0x92: return "NEWOBJ_EX";    case 0x93: return "STACK_GLOBAL";
        case 0x94: return "MEMOIZE";        case 0x95: return "FRAME";        case 0x96: return "BYTEARRAY8";
        case 0x97: return "NEXT_BUFFER";    case 0x98: return "READONLY_BUFFER";
        default: return nullptr;
    }
}

constexpr int kMaxDepth = 32;   // numpy object arrays of lists need 5; this bounds destructor recursion too

const std::array<Global, 4> kAllowedGlobals = {{
    {"numpy.core.multiarray", "_reconstruct"},
    {"numpy._core.multiarray", "_reconstruct"},
    {"numpy", "ndarray"},
    {"numpy", "dtype"},
}};

int depth_of(const Value& v) {
    if (auto l = std::get_if<std::shared_ptr<List>>(&v)) return (*l)->depth;
    if (auto t = std::get_if<std::shared_ptr<Tuple>>(&v)) return (*t)->depth;
    if (auto o = std::get_if<std::shared_ptr<Object>>(&v)) return (*o)->depth;
    return 0;
}

// The decoder: a stack machine over the opcodes listed in FIELD_NOTES, each read bounds-checked.
class Decoder {
public:
    Decoder(std::string_view bytes, const std::string& where) : bytes_(bytes), where_(where) {}

    Value run() {
        if (bytes_.empty()) fail("empty pickle");
        if (static_cast<uint8_t>(bytes_[0]) != 0x80) fail("not a pickle of protocol 2 or later (no PROTO opcode)");
        while (true) {
            op_at_ = pos_;
            const uint8_t op = u8();
            if (op == '.') return finish();
            step(op);
        }
    }

private:
    std::string_view bytes_;
    const std::string& where_;
    size_t pos_ = 0, op_at_ = 0;
    std::vector<Value> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value> memo_;

    template <typename... Args>
    [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
        runtime_error("{}: bad pickle at byte {}: {}", where_, op_at_, fmt::format(format, std::forward<Args>(args)...));
    }

    // ---- reading ------------------------------------------------------------------------------
    std::string_view take(uint64_t n) {
        if (n > bytes_.size() - pos_)
            fail("truncated: needs {} more bytes, only {} left", n, bytes_.size() - pos_);
        std::string_view out = bytes_.substr(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        return out;
    }
    uint64_t little_endian(int n) {
        const std::string_view b = take(static_cast<uint64_t>(n));
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[static_cast<size_t>(i)]);
        return v;
    }
    uint8_t u8() { return static_cast<uint8_t>(little_endian(1)); }
    std::string line() {   // GLOBAL's "module\nname\n" arguments
        const size_t end = bytes_.find('\n', pos_);
        if (end == std::string_view::npos) fail("truncated: GLOBAL argument has no newline");
        std::string out(bytes_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return out;
    }

    // ---- stack --------------------------------------------------------------------------------
    void push(Value v) { stack_.push_back(std::move(v)); }
    Value pop() {
        const size_t floor = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() <= floor) fail("stack underflow");
        Value v = std::move(stack_.back());
        stack_.pop_back();
        return v;
    }
    Value& top() {
        const size_t floor = marks_.empty() ? 0 : marks_.back();
        if (stack_.size() <= floor) fail("stack underflow");
        return stack_.back();
    }
    std::vector<Value> pop_to_mark() {
        if (marks_.empty()) fail("no MARK to pop to");
        const size_t mark = marks_.back();
        marks_.pop_back();
        std::vector<Value> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                                 std::make_move_iterator(stack_.end()));
        stack_.resize(mark);
        return items;
    }

    // A value placed inside another is frozen: it can no longer change, so no cycle can form and
    // the recorded depths stay true.
    int adopt(const Value& v) {
        if (auto l = std::get_if<std::shared_ptr<List>>(&v)) (*l)->frozen = true;
        if (auto o = std::get_if<std::shared_ptr<Object>>(&v)) (*o)->frozen = true;
        const int depth = depth_of(v) + 1;
        if (depth > kMaxDepth) fail("values nested deeper than {}", kMaxDepth);
        return depth;
    }
    void make_tuple(std::vector<Value> items) {
        auto t = std::make_shared<Tuple>();
        for (const Value& v : items) t->depth = std::max(t->depth, adopt(v));
        t->items = std::move(items);
        push(std::move(t));
    }
    void append(std::vector<Value> items) {
        Value& target = top();
        auto list = std::get_if<std::shared_ptr<List>>(&target);
        if (list == nullptr) fail("APPEND(S) to a {}, expected a list", type_name(target));
        for (const Value& v : items) (*list)->depth = std::max((*list)->depth, adopt(v));
        if ((*list)->frozen) fail("APPEND(S) to a list that is already inside another value");
        List& dst = **list;
        for (Value& v : items) {
            const int64_t* i = std::get_if<int64_t>(&v);
            if (i != nullptr && dst.items.empty()) {
                dst.ints.push_back(*i);
                continue;
            }
            for (int64_t earlier : dst.ints) dst.items.emplace_back(earlier);   // no longer ints only
            dst.ints = {};
            dst.items.push_back(std::move(v));
        }
    }
    void push_global(std::string module, std::string name) {
        Global g{std::move(module), std::move(name)};
        if (!is_allowed_global(g))
            fail("forbidden global {}.{} (only numpy's array reconstruction globals are allowed)", g.module, g.name);
        push(std::move(g));
    }
    std::string pop_string() {
        Value v = pop();
        auto s = std::get_if<std::shared_ptr<const std::string>>(&v);
        if (s == nullptr) fail("STACK_GLOBAL needs strings, got a {}", type_name(v));
        return **s;
    }
    void reduce() {
        Value args = pop();
        Value callable = pop();
        auto g = std::get_if<Global>(&callable);
        auto t = std::get_if<std::shared_ptr<Tuple>>(&args);
        if (g == nullptr || t == nullptr) fail("REDUCE needs a global and a tuple, got a {} and a {}",
                                               type_name(callable), type_name(args));
        auto o = std::make_shared<Object>();
        o->callable = *g;
        o->depth = adopt(args);
        o->args = *t;
        push(std::move(o));
    }
    void build() {
        Value state = pop();
        Value& target = top();
        auto o = std::get_if<std::shared_ptr<Object>>(&target);
        if (o == nullptr) fail("BUILD on a {}, expected an object made by REDUCE", type_name(target));
        (*o)->depth = std::max((*o)->depth, adopt(state));
        if ((*o)->frozen || (*o)->has_state) fail("BUILD on an object that is already complete");
        (*o)->state = std::move(state);
        (*o)->has_state = true;
    }
    void memo_put(uint64_t index) { memo_[index] = top(); }
    void memo_get(uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end()) fail("memo entry {} was never stored", index);
        push(it->second);
    }
    void push_string(uint64_t size) { push(std::make_shared<const std::string>(take(size))); }
    void push_long1() {
        const uint8_t n = u8();
        if (n > 8) fail("LONG1 integer of {} bytes does not fit in 64 bits", n);
        uint64_t v = little_endian(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~uint64_t{0} << (8 * n);   // sign-extend
        push(static_cast<int64_t>(v));
    }

    Value finish() {
        if (!marks_.empty() || stack_.size() != 1) fail("STOP with {} values and {} marks left", stack_.size(), marks_.size());
        if (pos_ != bytes_.size()) fail("{} bytes after STOP", bytes_.size() - pos_);
        return std::move(stack_.back());
    }

    void step(uint8_t op) {
        switch (op) {
            case 0x80: {   // PROTO
                const uint8_t protocol = u8();
                if (protocol < 2 || protocol > 5) fail("pickle protocol {} (2 to 5 are read)", protocol);
                break;
            }
            case 0x95: little_endian(8); break;   // FRAME: a length hint only; every read is checked anyway
            case 'c': { std::string module = line(); push_global(std::move(module), line()); break; }
            case 0x93: { std::string name = pop_string(); push_global(pop_string(), std::move(name)); break; }
            case 'X': case 'T': case 'B': push_string(little_endian(4)); break;
            case 0x8c: case 'U': case 'C': push_string(u8()); break;
            case 'J': push(static_cast<int64_t>(static_cast<int32_t>(little_endian(4)))); break;
            case 'K': push(static_cast<int64_t>(u8())); break;
            case 'M': push(static_cast<int64_t>(little_endian(2))); break;
            case 0x8a: push_long1(); break;
            case 'N': push(None{}); break;
            case 0x88: push(true); break;
            case 0x89: push(false); break;
            case '(': marks_.push_back(stack_.size()); break;
            case ']': push(std::make_shared<List>()); break;
            case 'a': { Value v = pop(); std::vector<Value> one; one.push_back(std::move(v)); append(std::move(one)); break; }
            case 'e': append(pop_to_mark()); break;
            case ')': make_tuple({}); break;
            case 't': make_tuple(pop_to_mark()); break;
            case 0x85: case 0x86: case 0x87: {   // TUPLE1..3
                std::vector<Value> items(static_cast<size_t>(op - 0x84));
                for (size_t i = items.size(); i-- > 0;) items[i] = pop();
                make_tuple(std::move(items));
                break;
            }
            case 'R': reduce(); break;
            case 'b': build(); break;
            case 'q': memo_put(u8()); break;
            case 'r': memo_put(little_endian(4)); break;
            case 0x94: memo_put(memo_.size()); break;
            case 'h': memo_get(u8()); break;
            case 'j': memo_get(little_endian(4)); break;
            default: {
                const char* name = opcode_name(op);
                if (name == nullptr) fail("unknown opcode 0x{:02x}", op);
                fail("forbidden opcode {} (0x{:02x}); only the opcodes of numpy object arrays are allowed", name, op);
            }
        }
    }
};

}  // namespace

bool is_allowed_global(const Global& global) {
    for (const Global& g : kAllowedGlobals)
        if (g == global) return true;
    return false;
}

Value loads(std::string_view bytes, const std::string& where) { return Decoder(bytes, where).run(); }

std::string type_name(const Value& value) {
    static constexpr std::array<const char*, 8> names = {"None", "bool", "int", "string", "global",
                                                         "list", "tuple", "object"};
    return names[value.index()];
}

}  // namespace keras::io::pickle
