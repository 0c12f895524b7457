#!/usr/bin/env bash
# Installs what the tests, the demo, the benchmark's smoke run and the lint checks need, and only
# what is missing: Debian packages (one `apt-get update`, then one `apt-get install -y`), Python
# packages (pip, into the interpreter behind `python3`) and the rustfmt and clippy components
# (rustup). Run again, it installs nothing. It fails, naming what it could not install.
#
#   bash scripts/setup.sh           what .ci/run, scripts/demo.sh and `bench.sh --smoke` need
#   bash scripts/setup.sh --bench   and the full benchmark's Perl servers (Starman, plackup)
#   bash scripts/setup.sh --matrix  and the compatibility matrix's programs (bench/matrix.py):
#                                   Redis, memcached, PostgreSQL, MariaDB, Apache, haproxy, uvicorn...
#   bash scripts/setup.sh --check   install nothing: list what is missing, exit 1 if anything is
#
# The tests and the harnesses install nothing themselves: a missing tool fails its test with a
# message that names the tool and this script. Installing needs root (apt-get); with everything
# present any user may run it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/sbin:/sbin # nginx and sysctl live in sbin

fail() { echo "setup: $*" >&2; exit 1; }

bench= matrix= check=
for arg in "$@"; do
    case $arg in
        --bench) bench=1 ;;
        --matrix) bench=1 matrix=1 ;; # the matrix runs the full benchmark's servers too
        --check) check=1 ;;
        *) fail "unknown argument $arg (usage: setup.sh [--bench] [--matrix] [--check])" ;;
    esac
done

# Each Debian package, and what shows it is there: a command on PATH, an absolute path, or
# "dpkg" for a package with no command of its own (dpkg-query says it is installed).
debs=(
    python3:python3             # the harnesses, the demo, the test programs in tests/progs
    /usr/bin/python3:python3    # memcheck runs Debian's own interpreter under valgrind
    ip:iproute2                 # lo up in each namespace; the benchmark's emulated link
    unshare:util-linux          # the private network namespaces
    setpriv:util-linux          # the secure-execution test runs its probe as nobody
    sysctl:procps               # the benchmark's link sets tcp_fastopen in its namespaces
    cc:gcc                      # test programs in C (transparency, secure, memcheck, launcher)
    dpkg:libc6-dev              # their headers, and libc.a for the static binary doctor inspects
    perl:perl                   # prefork: examples/perl-server.pl
    node:nodejs                 # self_tuned: Node.js http; the benchmark's Node.js server
    javac:openjdk-17-jdk-headless  # thread_pool: the JDK's HttpServer
    curl:curl                   # the benchmark's curl client
    valgrind:valgrind           # memcheck
    dpkg:libc6-dbg              # glibc's symbols, which valgrind needs to redirect its functions
    nginx:nginx-light           # load (nginx under wrk); the full benchmark
    wrk:wrk                     # load; the full benchmark
    tcpdump:tcpdump             # packet traces: SOCKTUNE_TEST_TRACE=1 (netns.py --trace)
    prometheus-node-exporter:prometheus-node-exporter  # node_exporter: the textfile read for real
    promtool:prometheus         # node_exporter: promtool check metrics
    /usr/sbin/vsftpd:vsftpd     # ftp: passive FTP under client Fast Open; defer_heal
    strace:strace               # fork_routes: the getpid calls a server makes
    openssl:openssl             # armed: a certificate for the TLS case, made at test time
    redis-server:redis-server   # the matrix's smoke run (bench.sh --smoke)
)
if [ -n "$bench" ]; then
    debs+=(starman:starman plackup:libplack-perl)
fi
if [ -n "$matrix" ]; then # bench/matrix.py; each server's binary, which its package brings
    debs+=(
        memcached:memcached
        dpkg:postgresql         # the server lives in /usr/lib/postgresql/VERSION/bin
        mariadbd:mariadb-server
        apache2:apache2
        haproxy:haproxy
        vsftpd:vsftpd
    )
fi
pips=(gunicorn flask aiohttp) # the benchmark: gunicorn serving Flask (link section, smoke run included), aiohttp (cost)
pips+=(pyftpdlib aiosmtpd) # the matrix's smoke run: an FTP and an SMTP server
if [ -n "$matrix" ]; then # the matrix's asyncio server and its PostgreSQL and MariaDB clients
    pips+=(uvicorn pg8000 pymysql)
fi

