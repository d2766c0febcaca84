#!/bin/sh
# storage_maildir's index, change log and uid list readers under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" storage
