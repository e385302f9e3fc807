#!/bin/sh
# The installed headers (framework/keras, layers/keras, datasets/keras, less the internal backend.hpp
# and masked_steps.hpp, see meson.build) must not include the internal ones, which are not installed.
root="$1"
bad=$(grep -rlE '#include "keras/(backend|layers/masked_steps)\.hpp"' "$root/framework/keras" "$root/layers/keras" \
      "$root/datasets/keras" | grep -vE '/(backend|masked_steps)\.hpp$')
if [ -n "$bad" ]; then
    echo "public headers that include an internal one:"
    echo "$bad"
    exit 1
fi
echo "public headers include no internal header"
