#!/bin/sh
# The IMAP command reader and scanner under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" imap
