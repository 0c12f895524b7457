#!/bin/sh
# curl fetches http://127.0.0.1:PORT/f100 N times, a new connection each; reports codes (the
# HTTP statuses, joined) and tfo_active, the namespace's TCPFastOpenActive increase (requests
# that rode in their SYN). usage: curl_tfo.sh PORT N
active() { awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "TCPFastOpenActive") c = i; h = 1 } else print $c }' /proc/net/netstat; }
before=$(active)
codes=
i=0
while [ "$i" -lt "$2" ]; do
    codes=$codes$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/f100")
    i=$((i + 1))
done
echo "codes=$codes tfo_active=$(($(active) - before))"
