#!/usr/bin/env bash
# socktune benchmark: unmodified servers and clients without and with each behaviour, and Fast Open
# and defer-accept over an emulated wide-area link (bench/link.py). Needs root (network namespaces,
# TUN devices). Installs what it lacks with apt-get and pip, builds the library, runs bench/run.py.
#
#   bash scripts/bench.sh [--smoke] [--out DIR]
#
# Writes DIR/results.md, DIR/results.json and DIR/chart.svg (DIR: bench/results, or
# bench/results-smoke with --smoke). --smoke runs the link check, the RTT scenarios and a few cells
# with programs a fresh machine has (python3 http.server, Node.js, curl), and fails if any breaks.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "bench: $*" >&2; exit 1; }

smoke=
out=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) smoke=--smoke ;;
        --out) out=$2; shift ;;
        *) fail "unknown argument $1 (usage: bench.sh [--smoke] [--out DIR])" ;;
    esac
    shift
done
out=${out:-bench/results${smoke:+-smoke}}

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces and TUN devices)"
command -v cargo >/dev/null || fail "cargo is missing; install a Rust toolchain"

# commands needed, and the Debian package of each
debs=(ip:iproute2 curl:curl node:nodejs)
[ -z "$smoke" ] && debs+=(wrk:wrk nginx:nginx-light starman:starman plackup:libplack-perl)
missing=()
for pair in "${debs[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]} with apt-get" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null ||
        fail "apt-get could not install ${missing[*]}"
fi

# The real interpreter, not a wrapper script such as a pyenv shim: pip installs next to it, and
# the harness puts its directory first on PATH so gunicorn and flask are found there.
py=$(python3 -c 'import sys; print(sys.executable)') || fail "python3 is missing"
if ! "$py" -c 'import gunicorn, flask' 2>/dev/null; then
    echo "bench: installing gunicorn and flask with pip" >&2
    "$py" -m pip install -q gunicorn flask >/dev/null 2>&1 || fail "pip could not install gunicorn and flask"
fi

echo "bench: building the library" >&2
cargo build --release -q
lib=$PWD/target/release/libsocktune.so
[ -f "$lib" ] || fail "cargo build did not produce $lib"

"$py" bench/run.py --lib "$lib" --out "$out" $smoke
echo "bench: table in $out/results.md, chart in $out/chart.svg, data in $out/results.json" >&2
