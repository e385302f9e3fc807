// KERAS_API marks what libkerascpp exports. The library is built with -fvisibility=hidden
// (meson: gnu_symbol_visibility 'hidden'), so a class or function of the public headers is visible
// to programs only with KERAS_API; everything else (backends, saving internals, helpers) stays
// inside the library. On ELF the same attribute serves building and using the library.
#pragma once

#if defined(_WIN32)
#define KERAS_API
#else
// Exported from libkerascpp (default visibility).
#define KERAS_API __attribute__((visibility("default")))
#endif
