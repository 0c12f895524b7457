//! F2: one request per connection (HTTP/1.0) to an unmodified `python3 -m http.server`, from a
//! plain Python client. Untuned that is ~12 packets per connection; with cork, quickack-off and
//! Fast Open on both sides it must be <= 5.5, with the request riding in the SYN from the second
//! connection on (the first one fetches the Fast Open cookie).
mod common;
use common::*;

const CONNS: u32 = 20;

fn short(name: &str) -> Scenario {
    let client = format!("python3 {{progs}}/short_client.py 127.0.0.1 {{port}} {CONNS} /f100");
    Scenario::new(name, &client).server(HTTP10_SERVER_V4).tfo()
}

#[test]
fn f2_short_connections_all_behaviours() {
    needs_root!(NETNS);
    let runs = run_all(&[
        short("baseline"),
        short("tuned")
            .server_env(&[
                "SOCKTUNE_CORK=1",
                "SOCKTUNE_QUICKACK=0",
                "SOCKTUNE_FASTOPEN=256",
            ])
            .client_env(&["SOCKTUNE_QUICKACK=0", "SOCKTUNE_FASTOPEN_CONNECT=1"]),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "short connections {:<8} packets/conn {}  SYN data {}  p50 {} ms",
            r.name,
            r.get("packets_per_conn"),
            r.get("syn_data"),
            r.get("p50_ms")
        );
    }
    let (base, tuned) = (&runs[0], &runs[1]);
    check(
        base.num("packets_per_conn") >= 10.0,
        base,
        "untuned: expected >= 10 packets per connection",
    );
    check(
        !base.get("syn_data").contains('1'),
        base,
        "untuned: no request may ride in the SYN",
    );
    check(
        tuned.num("packets_per_conn") <= 5.5,
        tuned,
        "tuned: expected <= 5.5 packets per connection",
    );
    let flags = tuned.get("syn_data");
    check(
        flags.len() == CONNS as usize && flags[1..].chars().all(|c| c == '1'),
        tuned,
        "tuned: every request from the 2nd connection on must ride in the SYN (TCPI_OPT_SYN_DATA)",
    );
}

/// A server that shuts its side down after a corked response, then waits for the client's FIN
/// (gunicorn's lingering close), facing a Fast Open client with quickack off: the connection may
/// still be in SYN_RECV, waiting for the client's delayed handshake ACK, and a FIN-riding
/// response would wait with it (~200 ms). It must leave at once.
#[test]
fn a_response_shut_down_before_the_handshake_completes_leaves_at_once() {
    needs_root!(NETNS);
    let client = format!("python3 {{progs}}/short_client.py 127.0.0.1 {{port}} {CONNS} /f100");
    let r = Scenario::new("lingering close", &client)
        .server("python3 {progs}/lingering_server.py 127.0.0.1 {port}")
        .tfo()
        .server_env(&["SOCKTUNE_CORK=1", "SOCKTUNE_FASTOPEN=256"])
        .client_env(&["SOCKTUNE_QUICKACK=0", "SOCKTUNE_FASTOPEN_CONNECT=1"])
        .run();
    check_quiet(&r);
    eprintln!(
        "lingering close: p50 {} ms, SYN data {}",
        r.get("p50_ms"),
        r.get("syn_data")
    );
    check(
        r.get("syn_data")[1..].chars().all(|c| c == '1'),
        &r,
        "the requests must ride in the SYN (else this does not test the SYN_RECV case)",
    );
    check(
        r.num("p50_ms") < 100.0,
        &r,
        "p50 must be far below the ~200 ms of a response held for the handshake ACK",
    );
}

/// A response held for the FIN reaches its client only at the server's shutdown. A server that
/// then waits for the client's close (gunicorn's lingering close) waits for its own hold: under
/// load that cost gunicorn a quarter of its requests/s. Such a server is seen by its read after
/// the shutdown, and from its next connection on a response of a declared length leaves at its
/// last write. A server that closes at once keeps the FIN riding on the response. Each server
/// works 100 ms between its last write and its shutdown, so that a FIN that rode on the response
/// shows as a FIN there by the response's last byte.
#[test]
fn a_lingering_server_gets_its_response_out_before_its_shutdown() {
    needs_root!(NETNS);
    const N: usize = 6;
    let run = |name: &str, server: &str, shim: bool| {
        let client = format!("python3 {{progs}}/fin_client.py 127.0.0.1 {{port}} {N}");
        let s = Scenario::new(name, &client).server(server);
        if shim {
            s.server_env(&["SOCKTUNE_CORK=1", "SOCKTUNE_CORK_FLUSH_MS=200"])
        } else {
            s
        }
    };
    let lingering = "python3 {progs}/lingering_server.py 127.0.0.1 {port} 100";
    let at_once = "python3 {progs}/lingering_server.py 127.0.0.1 {port} 100 at-once";
    let runs = run_all(&[
        run("lingering, untuned", lingering, false),
        run("lingering, cork", lingering, true),
        run("closes at once, cork", at_once, true),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "{:<22} FIN with the body: {}",
            r.name,
            r.get("fin_with_body")
        );
    }
    let fins = |r: &Results| r.get("fin_with_body").to_string();
    check(
        fins(&runs[0]) == "0".repeat(N),
        &runs[0],
        "untuned: the FIN comes 100 ms after the response",
    );
    check(
        fins(&runs[1]) == format!("1{}", "0".repeat(N - 1)),
        &runs[1],
        "cork, lingering: the first response rides on the FIN, the rest leave at their last write",
    );
    check(
        fins(&runs[2]) == "1".repeat(N),
        &runs[2],
        "cork, closing at once: every response rides on the FIN",
    );
}
