// Model::save_weights / load_weights. Saving picks the layout by the name, as Keras 3 does
// (".weights.h5": Keras 3's; other ".h5" / ".hdf5": the legacy one). Loading looks at the content,
// so it reads either layout under any name, and also the weights of a full legacy model file
// (model_weights), as Keras 2's load_weights does.
#include "keras/errors.hpp"
#include "keras/model.hpp"
#include "saving/atomic_write.hpp"
#include "saving/h5_file.hpp"
#include "saving/keras3_weights.hpp"
#include "saving/keras_errors_only.hpp"
#include "saving/legacy_weights.hpp"
#include "saving/writer_stamp.hpp"

namespace keras {

void Model::save_weights(const std::string& filepath, bool overwrite) const {
    if (!is_chief()) return;   // distributed: the chief (rank 0) writes the file for every worker
    const bool keras3 = filepath.ends_with(".weights.h5");
    if (!keras3 && !filepath.ends_with(".h5") && !filepath.ends_with(".hdf5"))
        value_error("save_weights(): the filename must end in `.weights.h5` (Keras 3's layout) or `.h5` (Keras's "
                    "legacy layout). Received: filepath={}", filepath);
    saving::atomic_write(filepath, [&](const std::string& temp_path) {
        saving::H5File file = saving::H5File::create(temp_path);
        if (keras3) saving::write_keras3_weights(file, *this);
        else saving::write_legacy_weights(file, *this);
        saving::stamp_kerascpp_version(file);
        file.close();
    }, overwrite);
}

void Model::load_weights(const std::string& filepath) {
    saving::keras_errors_only(filepath, [&] {
        const saving::H5File file = saving::H5File::open(filepath);
        if (file.has_string_array_attr("layer_names")) saving::read_legacy_weights(file, *this);
        else if (file.has_group("model_weights")) saving::read_legacy_weights(file.group("model_weights"), *this);
        else if (file.has_group("layers")) saving::read_keras3_weights(file, *this);
        else
            value_error("Cannot load weights from '{}': it is an HDF5 file but not a Keras weights file (no "
                        "'layer_names' attribute, 'model_weights' group or 'layers' group)", filepath);
    });
}

}  // namespace keras
