#!/usr/bin/env bash
# Overhead benchmark: builds the library, then measures write(), epoll_wait and a keep-alive
# request loop with and without it, side by side, and counts instructions per call with
# callgrind (see scripts/bench_overhead.py). Needs root (for `unshare -n`), cargo, python3 and a
# C compiler; valgrind and gcc are installed with apt-get when missing. Prints figures and writes
# them to target/bench-overhead.json. Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
exec python3 scripts/bench_overhead.py --lib target/release/libsocktune.so "$@"
