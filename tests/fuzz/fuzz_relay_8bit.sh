#!/bin/sh
# The relay's 8BITMIME downgrade under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" relay_8bit
