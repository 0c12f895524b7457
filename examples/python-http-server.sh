#!/bin/sh
# Serves a directory with Python's http.server in HTTP/1.1 (keep-alive) mode, under
# socktune. http.server sends the header and the body in two send() calls.
# Usage: examples/python-http-server.sh [PORT [DIR]]     (defaults: 8000, .)
# Set BIND to listen elsewhere than 127.0.0.1; SOCKTUNE_LIB to use another build.
set -eu
lib=$(readlink -f "${SOCKTUNE_LIB:-$(dirname "$0")/../target/release/libsocktune.so}") || true
[ -f "$lib" ] || { echo "libsocktune.so not found: run 'cargo build --release' or set SOCKTUNE_LIB" >&2; exit 1; }
port=${1:-8000}
dir=${2:-.}

export SOCKTUNE_CORK="${SOCKTUNE_CORK:-1}"          # one segment per response
export SOCKTUNE_QUICKACK="${SOCKTUNE_QUICKACK:-0}"  # let request ACKs ride on the response
# export SOCKTUNE_DEFER_ACCEPT=1   # wake accept() only when the request has arrived
# export SOCKTUNE_FASTOPEN=256     # server TCP Fast Open (needs net.ipv4.tcp_fastopen & 2)
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
exec python3 -m http.server -p HTTP/1.1 -b "${BIND:-127.0.0.1}" -d "$dir" "$port"
