#include "keras/mixed_precision.hpp"

#include <atomic>
#include <mutex>

#include "keras/errors.hpp"

namespace keras::mixed_precision {

DTypePolicy::DTypePolicy(const std::string& name) : name_(name), variable_dtype_("float32") {
    if (name == "float32") compute_dtype_ = "float32";
    else if (name == "mixed_bfloat16") compute_dtype_ = "bfloat16";
    else if (name == "mixed_float16") compute_dtype_ = "float16";
    else
        value_error("Unsupported dtype policy '{}': kerascpp supports 'float32', 'mixed_bfloat16' and "
                    "'mixed_float16' (float32 variables, bfloat16 or float16 compute){}", name,
                    name == "bfloat16" || name == "float16" ? "; pure bfloat16 and float16 policies are not supported yet"
                                                            : "");
}

namespace {
std::mutex policy_mutex;
DTypePolicy& global() {
    static DTypePolicy policy("float32");
    return policy;
}
std::atomic<bool> disabled{false};
}  // namespace

void set_global_policy(const DTypePolicy& policy) {
    std::lock_guard lock(policy_mutex);
    global() = policy;
}

DTypePolicy global_policy() {
    std::lock_guard lock(policy_mutex);
    return global();
}

void set_bfloat16_disabled(bool value) { disabled = value; }
bool bfloat16_disabled() { return disabled; }

}  // namespace keras::mixed_precision
