#!/bin/sh
# The POP3 command parser, snapshot and byte-stuffer under libFuzzer
# (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" pop3
