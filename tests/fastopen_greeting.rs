//! Server-speaks-first protocol with a SOCKTUNE_FASTOPEN_CONNECT=1 client. With a cached cookie,
//! a plain TCP_FASTOPEN_CONNECT client that reads first would hang forever (connect() sends no
//! SYN until the first write). The shim must kick it: the greeting must arrive within 5 s in
//! blocking, poll and epoll styles, with every behaviour on in the client (cork included). Fast
//! Open must still be in effect for write-first clients.
mod common;
use common::*;

fn greet(name: &str, mode: &str) -> Scenario {
    let client = format!("python3 {{progs}}/read_first_client.py 127.0.0.1 {{port}} {mode} 3");
    Scenario::new(name, &client)
        .server("python3 {progs}/greet_server.py 127.0.0.1 {port}")
        .tfo()
}

fn read_first_gets_greeting(mode: &str) {
    let runs = run_all(&[
        greet("baseline", mode),
        greet("fastopen", mode)
            .server_env(&["SOCKTUNE_FASTOPEN=256"])
            .client_env(ALL_BEHAVIOURS),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "{mode:<8} {:<8} write-first SYN data {}  greetings {}  slowest greeting {} ms",
            r.name,
            r.get("write_first_syn_data"),
            r.get("greetings"),
            r.get("greet_ms_max")
        );
        check(
            r.get("hang") == "0" && r.get("greetings") == "3",
            r,
            "every read-first client must get the greeting",
        );
    }
    let (base, tfo) = (&runs[0], &runs[1]);
    check(
        base.get("write_first_syn_data") == "00",
        base,
        "untuned: no data may ride in the SYN",
    );
    check(
        tfo.get("write_first_syn_data") == "01",
        tfo,
        "FASTOPEN_CONNECT: the 2nd write-first connection must carry its data in the SYN",
    );
}

#[test]
fn read_first_blocking() {
    needs_root!(NETNS);
    read_first_gets_greeting("blocking");
}

#[test]
fn read_first_poll() {
    needs_root!(NETNS);
    read_first_gets_greeting("poll");
}

#[test]
fn read_first_epoll() {
    needs_root!(NETNS);
    read_first_gets_greeting("epoll");
}

/// The sysctl lacks the server bit, then the client bit: each is said once at info level, and
/// the programs run on as plain TCP.
#[test]
fn missing_sysctl_bits_are_reported_once_and_fast_open_falls_back() {
    needs_root!(NETNS);
    let tuned = |name: &str, bits: u32| {
        greet(name, "blocking")
            .tfo_bits(bits)
            .server_env(&["SOCKTUNE_FASTOPEN=256", "SOCKTUNE_LOG=info"])
            .client_env(&["SOCKTUNE_FASTOPEN_CONNECT=1", "SOCKTUNE_LOG=info"])
    };
    let runs = run_all(&[tuned("client bit only", 1), tuned("server bit only", 2)]);
    for (r, missing) in runs.iter().zip(["server bit (2)", "client bit (1)"]) {
        let notices = r
            .stderr
            .lines()
            .filter(|l| l.contains("lacks the"))
            .collect::<Vec<_>>();
        check(
            notices.len() == 1 && notices[0].contains(missing),
            r,
            &format!("expected exactly one notice that the sysctl lacks the {missing}"),
        );
        check(
            r.get("hang") == "0" && r.get("greetings") == "3",
            r,
            "the greeting must still arrive",
        );
        check(
            r.get("write_first_syn_data") == "00",
            r,
            "no data can ride in the SYN without both bits",
        );
    }
}

/// SOCKTUNE_PORTS keeps defer-accept off a server-first port: one server listens on the harness
/// port (mail-like, greets first, left out of the list) and on 8081 (listed). Only 8081 defers;
/// read-first clients of the other get their greeting at once, where a deferring listener would
/// hold each connection for the whole defer period (the client gives up after 5 s).
#[test]
fn ports_keep_defer_accept_off_a_server_first_port() {
    needs_root!(NETNS);
    let r = Scenario::new(
        "ports",
        "python3 {progs}/read_first_client.py 127.0.0.1 {port} blocking 3",
    )
    .server("python3 {progs}/greet_server.py 127.0.0.1 {port} 8081")
    .server_env(&["SOCKTUNE_DEFER_ACCEPT=5", "SOCKTUNE_PORTS=8081"])
    .run();
    check_quiet(&r);
    eprintln!(
        "defer-accept read back: server-first port {}, listed port {}; slowest greeting {} ms",
        r.get("srv_defer_8080"),
        r.get("srv_defer_8081"),
        r.get("greet_ms_max")
    );
    check(
        r.get("srv_defer_8080") == "0" && r.num("srv_defer_8081") > 0.0,
        &r,
        "only the listed port should defer",
    );
    check(
        r.get("greetings") == "3" && r.num("greet_ms_max") < 1000.0,
        &r,
        "the server-first port must greet at once",
    );
}

/// A quickack-off client delays the handshake's last ACK so that it rides on the request. A
/// client that reads first has no request to carry it, and the server accepts (and greets) only
/// when the ACK comes: ~200 ms later, unless the shim sends it when the program turns to read.
#[test]
fn quickack_off_read_first_clients_are_greeted_at_once() {
    needs_root!(NETNS);
    let runs: Vec<Scenario> = ["blocking", "poll", "epoll"]
        .iter()
        .map(|mode| greet(mode, mode).client_env(&["SOCKTUNE_QUICKACK=0"]))
        .collect();
    for r in run_all(&runs) {
        check_quiet(&r);
        eprintln!(
            "quickack-off {:<8} slowest greeting {} ms",
            r.name,
            r.get("greet_ms_max")
        );
        check(
            r.get("greetings") == "3" && r.num("greet_ms_max") < 100.0,
            &r,
            "every greeting must come far sooner than the 200 ms delayed-ACK timer",
        );
    }
}
