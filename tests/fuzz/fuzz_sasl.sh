#!/bin/sh
# SASL PLAIN and LOGIN exchanges (core/sasl.c) under libFuzzer (see run_fuzz.sh).
exec "$(dirname "$0")/run_fuzz.sh" sasl
