//! Options without a figure of their own, read back from the kernel: the listen() backlog
//! override and its clamp notice, TCP_NODELAY on each side, the Fast Open queue length, and
//! that SOCKTUNE_ROLE and SOCKTUNE_PORTS keep them off where they do not apply. The plain server
//! listens with a backlog of 5 and sets no option.
mod common;
use common::*;

fn probe(name: &str) -> Scenario {
    Scenario::new(name, "python3 {progs}/options_client.py 127.0.0.1 {port}")
        .server("python3 {progs}/options_server.py 127.0.0.1 {port}")
        .tfo()
}

const SERVER: [&str; 3] = [
    "SOCKTUNE_BACKLOG=100",
    "SOCKTUNE_NODELAY=1",
    "SOCKTUNE_FASTOPEN=64",
];

#[test]
fn options_read_back_as_configured_and_only_where_they_apply() {
    needs_root!(NETNS);
    let with = |extra: &[&'static str]| {
        SERVER
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect::<Vec<_>>()
    };
    let runs = run_all(&[
        probe("baseline"),
        probe("all on")
            .server_env(&SERVER)
            .client_env(&["SOCKTUNE_NODELAY=1"]),
        probe("role server")
            .server_env(&with(&["SOCKTUNE_ROLE=server"]))
            .client_env(&["SOCKTUNE_NODELAY=1", "SOCKTUNE_ROLE=server"]),
        probe("other ports")
            .server_env(&with(&["SOCKTUNE_PORTS=9000-9100"]))
            .client_env(&["SOCKTUNE_NODELAY=1", "SOCKTUNE_PORTS=9000-9100"]),
        probe("clamped").server_env(&["SOCKTUNE_BACKLOG=100000", "SOCKTUNE_LOG=info"]),
    ]);
    for r in &runs {
        eprintln!(
            "{:<12} backlog {:>5}  fastopen qlen {:>3}  nodelay server {} client {}",
            r.name,
            r.get("srv_max_backlog"),
            r.get("srv_fastopen_qlen"),
            r.get("srv_nodelay"),
            r.get("nodelay")
        );
    }
    let expect = |r: &Results, backlog: &str, qlen: &str, srv_nodelay: &str, cli_nodelay: &str| {
        let got = [
            r.get("srv_max_backlog"),
            r.get("srv_fastopen_qlen"),
            r.get("srv_nodelay"),
            r.get("nodelay"),
        ];
        check(
            got == [backlog, qlen, srv_nodelay, cli_nodelay],
            r,
            &format!("expected backlog {backlog}, fastopen qlen {qlen}, nodelay server {srv_nodelay} client {cli_nodelay}; got {got:?}"),
        );
    };
    expect(&runs[0], "5", "0", "0", "0");
    expect(&runs[1], "100", "64", "1", "1");
    expect(&runs[2], "100", "64", "1", "0");
    expect(&runs[3], "5", "0", "0", "0");
    // net.core.somaxconn is 4096 in a new namespace.
    let clamped = &runs[4];
    check(
        clamped.get("srv_max_backlog") == "4096",
        clamped,
        "the kernel clamps the backlog to somaxconn",
    );
    let notices = clamped
        .stderr
        .lines()
        .filter(|l| l.contains("clamped by the kernel to 4096"))
        .count();
    check(
        notices == 1,
        clamped,
        "the clamp must be logged once at info level",
    );
}
