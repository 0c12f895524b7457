//! Memory safety: the errno program, a C keep-alive server and client, and python3 http.server
//! run under valgrind memcheck with the shim preloaded and their behaviours on, the C pair also
//! recording each connection (SOCKTUNE_STATS) (tests/harness/memcheck.py; scripts/setup.sh installs valgrind). No invalid read or write
//! or other memcheck error, and no leak that grows with the number of connections.
mod common;
use common::*;
use std::time::Duration;

/// Connections in the small run; the big run makes ten times as many.
const CONNS: u32 = 20;

#[test]
fn valgrind_finds_no_bad_access_and_no_per_connection_leak() {
    needs_root!("runs its programs under valgrind in a private network namespace");
    let r = run_harness(
        "memcheck.py",
        &[format!("--conns={CONNS}")],
        Duration::from_secs(900), // valgrind is slow
    );
    eprintln!("{r}");
    check(
        r.get("errno_failed") == "0",
        &r,
        "errno_check under valgrind: a check failed",
    );
    for run in [
        "errno",
        "small_srv",
        "small_cli",
        "big_srv",
        "big_cli",
        "py_srv",
    ] {
        check(
            r.num(&format!("{run}_errors")) == 0.0,
            &r,
            &format!("{run}: valgrind reported errors (see its report above)"),
        );
    }
    for side in ["srv", "cli"] {
        let lost = |size: &str| {
            r.num(&format!("{size}_{side}_definite")) + r.num(&format!("{size}_{side}_indirect"))
        };
        check(
            lost("big") <= lost("small"),
            &r,
            &format!("ka_pair {side}: memory lost grows with the number of connections"),
        );
    }
    for (size, conns) in [("small", CONNS), ("big", 10 * CONNS)] {
        for side in ["srv", "cli"] {
            check(
                r.num(&format!("{size}_{side}_records")) == f64::from(conns),
                &r,
                &format!("ka_pair {size} {side}: one SOCKTUNE_STATS record per connection"),
            );
        }
        check(
            r.num(&format!("{size}_bad")) == 0.0 && r.num(&format!("{size}_requests")) > 0.0,
            &r,
            &format!("ka_pair {size}: every response must be exact"),
        );
        // Header and body go out in two writes: only the shim's cork avoids a 40 ms stall each.
        check(
            r.num(&format!("{size}_us_per_request")) < 20_000.0,
            &r,
            &format!("ka_pair {size}: Nagle stalls, so the shim did not act under valgrind"),
        );
    }
    check(
        r.num("py_p50_ms") < 20.0,
        &r,
        "http.server: Nagle stalls, so the shim did not act under valgrind",
    );
}
