#!/bin/sh
# auth_passwd's users and aliases files under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" passwd