present() { # present CHECK PACKAGE
    case $1 in
        dpkg) [ "$(dpkg-query -W -f='${db:Status-Status}' "$2" 2>/dev/null)" = installed ] ;;
        /*) [ -e "$1" ] ;;
        *) command -v "$1" >/dev/null ;;
    esac
}

missing_debs() { # the packages (each once) whose check fails
    local pair seen=" "
    for pair in "${debs[@]}"; do
        local what=${pair%%:*} pkg=${pair#*:}
        if ! present "$what" "$pkg" && [[ $seen != *" $pkg "* ]]; then
            seen+="$pkg "
            echo "$pkg"
        fi
    done
}

# For the real interpreter behind python3, not a wrapper such as a pyenv shim: pip installs
# beside it, and the benchmark puts its directory first on PATH so that gunicorn is found there.
missing_pips() { # the Python packages that do not import (and gunicorn without its command)
    local py pkg
    py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || return 0
    for pkg in "${pips[@]}"; do
        if ! "$py" -c "import $pkg" 2>/dev/null; then
            echo "$pkg"
        elif [ "$pkg" = gunicorn ] && [ ! -x "$(dirname "$py")/gunicorn" ]; then
            echo "$pkg"
        fi
    done
}

missing_components() { # rustfmt and clippy, by what cargo runs
    cargo fmt --version >/dev/null 2>&1 || echo rustfmt
    cargo clippy --version >/dev/null 2>&1 || echo clippy
}

quietly() { # quietly TOOL WHAT COMMAND...: runs COMMAND with its output in a log, shown on failure
    local tool=$1 what=$2 log
    shift 2
    log=$(mktemp)
    if ! "$@" </dev/null >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        fail "$tool could not install $what (its last lines are above)"
    fi
    rm -f "$log"
}

command -v cargo >/dev/null ||
    fail "cargo is missing: install a Rust toolchain with rustup (this script cannot fetch one)"

mapfile -t want_debs < <(missing_debs)
if [ "${#want_debs[@]}" -gt 0 ] && [ -z "$check" ]; then
    [ "$(id -u)" = 0 ] || fail "missing Debian packages ${want_debs[*]}: run as root: bash scripts/setup.sh"
    command -v apt-get >/dev/null || fail "missing Debian packages ${want_debs[*]}, and there is no apt-get"
    echo "setup: installing Debian packages ${want_debs[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get "${want_debs[*]}" apt-get update -qq
    quietly apt-get "${want_debs[*]}" apt-get install -y -qq "${want_debs[@]}"
    mapfile -t still < <(missing_debs)
    [ "${#still[@]}" -eq 0 ] || fail "apt-get ran, but ${still[*]} still missing (a command or file it should bring is not there)"
fi

# After apt-get, which may have brought python3 itself.
mapfile -t want_pips < <(missing_pips)
if [ "${#want_pips[@]}" -gt 0 ] && [ -z "$check" ]; then
    py=$(python3 -c 'import sys; print(sys.executable)') || fail "python3 is missing"
    [ "$(id -u)" = 0 ] || fail "missing Python packages ${want_pips[*]} for $py: run as root: bash scripts/setup.sh"
    echo "setup: installing Python packages ${want_pips[*]} (pip, for $py)" >&2
    quietly pip "${want_pips[*]} for $py" env PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_ROOT_USER_ACTION=ignore "$py" -m pip install -q "${want_pips[@]}"
    mapfile -t still < <(missing_pips)
    [ "${#still[@]}" -eq 0 ] || fail "pip ran, but ${still[*]} still missing for $py"
fi

mapfile -t want_comps < <(missing_components)
if [ "${#want_comps[@]}" -gt 0 ] && [ -z "$check" ]; then
    command -v rustup >/dev/null ||
        fail "cargo lacks ${want_comps[*]} and there is no rustup to add them"
    echo "setup: adding the Rust components ${want_comps[*]} (rustup)" >&2
    rustup component add "${want_comps[@]}" </dev/null >&2 ||
        fail "rustup could not add ${want_comps[*]}"
    mapfile -t still < <(missing_components)
    [ "${#still[@]}" -eq 0 ] || fail "rustup ran, but cargo still lacks ${still[*]}"
fi

if [ -n "$check" ]; then
    all=("${want_debs[@]/#/Debian:}" "${want_pips[@]/#/pip:}" "${want_comps[@]/#/rustup:}")
    if [ "${#all[@]}" -gt 0 ]; then
        echo "setup: missing ${all[*]}; run: bash scripts/setup.sh" >&2
        exit 1
    fi
fi
installed=$(( ${#want_debs[@]} + ${#want_pips[@]} + ${#want_comps[@]} ))
if [ "$installed" -eq 0 ]; then
    echo "setup: everything present, nothing installed" >&2
else
    done=("${want_debs[@]}" "${want_pips[@]}" "${want_comps[@]}")
    echo "setup: done (installed ${done[*]})" >&2
fi
