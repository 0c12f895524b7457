//! Cork per response in prefork servers: the listener is made before fork(), each worker accepts
//! and serves keep-alive connections, writing header and body in two writes. Untuned that costs
//! at least 4 packets (and a Nagle/delayed-ACK stall) per request; with SOCKTUNE_CORK=1 each
//! response must leave as one segment, in every worker (~2 packets/request with quickack off).
//!
//! - examples/perl-server.pl with 4 workers (two syswrite() calls per response);
//! - tests/progs/prefork_server.py with 3 workers (two send() calls per response), which reports
//!   how many distinct workers accepted the client's connections.
//!
//! Each client makes 3 keep-alive connections one after the other. A blocking accept() wakes
//! the worker queued longest, so they are served by different workers (checked for the Python
//! server). A shim whose settings or cork state did not survive fork() into the workers would
//! show the baseline's packets/request here: a no-op library gives 5.03 in every run.
mod common;
use common::*;

const REQUESTS: u32 = 40; // per connection: the untuned runs stall ~44 ms on each
const CONNS: u32 = 3;
const TUNED: &[&str] = &["SOCKTUNE_CORK=1", "SOCKTUNE_QUICKACK=0"];
const PERL: &str = "perl {progs}/../../examples/perl-server.pl {port} 4 127.0.0.1";
const PYTHON: &str = "python3 {progs}/prefork_server.py 127.0.0.1 {port} 3";

fn ka(name: &str, server: &str) -> Scenario {
    let client =
        format!("python3 {{progs}}/ka_client.py 127.0.0.1 {{port}} {REQUESTS} /f100 {CONNS}");
    Scenario::new(name, &client).server(server)
}

#[test]
fn cork_in_prefork_workers() {
    needs_root!(NETNS);
    let runs = run_all(&[
        ka("perl baseline", PERL),
        ka("perl tuned", PERL).server_env(TUNED),
        ka("python baseline", PYTHON),
        ka("python tuned", PYTHON).server_env(TUNED),
    ]);
    for r in &runs {
        eprintln!(
            "prefork {:<16} packets/request {:>5}  p50 {:>7} ms  p99 {:>7} ms  requests {}  \
             workers used {}",
            r.name,
            r.get("packets_per_request"),
            r.get("p50_ms"),
            r.get("p99_ms"),
            r.get("requests"),
            if r.name.starts_with("python") {
                r.get("srv_workers")
            } else {
                "-"
            },
        );
    }
    for r in &runs {
        check_quiet(r);
        check(
            r.num("requests") == (REQUESTS * CONNS) as f64,
            r,
            "every request must be answered",
        );
    }
    for r in [&runs[0], &runs[2]] {
        check_uncorked(r, "untuned");
    }
    for r in [&runs[1], &runs[3]] {
        check_corked(r, "SOCKTUNE_CORK=1 SOCKTUNE_QUICKACK=0");
        check(
            r.num("p50_ms") < 20.0,
            r,
            "tuned: p50 should be far below the 44 ms stall",
        );
    }
    for r in [&runs[2], &runs[3]] {
        check(
            r.num("srv_conns") == CONNS as f64 && r.num("srv_workers") >= 2.0,
            r,
            "the connections should be accepted by more than one worker",
        );
    }
}

/// A worker that sets TCP_NODELAY itself right after accept (Starman, gunicorn, plackup do) still
/// writes header and body in two sends: with nodelay alone that is two data segments per
/// response. Nodelay agrees with cork per response, which sets it too, so the shim keeps corking.
#[test]
fn cork_goes_on_when_the_program_sets_nodelay_itself() {
    needs_root!(NETNS);
    const NODELAY: &str = "python3 {progs}/prefork_server.py 127.0.0.1 {port} 3 nodelay";
    let runs = run_all(&[
        ka("nodelay baseline", NODELAY),
        ka("nodelay tuned", NODELAY).server_env(TUNED),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "prefork {:<16} packets/request {:>5}  p50 {:>7} ms",
            r.name,
            r.get("packets_per_request"),
            r.get("p50_ms")
        );
    }
    check(
        runs[0].num("packets_per_request") >= 3.0,
        &runs[0],
        "nodelay alone: header and body leave as two segments (>= 3 packets per request)",
    );
    check_corked(
        &runs[1],
        "the program's TCP_NODELAY=1 must not switch cork off",
    );
}
