#!/usr/bin/env bash
# Cost benchmark: what socktune costs, side by side with the same programs without it (start-up,
# system calls per response, load, the flusher, a thread-pool server; see bench/cost/cost.py).
# Needs root (for `unshare -n`); scripts/setup.sh installs what is missing. Prints a table and
# writes bench/results-cost/cost.json and cost.md (--smoke: bench/results-cost-smoke, a short run
# that fails if any program breaks; its figures mean nothing).
#
#   bash scripts/bench-cost.sh [--smoke] [--pairs N] [--launches L] [--turns N] [--secs S]
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results-cost
for a in "$@"; do [ "$a" = --smoke ] && out=bench/results-cost-smoke; done
bash scripts/setup.sh
cargo build --release -q
# The real interpreter, not a wrapper script: pip installed gunicorn and aiohttp beside it.
py=$(python3 -c 'import sys; print(sys.executable)')
exec "$py" bench/cost/cost.py --lib target/release/libsocktune.so --out "$out" "$@"
