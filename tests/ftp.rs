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
