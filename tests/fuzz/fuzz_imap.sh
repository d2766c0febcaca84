#!/bin/sh
exec "$(dirname "$0")/run_fuzz.sh" imap
