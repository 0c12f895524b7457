//! Large and odd-sized responses under cork, every behaviour on: tests/progs/sized_server.py
//! answers each request with a header (os.writev of two buffers, socket.sendmsg of two buffers,
//! or send with the program's own MSG_MORE) and a body sent with os.sendfile. Sizes: 1 B, 1448,
//! 1460 and 1461 (around an Ethernet MSS), the connection's MSS and one more, loopback's full
//! MSS (65483) and one more, 64 KiB and 300 KiB, five times each over one keep-alive connection.
//!
//! Every body must be byte-exact. No response may stall for Nagle's tail: the median time per
//! size stays far below the 40 ms delayed ACK, and a response that fits one segment arrives as
//! one (the client's TCP_INFO). The untuned writev run shows what the test catches: a 1-byte
//! body stalls ~44 ms behind its header, in two segments.
mod common;
use common::*;

const REPEATS: u32 = 5;
/// Sizes whose header and body fit one segment.
const ONE_SEGMENT: [u32; 4] = [1, 1448, 1460, 1461];

fn sized(name: &str, style: &str) -> Scenario {
    let client = format!("python3 {{progs}}/sized_client.py 127.0.0.1 {{port}} {REPEATS}");
    let server = format!("python3 {{progs}}/sized_server.py 127.0.0.1 {{port}} {style}");
    Scenario::new(name, &client).server(&server)
}

/// The sizes the client asked for, in its order.
fn sizes(r: &Results) -> Vec<String> {
    r.get("sizes").split(',').map(String::from).collect()
}

#[test]
fn odd_sizes_under_cork_are_byte_exact_and_never_stall() {
    needs_root!(NETNS);
    let runs = run_all(&[
        sized("baseline writev", "writev"),
        sized("writev", "writev").server_env(ALL_BEHAVIOURS),
        sized("sendmsg", "sendmsg").server_env(ALL_BEHAVIOURS),
        sized("msg_more", "msg_more")
            .server_env(ALL_BEHAVIOURS)
            .client_env(ALL_BEHAVIOURS),
    ]);
    for r in &runs {
        let per_size: Vec<String> = sizes(r)
            .iter()
            .map(|s| {
                format!(
                    "{s}: {} ms/{} segs",
                    r.get(&format!("p50_{s}")),
                    r.get(&format!("segs_{s}"))
                )
            })
            .collect();
        eprintln!(
            "{:<16} mss {}  {}",
            r.name,
            r.get("mss"),
            per_size.join("  ")
        );
        check_quiet(r);
        check(
            r.num("errors") == 0.0 && r.num("requests") >= 8.0 * REPEATS as f64,
            r,
            "every body must be byte-exact",
        );
    }
    let base = &runs[0];
    check(
        base.num("p50_1") >= 30.0 && base.num("segs_1") >= 2.0,
        base,
        "untuned: a 1-byte body should stall ~44 ms behind its header, in a second segment",
    );
    for r in &runs[1..] {
        for size in sizes(r) {
            check(
                r.num(&format!("p50_{size}")) < 20.0,
                r,
                &format!("{size}-byte responses must not stall (median far below 40 ms)"),
            );
        }
        for size in ONE_SEGMENT {
            check(
                r.num(&format!("segs_{size}")) <= 1.2,
                r,
                &format!("a {size}-byte response should arrive as one segment"),
            );
        }
    }
}
