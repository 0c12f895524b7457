//! Cork per response in a thread-per-connection server: 8 keep-alive connections at once, 100
//! requests each, to an unmodified `python3 -m http.server -p HTTP/1.1` (ThreadingHTTPServer),
//! under SOCKTUNE_CORK=1 SOCKTUNE_QUICKACK=0, then with every behaviour on at both ends. Each
//! connection cycles through bodies of 100 and 1461 bytes, one more than loopback's MSS (32769
//! and 65484) and 300 KiB, so small and multi-segment responses are corked, flushed and written
//! by 8 threads at the same time.
//! tests/progs/threaded_client.py compares every body with the served file, byte for byte.
//!
//! A shim that lost, repeated, reordered or held back data (a cork state mixed up between
//! threads or fds, a tail left corked) shows as errors > 0 or a client timeout; one that did not
//! cork these sockets at all shows as the baseline's 44 ms stall on the small responses.
//! (Checked with stub libraries: one flipping a byte of every large send fails the client with
//! "body differs ... first difference at 1000"; a no-op one gives small-body p50 ~43 ms.)
mod common;
use common::*;

const THREADS: u32 = 8;
const REQUESTS: u32 = 100; // per connection
const FILES: &str = "f100 f1461 f32769 f65484 f307200"; // the first is the small one

fn threaded(name: &str) -> Scenario {
    let client = format!(
        "python3 {{progs}}/threaded_client.py 127.0.0.1 {{port}} {THREADS} {REQUESTS} {{www}} \
         {FILES}"
    );
    Scenario::new(name, &client).server(HTTP11_SERVER_V4)
}

#[test]
fn cork_with_concurrent_threads_is_byte_exact() {
    needs_root!(NETNS);
    let runs = run_all(&[
        threaded("baseline"),
        threaded("tuned").server_env(&["SOCKTUNE_CORK=1", "SOCKTUNE_QUICKACK=0"]),
        threaded("all on")
            .server_env(ALL_BEHAVIOURS)
            .client_env(ALL_BEHAVIOURS),
    ]);
    for r in &runs {
        eprintln!(
            "threads {:<8} requests {}  errors {}  p50 {:>7} ms  p99 {:>7} ms  \
             small-body p50 {:>7} ms",
            r.name,
            r.get("requests"),
            r.get("errors"),
            r.get("p50_ms"),
            r.get("p99_ms"),
            r.get("small_p50_ms"),
        );
    }
    for r in &runs {
        check_quiet(r);
        check(
            r.num("errors") == 0.0 && r.num("requests") == (THREADS * REQUESTS) as f64,
            r,
            "every response must be the served file, byte for byte",
        );
    }
    let base = &runs[0];
    check(
        base.num("small_p50_ms") >= 30.0,
        base,
        "untuned: the 100-byte responses should stall ~44 ms (Nagle + delayed ACK)",
    );
    for tuned in &runs[1..] {
        check(
            tuned.num("small_p50_ms") < 20.0,
            tuned,
            "SOCKTUNE_CORK=1: the 100-byte responses should be far below the 44 ms stall",
        );
    }
}
