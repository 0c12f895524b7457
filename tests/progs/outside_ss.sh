#!/bin/sh
# Unmodified outside programs under the library, seen from outside with ss: python3's
# http.server sends a 3 MB file to curl, which reads it at 20 KB/s, so both ends are still
# there 2 s later for `ss -tieom` to print. Inside `unshare -n`.
# usage: outside_ss.sh LIB 'SERVER_SETTINGS' 'CLIENT_SETTINGS'  (either may be "none": no shim)
set -e
lib=$1
ip link set lo up
www=$(mktemp -d)
head -c 3000000 /dev/zero > "$www/big"
shim() { if [ "$1" = none ]; then echo ""; else echo "LD_PRELOAD=$lib $1"; fi; }
cd "$www"
env $(shim "$2") python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do ss -tln | grep -q 127.0.0.1:8000 && break; sleep 0.1; done
env $(shim "$3") curl -sS --limit-rate 20k -o /dev/null http://127.0.0.1:8000/big &
client=$!
sleep 2
# One line per socket: its address line, then its details.
ss -tieomH state connected '( sport = :8000 or dport = :8000 )' | paste - -
kill $client $server
rm -rf "$www"
