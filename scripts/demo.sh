#!/usr/bin/env bash
# socktune demo: builds the library, then measures an unmodified `python3 -m http.server` without
# and with socktune, in a private network namespace (loopback only), and prints a before/after
# table. Needs root (for `unshare -n`) and cargo; first runs scripts/setup.sh, which installs
# what is missing (python3 and iproute2 here, and what the tests and the benchmark need, so that
# `cargo test --release` works next). Packet counts come from the kernel's own counters (see
# tests/harness/netns.py), so no capture tool is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "demo: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is missing; install a Rust toolchain"
bash scripts/setup.sh || fail "scripts/setup.sh could not install what the demo needs"
unshare -n true 2>/dev/null || fail "a private network namespace (unshare -n) needs root"

cargo build --release
lib=$PWD/target/release/libsocktune.so
[ -f "$lib" ] || fail "cargo build did not produce $lib"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run HARNESS-ARGS...: one scenario; prints its key=value result line, or shows why it failed.
run() {
    local out
    out=$(python3 tests/harness/netns.py --lib "$lib" "$@" 2>"$log") && [[ " $out " == *" client_rc=0 "* ]] ||
        { cat "$log" >&2; fail "scenario failed: $*"; }
    echo "$out"
}

field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

row() { # row LABEL RESULT PACKETS-KEY
    printf '%-46s %9s %9s %12s %9s\n' "$1" "$(field "$2" p50_ms)" "$(field "$2" p99_ms)" \
        "$(field "$2" "$3")" "$(field "$2" req_s)"
}

ka_server="python3 -m http.server -p HTTP/1.1 {port} --bind 127.0.0.1 -d {www}"
ka_client="python3 {progs}/ka_client.py 127.0.0.1 {port} 200 /f100"
short_server="python3 -m http.server {port} --bind 127.0.0.1 -d {www}"
short_client="python3 {progs}/short_client.py 127.0.0.1 {port} 200 /f100"
server_all=(--srv-env SOCKTUNE_CORK=1 --srv-env SOCKTUNE_QUICKACK=0 --srv-env SOCKTUNE_FASTOPEN=256
    --srv-env SOCKTUNE_DEFER_ACCEPT=5)
client_all=(--cli-env SOCKTUNE_QUICKACK=0 --cli-env SOCKTUNE_FASTOPEN_CONNECT=1)

echo "measuring (about 15 s)..." >&2
ka_plain=$(run --server "$ka_server" --client "$ka_client")
ka_cork=$(run --server "$ka_server" --srv-shim --srv-env SOCKTUNE_CORK=1 --client "$ka_client")
short_plain=$(run --tfo --server "$short_server" --client "$short_client")
short_all=$(run --tfo --server "$short_server" --srv-shim "${server_all[@]}" --cli-shim "${client_all[@]}" \
    --client "$short_client")

cat <<EOF

Unmodified python3 -m http.server, 100-byte file, loopback in a private network namespace.
Keep-alive: 200 GETs on one HTTP/1.1 connection. Short: 200 HTTP/1.0 connections, one GET each.

EOF
printf '%-46s %9s %9s %12s %9s\n' scenario "p50 ms" "p99 ms" "packets/req" "req/s"
row "keep-alive, without socktune" "$ka_plain" packets_per_request
row "keep-alive, SOCKTUNE_CORK=1" "$ka_cork" packets_per_request
row "short, without socktune" "$short_plain" packets_per_conn
row "short, all behaviours (see below)" "$short_all" packets_per_conn
cat <<EOF

"all behaviours": server SOCKTUNE_CORK=1 SOCKTUNE_QUICKACK=0 SOCKTUNE_FASTOPEN=256
SOCKTUNE_DEFER_ACCEPT=5, client SOCKTUNE_QUICKACK=0 SOCKTUNE_FASTOPEN_CONNECT=1, and
net.ipv4.tcp_fastopen=3 in the namespace. Requests riding in the SYN: $(field "$short_all" syn_data | tr -cd 1 | wc -c) of 200.
EOF
# Where a 200 ms stall shows, name the kernel's loopback Fast Open reorder, seen without the shim too.
if awk -v p="$(field "$short_all" p99_ms)" 'BEGIN { exit !(p > 150) }'; then
    cat <<EOF
The last row's p99 is above 150 ms. On loopback the kernel can deliver a Fast Open reply before
its SYN-ACK; the client drops it, and it comes again 200 ms later, with or without socktune
(docs/behaviours.md, "Fast Open on loopback"; socktune doctor says how to steer lo).
EOF
fi
