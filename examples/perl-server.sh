#!/bin/sh
# Runs perl-server.pl (header and body in two writes, no socket options) under
# socktune: each response is corked into one segment and ACKs ride on responses.
# Usage: examples/perl-server.sh [PORT [WORKERS [BIND_ADDR]]]
# Set SOCKTUNE_LIB to use another build; set SOCKTUNE_CORK=0 etc. to compare.
set -eu
here=$(dirname "$0")
lib=$(readlink -f "${SOCKTUNE_LIB:-$here/../target/release/libsocktune.so}") || true
[ -f "$lib" ] || { echo "libsocktune.so not found: run 'cargo build --release' or set SOCKTUNE_LIB" >&2; exit 1; }

export SOCKTUNE_CORK="${SOCKTUNE_CORK:-1}"          # one segment per response
export SOCKTUNE_QUICKACK="${SOCKTUNE_QUICKACK:-0}"  # let request ACKs ride on the response
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
exec perl "$here/perl-server.pl" "$@"
