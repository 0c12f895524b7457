#!/usr/bin/env bash
# socktune benchmark: unmodified servers and clients without and with each behaviour, and Fast Open
# and defer-accept over an emulated wide-area link (bench/link.py). Needs root (network namespaces,
# TUN devices). Installs what it lacks (scripts/setup.sh; --bench for the full run's Perl servers),
# builds the library, runs bench/run.py.
#
#   bash scripts/bench.sh [--smoke | --matrix] [--out DIR]
#
# Writes DIR/results.md, DIR/results.json and DIR/chart.svg (DIR: bench/results, or
# bench/results-smoke with --smoke). --smoke runs the link check, the RTT scenarios and a few cells
# with programs a fresh machine has (python3 http.server, Node.js, curl), then the compatibility
# matrix's smoke run (into DIR/matrix), and fails if any cell breaks. --matrix runs the
# compatibility matrix instead (bench/matrix.py: 22 programs, each behaviour alone and all, 3
# rounds; setup.sh --matrix installs its programs) into DIR/results.md and results.json (DIR:
# bench/results-matrix).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "bench: $*" >&2; exit 1; }

smoke=
matrix=
out=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) smoke=--smoke ;;
        --matrix) matrix=1 ;;
        --out) out=$2; shift ;;
        *) fail "unknown argument $1 (usage: bench.sh [--smoke | --matrix] [--out DIR])" ;;
    esac
    shift
done
[ -n "$smoke" ] && [ -n "$matrix" ] && fail "--smoke and --matrix are two runs: choose one"
out=${out:-bench/results${smoke:+-smoke}${matrix:+-matrix}}

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces and TUN devices)"
command -v cargo >/dev/null || fail "cargo is missing; install a Rust toolchain"

# The smoke run's programs (curl, Node.js, gunicorn and Flask from pip...) come with the default
# set; the full run's Starman and plackup with --bench.
setup_args=()
[ -z "$smoke" ] && setup_args=(--bench)
[ -n "$matrix" ] && setup_args=(--matrix)
bash scripts/setup.sh "${setup_args[@]}" || fail "scripts/setup.sh could not install what the benchmark needs"

# The real interpreter, not a wrapper script such as a pyenv shim: pip installed gunicorn and
# flask next to it, and the harness puts its directory first on PATH so they are found there.
py=$(python3 -c 'import sys; print(sys.executable)') || fail "python3 is missing"

echo "bench: building the library" >&2
cargo build --release -q
lib=$PWD/target/release/libsocktune.so
[ -f "$lib" ] || fail "cargo build did not produce $lib"

if [ -n "$matrix" ]; then
    mkdir -p "$out"
    "$py" bench/matrix.py --lib "$lib" --out "$out"
    echo "bench: matrix in $out/results.md, data in $out/results.json" >&2
    exit 0
fi
"$py" bench/run.py --lib "$lib" --out "$out" $smoke
echo "bench: table in $out/results.md, chart in $out/chart.svg, data in $out/results.json" >&2
if [ -n "$smoke" ]; then
    mkdir -p "$out/matrix"
    "$py" bench/matrix.py --lib "$lib" --out "$out/matrix" --smoke
    echo "bench: the matrix's smoke run in $out/matrix/results.md" >&2
fi
