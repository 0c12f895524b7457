//! Quickack-off never makes a peer wait: python3 -m http.server (HTTP/1.1) writes its header and
//! body in two sends with Nagle on, so the body waits for the ACK of the header. A curl whose
//! delayed ACK waited for a request that never comes held every response ~40 ms; the shim sends
//! the pending ACK when curl waits for more input without having written.
mod common;
use common::*;

#[test]
fn a_nagle_writing_server_is_not_held_by_a_quickack_off_client() {
    needs_root!(NETNS);
    let fetch = |name: &str| {
        Scenario::new(
            name,
            "python3 {progs}/curl_times.py http://127.0.0.1:{port}/f100 20",
        )
        .server(HTTP11_SERVER_V4)
    };
    let runs = run_all(&[
        fetch("baseline"),
        fetch("quickack-off").client_env(&["SOCKTUNE_QUICKACK=0"]),
    ]);
    no_delayed_ack_waits_and_fewer_packets(
        &runs,
        "quickack-off must still save packets (the handshake ACK rides on the request)",
    );
}

/// A reverse proxy, both roles in one process, under every behaviour, in front of the same
/// backend (tests/progs/relay_proxy.py starts it unshimmed): its client side's delayed ACK must
/// not hold the backend's body either (each request is a new connection through it).
#[test]
fn a_proxy_under_every_behaviour_is_not_held_by_its_backends_nagle() {
    needs_root!(NETNS);
    let through = |name: &str| {
        Scenario::new(
            name,
            "python3 {progs}/curl_times.py http://127.0.0.1:{port}/f100 20",
        )
        .server("python3 {progs}/relay_proxy.py {port} 8081 {www}")
        .tfo()
    };
    let runs = run_all(&[
        through("untuned"),
        through("every behaviour").server_env(ALL_BEHAVIOURS),
    ]);
    no_delayed_ack_waits_and_fewer_packets(&runs, "the behaviours must still save packets");
}

/// Neither run (`runs[0]` untuned, `runs[1]` tuned) waits for a delayed ACK, and the tuned one
/// sends fewer packets.
fn no_delayed_ack_waits_and_fewer_packets(runs: &[Results], fewer: &str) {
    let (base, tuned) = (&runs[0], &runs[1]);
    for r in runs {
        check_quiet(r);
        eprintln!(
            "{:<16} p50 {} ms, slowest {} ms, {} packets per connection",
            r.name,
            r.get("p50_ms"),
            r.get("max_ms"),
            r.get("packets_per_conn")
        );
        // A delayed ACK is at least 40 ms: a median below half of it means none waited.
        check(
            r.num("p50_ms") < 20.0,
            r,
            "no response may wait for a delayed ACK",
        );
    }
    check(
        tuned.num("packets_per_conn") < base.num("packets_per_conn"),
        tuned,
        fewer,
    );
}

/// The ACK such a server's body waits for leaves with the read that brought the head, on a
/// kept-alive connection too, where the kernel itself delays it (python3's http.client and
/// http.server then take 40 ms per request): tests/progs/head_first_client.py looks 10 ms after
/// that read, without a system call, at whether the body came.
#[test]
fn the_ack_of_a_head_whose_body_is_still_coming_leaves_at_once() {
    needs_root!(NETNS);
    let fetch = |name: &str| {
        Scenario::new(
            name,
            "python3 {progs}/head_first_client.py 127.0.0.1 {port} 20 /f100",
        )
        .server(HTTP11_SERVER_V4)
    };
    let runs = run_all(&[
        fetch("baseline"),
        fetch("quickack-off").client_env(&["SOCKTUNE_QUICKACK=0"]),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "{:<12} {} of 20 heads came alone, {} bodies still held 10 ms later; {} packets",
            r.name,
            r.get("split"),
            r.get("held"),
            r.get("ns_segs")
        );
    }
    let (base, tuned) = (&runs[0], &runs[1]);
    check(
        base.num("held") >= 10.0,
        base,
        "without socktune the kernel delays the ACK of most heads, and their bodies wait for it",
    );
    check(
        tuned.num("split") >= 10.0 && tuned.num("held") == 0.0,
        tuned,
        "under quickack-off no body may wait for the client's delayed ACK",
    );
    check(
        tuned.num("ns_segs") <= base.num("ns_segs"),
        tuned,
        "quickack-off must not cost packets",
    );
}
