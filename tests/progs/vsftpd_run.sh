#!/bin/sh
# Runs vsftpd in the foreground on 127.0.0.1:PORT with anonymous passive FTP: downloads from
# ROOT, uploads into ROOT/up. usage: vsftpd_run.sh PORT ROOT
set -e
port=$1 root=$2
mkdir -p "$root/up" /var/run/vsftpd/empty
chmod 755 "$root"
chmod 777 "$root/up"
conf=$(mktemp)
cat >"$conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_umask=022
anon_root=$root
pasv_enable=YES
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
CONF
exec vsftpd "$conf"
