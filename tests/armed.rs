//! An armed connection (client Fast Open with a cached cookie: connect() sends nothing, the SYN
//! waits for the first write) must look like a plain connect() whatever the program does first:
//! close, shutdown, getpeername, a passive-FTP-like wait on another connection, accept() in the
//! same thread, 50 ms of computing (the 5 ms deadline), sendfile, a non-blocking connect driven
//! by asyncio, TLS. tests/progs/armed_cases.py runs each against peers in its own process, in a
//! namespace with net.ipv4.tcp_fastopen=3 and a cookie fetched first.
mod common;
use common::*;

const CASES: &[&str] = &[
    "close_first",
    "shutdown_first",
    "getpeername_in_syn",
    "passive_ftp",
    "connect_then_accept",
    "deadline",
    "sendfile_first",
    "event_loop",
    "tls",
];

/// Three runs: a plain program untuned (every case works, no data in a SYN); the program
/// setting TCP_FASTOPEN_CONNECT itself (what the kernel does: most cases hang or fail); and the
/// plain program under SOCKTUNE_FASTOPEN_CONNECT=1 (every case works, and the request still
/// rides in the SYN where the program wrote first).
#[test]
fn armed_connections_behave_as_plain_connects() {
    needs_root!(NETNS);
    let cases = |mode: &str| {
        Scenario::new(
            mode,
            &format!("python3 {{progs}}/armed_cases.py {{port}} {mode}"),
        )
        .tfo()
    };
    let runs = run_all(&[
        cases("plain"),
        cases("raw"),
        cases("plain").client_env(&["SOCKTUNE_FASTOPEN_CONNECT=1"]),
    ]);
    let (plain, raw, tuned) = (&runs[0], &runs[1], &runs[2]);
    for r in [plain, tuned] {
        check_quiet(r);
        for case in CASES {
            check(
                r.get(case) == "1",
                r,
                &format!("{case}: must behave as a plain connect"),
            );
        }
        check(
            r.get("nb_connect") == "EINPROGRESS" && r.get("so_error") == "0",
            r,
            "a non-blocking connect reports EINPROGRESS, then SO_ERROR 0",
        );
        check(
            r.get("loop_order") == "soon,connected",
            r,
            "asyncio runs a callback scheduled before the connect first",
        );
        check(
            r.get("peername_ok") == "1",
            r,
            "getpeername answers the server",
        );
    }
    // The kernel's own behaviour, which the shim hides.
    for case in [
        "close_first",
        "shutdown_first",
        "passive_ftp",
        "connect_then_accept",
        "tls",
    ] {
        check(
            raw.get(case) == "0",
            raw,
            &format!("{case}: expected to fail under raw Fast Open"),
        );
    }
    check(
        raw.get("nb_connect") == "0",
        raw,
        "raw Fast Open: connect() answers 0",
    );
    for key in [
        "peername_syn_data",
        "loop_syn_data",
        "tls_syn_data",
        "tfo_active",
    ] {
        check(
            plain.get(key) == "0",
            plain,
            &format!("{key}: untuned, no Fast Open"),
        );
        check(
            tuned.get(key) == "1",
            tuned,
            &format!("{key}: the first write must still ride in the SYN"),
        );
    }
    check(
        ["EISCONN", "EALREADY", "0"].contains(&tuned.get("nb_again")),
        tuned,
        "a second connect answers as for a connection in progress or made",
    );
}

/// curl asks getpeername() right after connect(); answered without sending the SYN, its request
/// still rides in the SYN from the second connection on (the first fetches the cookie).
/// (Alone on this machine 2 of 2 ride; in the full suite, beside the heavy armed cases, CI saw 1.)
#[test]
fn curl_keeps_its_request_in_the_syn() {
    needs_root!(NETNS);
    let fetch = |name: &str| {
        Scenario::new(name, "sh {progs}/curl_tfo.sh {port} 3")
            .server(HTTP11_SERVER_V4)
            .tfo()
    };
    let runs = run_all(&[
        fetch("untuned"),
        fetch("fast open")
            .server_env(&["SOCKTUNE_FASTOPEN=256"])
            .client_env(&["SOCKTUNE_FASTOPEN_CONNECT=1"]),
    ]);
    for r in &runs {
        check_quiet(r);
        check(r.get("codes") == "200200200", r, "every request answered");
    }
    check(
        runs[0].get("tfo_active") == "0",
        &runs[0],
        "untuned: no Fast Open",
    );
    // A getpeername that sent the SYN would leave none in it. One of the two may miss on a
    // loaded machine: the 5 ms backstop sends the SYN of a curl descheduled between its
    // connect() and its write.
    check(
        runs[1].num("tfo_active") >= 1.0,
        &runs[1],
        "the 2nd and 3rd requests ride in their SYN (at least one of them)",
    );
}
