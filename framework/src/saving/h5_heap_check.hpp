// A guard against faults inside libhdf5 (1.10.8 at least; see docs/security.md): its global heap reader
// (H5HG_read, reached through every variable-length string attribute Keras writes) trusts the sizes it
// finds, so a corrupted collection makes it hang or overflow its buffer. Before HDF5 sees a file we
// walk every global heap collection in it ourselves and refuse the file when one does not fit.
// Internal: not installed.
#pragma once

#include <string>

namespace keras::saving {

// ValueError naming the file and the collection when a global heap collection ("GCOL", version 1)
// runs past the end of the file or its objects do not tile it. Reads the file once (about the cost
// of reading it; a model file is read whole by load_model anyway).
void check_global_heaps(const std::string& filepath);

}  // namespace keras::saving
