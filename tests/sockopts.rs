//! The per-socket options (SOCKTUNE_KEEPALIVE to SOCKTUNE_MAXSEG), read back with getsockopt
//! on the accepted and the connected socket (tests/progs/sockopts.py), IPv4 and IPv6; absent
//! outside SOCKTUNE_PORTS and the role; kept over the program's own setsockopt only under
//! SOCKTUNE_FORCE. Keepalive and the user timeout are also shown by their effect: a peer that
//! stops answering (tests/progs/dead_peer.py) is found dead within their bounds, and not
//! without them.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

const SERVER: &[&str] = &[
    "SOCKTUNE_KEEPALIVE=30:5:3",
    "SOCKTUNE_USER_TIMEOUT=20000",
    "SOCKTUNE_CONGESTION=reno",
    "SOCKTUNE_NOTSENT_LOWAT=16384",
    "SOCKTUNE_SNDBUF=65536",
    "SOCKTUNE_RCVBUF=131072",
    "SOCKTUNE_TOS=184",
    "SOCKTUNE_MARK=7",
    "SOCKTUNE_PRIORITY=4",
    "SOCKTUNE_MAXSEG=1000",
];

const CLIENT: &[&str] = &[
    "SOCKTUNE_KEEPALIVE=40:6:4",
    "SOCKTUNE_USER_TIMEOUT=15000",
    "SOCKTUNE_SYNCNT=2",
    "SOCKTUNE_CONGESTION=cubic",
    "SOCKTUNE_NOTSENT_LOWAT=8192",
    "SOCKTUNE_SNDBUF=32768",
    "SOCKTUNE_RCVBUF=98304",
    "SOCKTUNE_TOS=40",
    "SOCKTUNE_MARK=9",
    "SOCKTUNE_PRIORITY=3",
    "SOCKTUNE_MAXSEG=1200",
];

/// What the server's accepted socket must read back under SERVER (the kernel doubles buffer
/// sizes), then the client's under CLIENT.
const SERVER_WANT: &[(&str, &str)] = &[
    ("ka", "1"),
    ("ka_idle", "30"),
    ("ka_intvl", "5"),
    ("ka_cnt", "3"),
    ("ut", "20000"),
    ("cc", "reno"),
    ("lowat", "16384"),
    ("sndbuf", "131072"),
    ("rcvbuf", "262144"),
    ("tos", "184"),
    ("mark", "7"),
    ("prio", "4"),
];
const CLIENT_WANT: &[(&str, &str)] = &[
    ("ka", "1"),
    ("ka_idle", "40"),
    ("ka_intvl", "6"),
    ("ka_cnt", "4"),
    ("ut", "15000"),
    ("syncnt", "2"),
    ("cc", "cubic"),
    ("lowat", "8192"),
    ("sndbuf", "65536"),
    ("rcvbuf", "196608"),
    ("tos", "40"),
    ("mark", "9"),
    ("prio", "3"),
];

fn probe(name: &str, host: &str, sets: bool) -> Scenario {
    let sets = if sets { " --sets" } else { "" };
    let side = |mode| format!("python3 {{progs}}/sockopts.py {mode} {host} {{port}}{sets}");
    Scenario::new(name, &side("client")).server(&side("server"))
}

fn with(base: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(extra).copied().collect()
}

/// The keys of `want` whose value differs in `r` (side prefix `pre`).
fn differing(r: &Results, pre: &str, want: &[(&str, &str)]) -> Vec<String> {
    want.iter()
        .filter(|(k, v)| r.get(&format!("{pre}{k}")) != *v)
        .map(|(k, v)| format!("{pre}{k}={} (want {v})", r.get(&format!("{pre}{k}"))))
        .collect()
}

fn mss(r: &Results, pre: &str) -> f64 {
    r.num(&format!("{pre}mss"))
}

#[track_caller]
fn check_set(r: &Results, pre: &str, want: &[(&str, &str)], maxseg: f64) {
    let wrong = differing(r, pre, want);
    check(
        wrong.is_empty(),
        r,
        &format!("options must read back as set: {wrong:?}"),
    );
    check(
        mss(r, pre) <= maxseg,
        r,
        &format!("{pre}mss must be at most {maxseg}"),
    );
}

#[track_caller]
fn check_untouched(r: &Results, pre: &str, want: &[(&str, &str)]) {
    let wrong = differing(r, pre, want);
    check(
        wrong.len() == want.len(),
        r,
        &format!("{pre}: no option may read back as socktune's: only {wrong:?} differ"),
    );
}

