//! F3: SOCKTUNE_DEFER_ACCEPT on an unmodified server. Its listener must read back a non-zero
//! TCP_DEFER_ACCEPT, and a client that waits 0.5 s before sending must be accepted with its
//! request already readable. Port filtering must keep it off for other ports.
mod common;
use common::*;

#[test]
fn f3_defer_accept() {
    needs_root!(NETNS);
    let runs = run_all(&[
        defer_probe("baseline"),
        defer_probe("defer").server_env(&["SOCKTUNE_DEFER_ACCEPT=5"]),
        // The harness's port is 8080, outside this list.
        defer_probe("defer, other ports")
            .server_env(&["SOCKTUNE_DEFER_ACCEPT=5", "SOCKTUNE_PORTS=80,9000-9100"]),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "defer-accept {:<20} read-back {}  bytes readable at accept {}",
            r.name,
            r.get("srv_defer_readback"),
            r.get("srv_ready_bytes")
        );
    }
    let defer = &runs[1];
    check(
        defer.num("srv_defer_readback") > 0.0,
        defer,
        "the listener should read back TCP_DEFER_ACCEPT > 0",
    );
    check(
        defer.num("srv_ready_bytes") > 0.0,
        defer,
        "accept() should return with the request readable",
    );
    for r in [&runs[0], &runs[2]] {
        check(
            r.num("srv_defer_readback") == 0.0,
            r,
            "TCP_DEFER_ACCEPT should be unset",
        );
        check(
            r.num("srv_ready_bytes") == 0.0,
            r,
            "accept() should return before the client's data",
        );
    }
}
