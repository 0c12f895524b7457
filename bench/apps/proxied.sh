#!/bin/sh
# Starts the matrix's proxy backend, python3 http.server (HTTP/1.1, which writes each response's
# header and body in two sends) on BACKEND_PORT, waits until it listens, then runs the proxy.
# usage: proxied.sh BACKEND_PORT WWW PROXY_COMMAND...   (one process group: the harness stops both)
port=$1 www=$2
shift 2
# In a subshell, so that the backend is not the proxy's child (nginx logs an unknown child's exit).
(python3 -m http.server -p HTTP/1.1 "$port" --bind 127.0.0.1 -d "$www" &)
hex=$(printf ':%04X ' "$port")
tries=0
until grep -q "${hex}00000000:0000 0A " /proc/net/tcp; do # state 0A: listening; reading it sends no packet
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { echo "proxied.sh: error: the backend never listened on $port" >&2; exit 1; }
    sleep 0.05
done
exec "$@"