/// The `behaviours` of the one connection recorded in `dir`/s.jsonl.
fn recorded(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("s.jsonl")).unwrap_or_default();
    let line = text
        .lines()
        .find(|l| l.contains("\"type\":\"conn\""))
        .unwrap_or("");
    let start = line.find("\"behaviours\":[").map_or(line.len(), |i| i + 14);
    line[start..]
        .split(']')
        .next()
        .unwrap_or("")
        .replace('"', "")
}

fn read_back(host: &str) {
    let dirs = [
        scratch(&format!("sockopts-srv-{host}")),
        scratch(&format!("sockopts-cli-{host}")),
    ];
    let stats = dirs
        .each_ref()
        .map(|d| format!("SOCKTUNE_STATS={}", d.join("s.jsonl").display()).leak() as &str);
    let runs = run_all(&[
        probe("baseline", host, false),
        probe("both sides", host, false)
            .server_env(&with(SERVER, &[stats[0]]))
            .client_env(&with(CLIENT, &[stats[1]])),
        probe("other ports", host, false)
            .server_env(&with(SERVER, &["SOCKTUNE_PORTS=9000-9100"]))
            .client_env(&with(CLIENT, &["SOCKTUNE_PORTS=9000-9100"])),
        probe("role client", host, false)
            .server_env(&with(SERVER, &["SOCKTUNE_ROLE=client"]))
            .client_env(&with(CLIENT, &["SOCKTUNE_ROLE=server"])),
        probe("all in arm A", host, false)
            .server_env(&with(SERVER, &["SOCKTUNE_AB=0"]))
            .client_env(&with(CLIENT, &["SOCKTUNE_AB=0"])),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!("{host} {:<12} {r}", r.name);
    }
    let [baseline, both, ports, role, arm_a] = &runs[..] else {
        unreachable!()
    };
    // Arm A: no option on connections; a listener's buffers reach both arms, as its
    // defer-accept does.
    let (buffers, per_connection): (Vec<_>, Vec<_>) = SERVER_WANT
        .iter()
        .partition(|(k, _)| ["sndbuf", "rcvbuf"].contains(k));
    check_untouched(arm_a, "", CLIENT_WANT);
    let wrong = differing(arm_a, "srv_", &per_connection);
    check(
        wrong.len() == per_connection.len(),
        arm_a,
        &format!("arm A: only {wrong:?} differ"),
    );
    check_set(arm_a, "srv_", &buffers, 1000.0);
    for r in [baseline, ports, role] {
        check_untouched(r, "srv_", SERVER_WANT);
        check_untouched(r, "", CLIENT_WANT);
        for pre in ["srv_", ""] {
            check(
                mss(r, pre) > 1200.0,
                r,
                "the segment size must be the path's",
            );
        }
    }
    check_set(both, "srv_", SERVER_WANT, 1000.0);
    check_set(both, "", CLIENT_WANT, 1200.0);
    let [server, client] = dirs.each_ref().map(|d| recorded(d));
    let want_server =
        "keepalive,user-timeout,congestion,notsent-lowat,sndbuf,rcvbuf,tos,mark,priority,maxseg";
    let want_client = "keepalive,user-timeout,syncnt,congestion,notsent-lowat,sndbuf,rcvbuf,tos,mark,priority,maxseg";
    check(
        server == want_server && client == want_client,
        both,
        &format!("the records must name the options applied: server {server:?}, client {client:?}"),
    );
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn options_read_back_on_accepted_and_connected_sockets_ipv4() {
    needs_root!(NETNS);
    read_back("127.0.0.1");
}

#[test]
fn options_read_back_on_accepted_and_connected_sockets_ipv6() {
    needs_root!(NETNS);
    read_back("::1");
}

/// The program sets every option itself, before listen()/connect() and again after
/// (sockopts.py --sets), TCP_CORK, TCP_QUICKACK and TCP_NODELAY among them.
#[test]
fn force_keeps_socktunes_values_over_the_programs() {
    needs_root!(NETNS);
    const ALL: &str = "SOCKTUNE_FORCE=nodelay,cork,quickack,keepalive,user_timeout,congestion,\
                       sndbuf,rcvbuf,tos,mark,priority,maxseg";
    const MORE: [&str; 3] = [
        "SOCKTUNE_NODELAY=1",
        "SOCKTUNE_CORK=1",
        "SOCKTUNE_QUICKACK=0",
    ];
    let runs = run_all(&[
        probe("program alone", "127.0.0.1", true),
        probe("socktune alone", "127.0.0.1", false)
            .server_env(&with(SERVER, &MORE))
            .client_env(&with(CLIENT, &MORE)),
        probe("not forced", "127.0.0.1", true)
            .server_env(&with(SERVER, &MORE))
            .client_env(&with(CLIENT, &MORE)),
        probe("forced", "127.0.0.1", true)
            .server_env(&with(&with(SERVER, &MORE), &[ALL]))
            .client_env(&with(&with(CLIENT, &MORE), &[ALL])),
    ]);
    // What the program set (sockopts.py's OWN; buffers doubled, TOS 0x20 read back as 32).
    let own: &[(&str, &str)] = &[
        ("ka", "0"),
        ("ut", "1234"),
        ("cc", "cubic"),
        ("lowat", "4321"),
        ("sndbuf", "40000"),
        ("rcvbuf", "60000"),
        ("tos", "32"),
        ("mark", "99"),
        ("prio", "1"),
        ("nodelay", "0"),
        ("quickack", "1"),
        ("cork", "1"),
    ];
    for r in &runs {
        check_quiet(r);
        eprintln!("{:<14} {r}", r.name);
    }
    let [_, alone, _, forced] = &runs[..] else {
        unreachable!()
    };
    for r in [&runs[0], &runs[2]] {
        for pre in ["srv_", ""] {
            let wrong = differing(r, pre, own);
            check(
                wrong.is_empty(),
                r,
                &format!("the program's own values must win: {wrong:?}"),
            );
            check(
                mss(r, pre) <= 600.0,
                r,
                "the program's TCP_MAXSEG of 600 must hold",
            );
        }
    }
    // Forced: each option reads back as under socktune alone (nodelay on, delayed ACKs, not
    // corked before a write), but notsent-lowat, which cannot be forced: the program's stays.
    for pre in ["srv_", ""] {
        let want: Vec<(&str, String)> = own
            .iter()
            .map(|&(k, v)| match k {
                "lowat" => (k, v.to_string()),
                _ => (k, alone.get(&format!("{pre}{k}")).to_string()),
            })
            // TCP_QUICKACK reads the kernel's ACK mode of the moment, which a client's reads
            // and socktune's pending-ACK rule move; the server's, read before any data, holds.
            .filter(|(k, _)| pre == "srv_" || *k != "quickack")
            .collect();
        let want: Vec<(&str, &str)> = want.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let wrong = differing(forced, pre, &want);
        check(
            wrong.is_empty(),
            forced,
            &format!("forced values must stay: {wrong:?}"),
        );
        // socktune's 1000 on the listener, 1200 on the client: 988 with timestamps.
        check(
            mss(forced, pre) > 600.0,
            forced,
            "socktune's TCP_MAXSEG must hold",
        );
    }
}

fn dead_peer(name: &str, host: &str, what: &str) -> Scenario {
    let side = |args: &str| format!("python3 {{progs}}/dead_peer.py {args}");
    Scenario::new(name, &side(&format!("client {host} {{port}} {what} 8")))
        .server(&side(&format!("server {host} {{port}}")))
}

/// (seconds until the kernel closed the connection, with a timeout error); none within the 8 s
/// wait gives infinity.
fn dead_after(r: &Results) -> (f64, bool) {
    let t = r.get("dead_after_s");
    let timed_out = ["ETIMEDOUT", "EINVAL"].contains(&r.get("error"));
    (t.parse().unwrap_or(f64::INFINITY), timed_out)
}

#[test]
fn keepalive_and_user_timeout_find_a_silent_peer_within_their_bounds() {
    needs_root!(NETNS);
    let mut scenarios = Vec::new();
    for host in ["127.0.0.1", "::1"] {
        scenarios.extend([
            dead_peer("idle, untuned", host, "idle"),
            dead_peer("idle, keepalive", host, "idle").client_env(&["SOCKTUNE_KEEPALIVE=1:1:2"]),
            dead_peer("unacked, keepalive", host, "unacked")
                .client_env(&["SOCKTUNE_KEEPALIVE=1:1:2"]),
            dead_peer("unacked, user timeout", host, "unacked")
                .client_env(&["SOCKTUNE_USER_TIMEOUT=2000"]),
        ]);
    }
    let runs = run_all(&scenarios);
    for r in runs.chunks(4) {
        for r in r {
            eprintln!("{:<22} dead after {:?}", r.name, dead_after(r));
        }
        let [untuned, keepalive, unacked, user_timeout] = r else {
            unreachable!()
        };
        check(
            dead_after(untuned).0.is_infinite(),
            untuned,
            "untuned, a silent peer goes unnoticed",
        );
        // Idle 1 s, then 2 probes 1 s apart: dead at about 3 s.
        let (t, e) = dead_after(keepalive);
        check(
            (2.5..5.0).contains(&t) && e,
            keepalive,
            "keepalive finds it at idle + interval x count",
        );
        // Keepalive does not probe while data waits for its ACK: that is the user timeout's.
        check(
            dead_after(unacked).0.is_infinite(),
            unacked,
            "keepalive alone misses a peer that stops acknowledging",
        );
        let (t, e) = dead_after(user_timeout);
        check(
            (1.8..4.0).contains(&t) && e,
            user_timeout,
            "the user timeout aborts within its bound",
        );
    }
}

/// A buffer past net.core.wmem_max/rmem_max is clamped by the kernel and logged once at info;
/// a congestion control the kernel refuses, and a mark without CAP_NET_ADMIN (the client runs
/// as nobody), are reported once, whatever the level, and the rest still applies.
#[test]
fn clamps_and_refusals_are_reported_once() {
    needs_root!(NETNS);
    let two = |name: &str, client: &str| {
        Scenario::new(name, client).server("python3 {progs}/sockopts.py server 127.0.0.1 {port}")
    };
    let runs = run_all(&[
        two(
            "clamped",
            "python3 {progs}/sockopts.py client 127.0.0.1 {port}",
        )
        .server_env(&[
            "SOCKTUNE_SNDBUF=1000000000",
            "SOCKTUNE_RCVBUF=1000000000",
            "SOCKTUNE_LOG=info",
        ]),
        two(
            "refused",
            "setpriv --reuid=65534 --regid=65534 --clear-groups python3 {progs}/sockopts.py client 127.0.0.1 {port}",
        )
        .client_env(&[
            "SOCKTUNE_CONGESTION=nosuchalgo",
            "SOCKTUNE_MARK=5",
            "SOCKTUNE_TOS=40",
        ]),
    ]);
    let [clamped, refused] = &runs[..] else {
        unreachable!()
    };
    let count = |r: &Results, what: &str| r.stderr.lines().filter(|l| l.contains(what)).count();
    for what in [
        "sndbuf 1000000000 clamped by the kernel to",
        "rcvbuf 1000000000 clamped by the kernel to",
    ] {
        check(
            count(clamped, what) == 1,
            clamped,
            &format!("one line: {what}"),
        );
    }
    check(
        clamped.get("srv_sndbuf") != "2000000000" && clamped.num("srv_sndbuf") > 1_000_000.0,
        clamped,
        "the kernel's clamp (twice wmem_max) reads back",
    );
    check(
        count(refused, "not in net.ipv4.tcp_allowed_congestion_control") == 1
            && count(refused, "SO_MARK 5 refused: it needs CAP_NET_ADMIN") == 1,
        refused,
        "each refusal is reported once",
    );
    check(
        refused.get("tos") == "40"
            && refused.get("mark") == "0"
            && refused.get("cc") != "nosuchalgo",
        refused,
        "what the kernel refused is skipped; the rest applies",
    );
}

/// A reverse proxy's rules: its listeners and its two kinds of outgoing connection each get
/// their own options; a rule for another program (first in the file, matching every socket)
/// never applies; a line that is no TOML and an unknown key are reported and skipped.
#[test]
fn rules_give_each_side_its_own_options() {
    needs_root!(NETNS);
    let dir = scratch("rules");
    let file = dir.join("socktune.toml");
    std::fs::write(
        &file,
        r#"mark = 1

[[rule]]
program = "nginx*"
tos = 4
mark = 99

[[rule]]
role = "server"
ports = "8080"
tos = 184
keepalive = "30"
this line is not toml

[[rule]]
role = "server"
ports = "8081"
tos = 40
user_timeout = 5000
corkk = true

[[rule]]
role = "client"
ports = "8080"
peers = "127.0.0.0/8"
keepalive = "40"
mark = 2

[[rule]]
role = "client"
priority = 5
"#,
    )
    .unwrap();
    let config = format!("SOCKTUNE_CONFIG={}", file.display());
    let probe = |name| Scenario::new(name, "python3 {progs}/two_sides.py 8080 8081");
    let runs = run_all(&[
        probe("untuned"),
        probe("rules").client_env(&[config.as_str()]),
    ]);
    let [untuned, rules] = &runs[..] else {
        unreachable!()
    };
    eprintln!("{untuned}\n{rules}");
    let at = |r: &Results, keys: &str| -> Vec<String> {
        keys.split(' ').map(|k| r.get(k).to_string()).collect()
    };
    // (socket: keepalive idle, TOS, mark, priority, user timeout); the kernel gives a socket
    // the priority of its IP_TOS, which IPv6 sockets get too (184, DSCP EF: 4; 40: 2).
    let want = [
        ("sa", ["30", "184", "1", "4", "0"]),
        ("sb", ["0", "40", "1", "2", "5000"]),
        ("ca", ["40", "0", "2", "0", "0"]),
        ("cb", ["0", "0", "1", "5", "0"]),
    ];
    for (sock, want) in want {
        let keys = format!("{sock}_ka {sock}_tos {sock}_mark {sock}_prio {sock}_ut");
        check(
            at(untuned, &keys) == ["0", "0", "0", "0", "0"],
            untuned,
            &format!("{sock}: untuned, none is set"),
        );
        check(
            at(rules, &keys) == want,
            rules,
            &format!("{sock}: want {want:?}"),
        );
    }
    let path = file.display().to_string();
    for (line, what) in [(13, "not TOML"), (20, "unknown key corkk ignored")] {
        let said = format!("socktune: {path}:{line}: ");
        let n = rules
            .stderr
            .lines()
            .filter(|l| l.contains(&said) && l.contains(what))
            .count();
        check(n == 1, rules, &format!("one line for line {line}: {what}"));
    }
    check(
        rules.num("cli_socktune_lines") == 2.0,
        rules,
        "nothing else to say",
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Unmodified outside programs (python3 -m http.server and curl), read from outside with
/// `ss -tieom`: the server's connection shows its mark and congestion control; curl sets its
/// own keepalive (60 s), which wins unless SOCKTUNE_FORCE=keepalive.
#[test]
fn outside_programs_show_the_options_in_ss() {
    needs_root!(NETNS);
    let script = repo().join("tests/progs/outside_ss.sh");
    let ss = |server: &str, client: &str| {
        let out = run_bounded(
            Command::new("unshare")
                .args(["-n", "sh"])
                .arg(&script)
                .arg(lib())
                .args([server, client]),
            Duration::from_secs(60),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("server {server:?}, client {client:?}:\n{text}");
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // (curl's line, the server's line): the one whose peer, or whose own address, is :8000.
        let line = |column: usize| {
            let at = |l: &&str| {
                l.split_whitespace()
                    .nth(column)
                    .is_some_and(|a| a.ends_with(":8000"))
            };
            text.lines().find(at).unwrap_or_default().to_string()
        };
        (line(4), line(3))
    };
    // Seconds to curl's next keepalive probe, from `timer:(keepalive,38sec,0)`.
    let keepalive = |l: &str| -> Option<u32> {
        let t = l.split("timer:(keepalive,").nth(1)?;
        t.split("sec").next()?.parse().ok()
    };
    let settings = "SOCKTUNE_KEEPALIVE=40 SOCKTUNE_MARK=9";
    let untuned = ss("none", "none");
    let own = ss("SOCKTUNE_MARK=7 SOCKTUNE_CONGESTION=reno", settings);
    let forced = ss("none", &format!("{settings} SOCKTUNE_FORCE=keepalive"));
    assert!(
        !untuned.0.contains("fwmark")
            && !untuned.1.contains("fwmark")
            && !untuned.1.contains(" reno ")
    );
    assert!(
        own.1.contains("fwmark:0x7") && own.1.contains(" reno "),
        "server: {}",
        own.1
    );
    assert!(own.0.contains("fwmark:0x9"), "curl: {}", own.0);
    let [u, o, f] = [&untuned, &own, &forced].map(|(curl, _)| keepalive(curl));
    assert!(
        u.is_some_and(|s| s > 40) && o.is_some_and(|s| s > 40),
        "curl's own 60 s wins: {u:?} {o:?}"
    );
    assert!(f.is_some_and(|s| s <= 40), "forced, socktune's 40 s: {f:?}");
}

/// An IPv6 listener on [::] accepts IPv4 clients as v4-mapped IPv6 sockets, whose packets take
/// their TOS from IP_TOS, not IPV6_TCLASS: both are set (tcpdump showed tos 0xb8 on its data).
#[test]
fn a_dual_stack_listeners_ipv4_clients_get_the_tos() {
    needs_root!(NETNS);
    let probe = |name| Scenario::new(name, "python3 {progs}/dual_stack_tos.py 8080");
    let runs = run_all(&[
        probe("untuned"),
        probe("tos").client_env(&["SOCKTUNE_TOS=184", "SOCKTUNE_ROLE=server"]),
    ]);
    check(
        runs[0].get("peer") == "::ffff:127.0.0.1" && runs[0].get("ip_tos") == "0",
        &runs[0],
        "untuned: a v4-mapped peer, TOS 0",
    );
    check(
        runs[1].get("ip_tos") == "184" && runs[1].get("tclass") == "184",
        &runs[1],
        "IP_TOS and IPV6_TCLASS both set",
    );
}
