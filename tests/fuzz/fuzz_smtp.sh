#!/bin/sh
# The SMTP command parser and DATA/BDAT reader under libFuzzer (see
# run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" smtp
