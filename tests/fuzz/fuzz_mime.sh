#!/bin/sh
# The MIME parser and its serialized form under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" mime
