//! F1: keep-alive HTTP/1.1 to an unmodified `python3 -m http.server`, which writes header and
//! body in two sends. Untuned that costs ~5 packets and a 44 ms Nagle/delayed-ACK stall per
//! request; with SOCKTUNE_CORK=1 each response must leave as one segment (~2 packets/request).
mod common;
use common::*;

const REQUESTS: u32 = 200;

fn cork_halves_packets(server: &str, host: &str) {
    let runs = run_all(&[
        keepalive("baseline", server, host, REQUESTS),
        keepalive("shim, no settings", server, host, REQUESTS).server_env(&[]),
        keepalive("cork", server, host, REQUESTS).server_env(&["SOCKTUNE_CORK=1"]),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "keep-alive {host} {:<18} p50 {:>8} ms  p99 {:>8} ms  packets/request {}",
            r.name,
            r.get("p50_ms"),
            r.get("p99_ms"),
            r.get("packets_per_request")
        );
    }
    for r in &runs[..2] {
        check_uncorked(r, "untuned");
    }
    let cork = &runs[2];
    check_corked(cork, "SOCKTUNE_CORK=1");
    // Generous sanity bound: untuned p50 is 44 ms; corked responses take well under 1 ms.
    check(
        cork.num("p50_ms") < 20.0,
        cork,
        "SOCKTUNE_CORK=1: p50 should be far below the 44 ms stall",
    );
}

#[test]
fn f1_cork_keepalive_ipv4() {
    needs_root!(NETNS);
    cork_halves_packets(HTTP11_SERVER_V4, "127.0.0.1");
}

#[test]
fn cork_keepalive_ipv6() {
    needs_root!(NETNS);
    cork_halves_packets(HTTP11_SERVER_V6, "::1");
}

/// The stub sends the reads and writes of an fd number the shim never kept a state for straight
/// to libc: a number that was a file's first must reach the shim again once it is a connection.
#[test]
fn a_connection_on_a_number_a_file_had_first_is_corked() {
    needs_root!(NETNS);
    let server = "python3 {progs}/files_first.py 127.0.0.1 {port}";
    let runs = run_all(&[
        keepalive("baseline", server, "127.0.0.1", REQUESTS),
        keepalive("cork", server, "127.0.0.1", REQUESTS).server_env(&["SOCKTUNE_CORK=1"]),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "files first {:<9} packets/request {}",
            r.name,
            r.get("packets_per_request")
        );
    }
    check_uncorked(&runs[0], "untuned");
    check_corked(&runs[1], "SOCKTUNE_CORK=1");
}
