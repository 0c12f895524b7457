#!/usr/bin/env bash
# Counts the calls between modules that one keep-alive connection's accept, read, two writes,
# read and close make inside a debug build of libsocktune.so (SOCKTUNE_CORK=1 and
# SOCKTUNE_STATS on), with gdb. usage: bash bench/crossings/run.sh [LIB]   (default: a debug
# build made here). Not a test: it prints the count and the pairs of modules.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v gdb >/dev/null || { echo "crossings: gdb is missing (apt-get install -y gdb)" >&2; exit 1; }
lib=${1:-}
if [ -z "$lib" ]; then
    cargo build -p socktune-preload >&2
    lib=$PWD/target/debug/libsocktune.so
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -g -o "$work/one_connection" bench/crossings/one_connection.c
port=$((20000 + RANDOM % 20000))
python3 - "$port" <<'PY' &
import socket, sys, time
for _ in range(200):  # until gdb has started the server
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.1)
c.sendall(b"GET / HTTP/1.1\r\n\r\n")
c.recv(100)
c.close()
PY
gdb -batch -ex "set environment LD_PRELOAD=$lib" -ex "set environment SOCKTUNE_CORK=1" \
    -ex "set environment SOCKTUNE_STATS=$work/stats.jsonl" -ex "set args $port" \
    -x bench/crossings/count.py "$work/one_connection" 2>/dev/null | sed -n '/^crossings=/,$p'
wait
