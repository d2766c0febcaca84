#!/bin/sh
# The line reader of core/conn.c under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" lines
