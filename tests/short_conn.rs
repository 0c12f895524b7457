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

/// `s` with its server under `env` where `shim`, else untuned.
fn untuned_or(s: Scenario, shim: bool, env: &[&str]) -> Scenario {
    if shim {
        s.server_env(env)
    } else {
        s
    }
}

/// A response held for the FIN reaches its client only at the server's shutdown or close, after
/// whatever the server does between its last write and that call: a Perl or Python server's
/// work there cost plackup a tenth of its requests/s. Once a port's server was seen to shut down
/// or close right after a closing response (its first connection), the shim sends the FIN with
/// the next one's last write: each response rides on the FIN and leaves at once, whether the
/// server then waits for its client's close (gunicorn's and Apache's lingering close) or closes.
/// The server's own shutdown comes after the client has closed, and must still return 0 (a
/// Python server raises on its ENOTCONN). Each server works 100 ms between its last write and its
/// shutdown, so that a response held for the shutdown shows as one that took 100 ms.
#[test]
fn a_closing_response_leaves_with_its_fin_at_its_last_write() {
    needs_root!(NETNS);
    const N: usize = 6;
    let run = |name: &str, server: &str, shim: bool| {
        let client = format!("python3 {{progs}}/fin_client.py 127.0.0.1 {{port}} {N}");
        let s = Scenario::new(name, &client).server(server);
        untuned_or(s, shim, &["SOCKTUNE_CORK=1", "SOCKTUNE_CORK_FLUSH_MS=200"])
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
            "{:<22} FIN with the body: {}  slow: {}",
            r.name,
            r.get("fin_with_body"),
            r.get("slow")
        );
    }
    let flags = |r: &Results, name: &str| r.get(name).to_string();
    check(
        flags(&runs[0], "fin_with_body") == "0".repeat(N)
            && flags(&runs[0], "slow") == "0".repeat(N),
        &runs[0],
        "untuned: each response leaves at once, its FIN 100 ms later",
    );
    for r in &runs[1..] {
        check(
            flags(r, "fin_with_body") == "1".repeat(N),
            r,
            "cork: every response rides on the FIN",
        );
        check(
            flags(r, "slow") == format!("1{}", "0".repeat(N - 1)),
            r,
            "cork: the port's first response waits for the shutdown, the rest leave at their last write",
        );
    }
}

/// A server that writes past the length its closing response declared is never taken for one
/// that closes right after the response: its FIN waits for its close, and its client reads every
/// byte it sent. One that answered exactly first and then runs past the end meets the FIN the
/// shim already sent: that write is taken and dropped (the kernel would refuse it with EPIPE and
/// SIGPIPE), and the port's responses wait for their close again. An empty send after that FIN
/// is not past the end: it returns 0, as it would have.
#[test]
fn a_response_past_its_declared_end_keeps_its_fin_for_the_close() {
    needs_root!(NETNS);
    const N: usize = 4;
    let run = |name: &str, plan: &str, shim: bool| {
        let client = format!("python3 {{progs}}/eof_client.py 127.0.0.1 {{port}} {N}");
        let s = Scenario::new(name, &client).server(&format!(
            "python3 {{progs}}/overlong_server.py 127.0.0.1 {{port}} {plan}"
        ));
        untuned_or(s, shim, &["SOCKTUNE_CORK=1"])
    };
    let runs = run_all(&[
        run("overlong, untuned", "o", false),
        run("overlong, cork", "o", true),
        run("exact then overlong, untuned", "eo", false),
        run("exact then overlong, cork", "eo", true),
        run("exact, an empty send, untuned", "z", false),
        run("exact, an empty send, cork", "z", true),
    ]);
    for r in &runs {
        eprintln!("{:<30} got {}", r.name, r.get("got"));
    }
    // What each connection got after the head: `firsts`, then the whole "bodytail".
    let got = |firsts: &[&str]| {
        let mut each = firsts.to_vec();
        each.resize(N, "bodytail");
        each.join(",")
    };
    check(
        runs[0].get("got") == got(&[]),
        &runs[0],
        "untuned: every byte sent",
    );
    check(
        runs[1].get("got") == got(&[]),
        &runs[1],
        "cork: a server that runs past its end is not learned; every byte arrives",
    );
    check(
        runs[2].get("got") == got(&["body"]),
        &runs[2],
        "untuned: the exact answer, then every byte sent",
    );
    check(
        runs[3].get("got") == got(&["body", "body"]),
        &runs[3],
        "cork: learned on the exact answer, the next one's tail meets the FIN and is dropped \
         without an error in the server; from then on every byte arrives",
    );
    let bodies = ["body"; N].join(",");
    check(
        runs[4].get("got") == bodies,
        &runs[4],
        "untuned: an empty send after the response sends nothing",
    );
    check(
        runs[5].get("got") == bodies,
        &runs[5],
        "cork: an empty send after the FIN the shim sent returns 0 as it would have, and the \
         server goes on",
    );
}
