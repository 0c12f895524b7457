#!/usr/bin/env bash
# Overhead benchmark: builds the library, then measures write(), epoll_wait and a keep-alive
# request loop with and without it, side by side, and counts instructions per call with
# callgrind (see scripts/bench_overhead.py). Needs root (for `unshare -n`), cargo, python3 and a
# C compiler; scripts/setup.sh installs what is missing (valgrind, gcc, nginx, wrk). Prints figures
# and writes them to target/bench-overhead.json. Not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release
exec python3 scripts/bench_overhead.py --lib target/release/libsocktune.so "$@"
