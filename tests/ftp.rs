//! Passive FTP with real programs: Python's ftplib against vsftpd, which accepts the data
//! connection before it answers the command sent on the control connection. Under client Fast
//! Open with a cookie (cached per server address, so for the data port too), the data
//! connection's SYN waits for a write that comes only after that answer: both sides waited
//! forever. The shim sends the SYN when the client's thread turns to wait on the control
//! connection, and the server still accepts it on the Fast Open cookie.
mod common;
use common::*;

const VSFTPD: &str = "sh {progs}/vsftpd_run.sh {port} {www}";

fn ftp(name: &str, timeout: &str) -> Scenario {
    Scenario::new(
        name,
        &format!("python3 {{progs}}/ftp_client.py 127.0.0.1 {{port}} 3 {timeout} up/"),
    )
    .server(VSFTPD)
    .tfo()
}

#[test]
fn passive_ftp_under_client_fast_open() {
    needs_root!(NETNS);
    let tuned = |name: &str, timeout: &str| {
        ftp(name, timeout)
            .server_env(&["SOCKTUNE_FASTOPEN=256"])
            .client_env(&["SOCKTUNE_FASTOPEN_CONNECT=1"])
    };
    let runs = run_all(&[
        ftp("untuned", "5"),
        tuned("fast open, poll", "5"),
        tuned("fast open, blocking", "0"),
    ]);
    for r in &runs {
        check_quiet(r);
        eprintln!(
            "{:<20} rounds {}  Fast Open accepted {}",
            r.name,
            r.get("rounds"),
            r.get("tfo_passive")
        );
        check(
            r.get("rounds") == "3",
            r,
            "every upload and download intact",
        );
    }
    check(
        runs[0].get("tfo_passive") == "0",
        &runs[0],
        "untuned: no Fast Open",
    );
    for r in &runs[1..] {
        check(
            r.num("tfo_passive") >= 3.0,
            r,
            "connections after the first must be accepted on their Fast Open cookie",
        );
    }
}

/// tests/progs/passing_server.py accepts in one process and answers in another, which gets each
/// connection by SCM_RIGHTS, as vsftpd's sessions get their data connections (their records
/// cannot be read here: vsftpd chroots them). The worker must cork the connection it never saw
/// made, and the process that handed it over must not record it as closed.
#[test]
fn connections_passed_by_scm_rights_are_tuned_where_they_are_used() {
    needs_root!(NETNS);
    const REQUESTS: u32 = 40;
    let stats = scratch("passed").join("conns.jsonl");
    let server = "python3 {progs}/passing_server.py 127.0.0.1 {port}";
    let runs = run_all(&[
        keepalive("without socktune", server, "127.0.0.1", REQUESTS),
        keepalive("cork", server, "127.0.0.1", REQUESTS).server_env(&[
            "SOCKTUNE_CORK=1",
            &format!("SOCKTUNE_STATS={}", stats.display()),
        ]),
    ]);
    check_uncorked(&runs[0], "without socktune");
    let r = &runs[1];
    check_quiet(r);
    check_corked(r, "cork, in the worker the connection was passed to");
    let s = Summary::read(&stats, None);
    let summary = format!("stats summary: {:?}", s.0);
    eprintln!("{summary}");
    check(
        s.num("server_none_conns") == 1.0 && s.num("server_none_responses") == f64::from(REQUESTS),
        r,
        &format!("one record, the worker's, with every response\n{summary}"),
    );
}
