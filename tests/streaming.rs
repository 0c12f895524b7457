//! Cork per response with a streaming server: a plain Python server (tests/progs/stream_server.py)
//! writes 10 small events 50 ms apart and waits between them by means that are no read of the
//! connection: sleep, a condition variable, select() on another fd, a blocking read of a pipe.
//! Under SOCKTUNE_CORK=1 an event's send is held with MSG_MORE (the first always; the shim may
//! send later ones as they are once it saw events leave in one write). The shim's flusher must
//! push what it holds within SOCKTUNE_CORK_FLUSH_MS (2 ms); the kernel would hold a partial
//! segment sent with MSG_MORE ~200 ms.
//!
//! What a broken shim produces here (checked with a stub library that corks on a connection's
//! first write and uncorks only when that connection is read or closed, i.e. with no flusher):
//! every mode fails with max_delay_ms ~200, min_gap_ms ~0 (events released together) and
//! still_held=10. A shim that does not hold at all is caught by `held`, which reads the unsent
//! byte count right after each send (0 without the shim, so a fast arrival would prove nothing).
mod common;
use common::*;

const EVENTS: u32 = 10;
const MODES: [&str; 4] = ["sleep", "cond", "select-other", "read-other"];

fn stream(mode: &str) -> Scenario {
    let client = format!("python3 {{progs}}/stream_client.py 127.0.0.1 {{port}} {EVENTS}");
    let server = format!("python3 {{progs}}/stream_server.py 127.0.0.1 {{port}} {mode} {EVENTS}");
    Scenario::new(mode, &client)
        .server(&server)
        .server_env(&["SOCKTUNE_CORK=1"])
}

#[test]
fn cork_never_waits_for_the_kernel_timer() {
    needs_root!(NETNS);
    let runs = run_all(&MODES.map(stream));
    for r in &runs {
        eprintln!(
            "streaming {:<12} worst delay {:>7} ms  min gap {:>6} ms  held {}/{EVENTS}  \
             still held after the pause {}  delays {}",
            r.name,
            r.get("max_delay_ms"),
            r.get("min_gap_ms"),
            r.get("srv_held"),
            r.get("srv_still_held"),
            r.get("delays_ms"),
        );
    }
    for r in &runs {
        check_quiet(r);
        check(
            r.num("events") == EVENTS as f64 && r.num("srv_events") == EVENTS as f64,
            r,
            "every event must arrive, in order",
        );
        check(
            r.get("sha256") == r.get("srv_sha256"),
            r,
            "the bytes received must be exactly the bytes sent",
        );
        check(
            r.num("srv_held") >= 1.0,
            r,
            "SOCKTUNE_CORK=1: the first event's send should be held (unsent bytes read back)",
        );
        check(
            r.num("srv_still_held") == 0.0,
            r,
            "after a 50 ms pause no event may still be held (flusher or select boundary)",
        );
        check(
            r.num("max_delay_ms") < 100.0,
            r,
            "every event must arrive within 100 ms of its send (kernel cork timer: ~200 ms)",
        );
        check(
            r.num("min_gap_ms") > 25.0,
            r,
            "events sent 50 ms apart must arrive apart, not released together",
        );
    }
}
