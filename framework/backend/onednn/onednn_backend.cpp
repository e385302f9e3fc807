#include "onednn_backend.hpp"

namespace keras::backend {

OneDnnBackend::OneDnnBackend() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

}  // namespace keras::backend
