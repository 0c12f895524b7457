//! Per-connection proof: SOCKTUNE_STATS records, SOCKTUNE_STATS_PROM counters and the
//! SOCKTUNE_AB split, on real programs in a private namespace. The records are read back by
//! tests/progs/stats_summary.py, which also checks every line's keys against the documented
//! format.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn setting(name: &str, path: &Path) -> String {
    format!("SOCKTUNE_{name}={}", path.display())
}

#[track_caller]
fn expect(cond: bool, s: &Summary, r: &Results, what: &str) {
    check(cond, r, &format!("{what}\nstats summary: {:?}", s.0));
}

/// Each (summary, key, value wanted, what it shows). A server's flags per connection (`_syn`,
/// `_child`: one character each) are compared in any order: the threading http.server may
/// write its records out of its connections' order.
fn expect_fields(expectations: &[(&Summary, &str, &str, &str)], r: &Results) {
    let sorted = |v: &str| {
        let mut v = v.as_bytes().to_vec();
        v.sort_unstable();
        v
    };
    for &(summary, key, want, what) in expectations {
        let got = summary.get(key);
        let per_connection =
            key.starts_with("server_") && (key.ends_with("_syn") || key.ends_with("_child"));
        expect(
            got == want || (per_connection && sorted(got) == sorted(want)),
            summary,
            r,
            what,
        );
    }
}

const REQUESTS: u32 = 40;
const CONNS: u32 = 20;

/// The README's A/B example: half the connections corked, half untouched, in one run.
#[test]
fn ab_split_tells_the_arms_apart() {
    needs_root!(NETNS);
    let dir = scratch("stats-ab");
    let (stats, prom) = (dir.join("conns.jsonl"), dir.join("socktune.prom"));
    let client =
        format!("python3 {{progs}}/ka_client.py 127.0.0.1 {{port}} {REQUESTS} /f100 {CONNS}");
    let r = Scenario::new("ab", &client)
        .server(HTTP11_SERVER_V4)
        .server_env(&[
            "SOCKTUNE_CORK=1",
            "SOCKTUNE_AB=50",
            &setting("STATS", &stats),
            &setting("STATS_PROM", &prom),
        ])
        .run();
    check_quiet(&r);
    let s = Summary::read(&stats, Some(&prom));
    eprintln!(
        "A/B: arm A {} conns, {} packets/response; arm B {} conns, {} packets/response",
        s.get("server_A_conns"),
        s.get("server_A_ppr"),
        s.get("server_B_conns"),
        s.get("server_B_ppr")
    );
    let (a, b) = (s.num("server_A_conns"), s.num("server_B_conns"));
    expect(
        a >= 1.0 && b >= 1.0 && a + b == f64::from(CONNS),
        &s,
        &r,
        "one record per connection, in both arms",
    );
    for arm in ["A", "B"] {
        let conns = s.num(&format!("server_{arm}_conns"));
        let responses = s.num(&format!("server_{arm}_responses"));
        expect(
            responses == conns * f64::from(REQUESTS),
            &s,
            &r,
            "responses counted exactly",
        );
    }
    expect(
        s.num("server_A_ppr") >= 4.0,
        &s,
        &r,
        "arm A is untuned: >= 4 packets per response",
    );
    expect(
        s.num("server_B_ppr") <= 2.3,
        &s,
        &r,
        "arm B is corked: <= 2.3 packets per response",
    );
    expect(
        s.get("server_A_behaviours") == "-",
        &s,
        &r,
        "arm A gets no behaviour",
    );
    expect(
        s.get("server_B_behaviours").contains("cork"),
        &s,
        &r,
        "arm B is corked",
    );
    expect(
        s.num("prom_connections") == f64::from(CONNS),
        &s,
        &r,
        "the textfile counts every connection",
    );
    expect(
        s.get("prom_segments") == s.get("jsonl_segments"),
        &s,
        &r,
        "textfile and records agree",
    );
}

/// A fork-per-connection server: the parent's close of its copy is not a record, and children
/// that leave with os._exit() still write theirs (and their process line) on the way out.
#[test]
fn forked_children_leaving_by_underscore_exit_lose_no_record() {
    needs_root!(NETNS);
    let dir = scratch("stats-fork");
    let stats = dir.join("conns.jsonl");
    let r = Scenario::new(
        "fork",
        "python3 {progs}/ka_client.py 127.0.0.1 {port} 5 /f100 6",
    )
    .server("python3 {progs}/forking_server.py 127.0.0.1 {port}")
    .server_env(&[&setting("STATS", &stats)])
    .run();
    check_quiet(&r);
    let s = Summary::read(&stats, None);
    expect(
        s.num("server_none_conns") == 6.0,
        &s,
        &r,
        "one record per connection, none from the parent",
    );
    expect(
        s.num("server_none_responses") == 30.0,
        &s,
        &r,
        "5 responses on each",
    );
    expect(
        s.get("server_none_behaviours") == "-",
        &s,
        &r,
        "recording alone changes nothing",
    );
    expect(
        s.num("processes") == 6.0,
        &s,
        &r,
        "each child wrote its process line at _exit",
    );
}

/// Children that exit with the connection still open (no close before os._exit) are recorded
/// at their exit, as the connection stood, with `"end":"exit"`.
#[test]
fn connections_left_open_at_exit_are_recorded() {
    needs_root!(NETNS);
    let dir = scratch("stats-open-at-exit");
    let stats = dir.join("conns.jsonl");
    let r = Scenario::new(
        "left open",
        "python3 {progs}/ka_client.py 127.0.0.1 {port} 5 /f100 6",
    )
    .server("python3 {progs}/forking_server.py 127.0.0.1 {port} leave-open")
    .server_env(&[&setting("STATS", &stats)])
    .run();
    check_quiet(&r);
    let records = std::fs::read_to_string(&stats).unwrap_or_default();
    let ended = |end: &str| records.matches(&format!("\"end\":\"{end}\"")).count();
    assert_eq!(
        (ended("exit"), ended("close")),
        (6, 0),
        "one record per connection, at each child's exit:\n{records}\n{r}"
    );
    let s = Summary::read(&stats, None);
    expect(
        s.num("server_none_responses") == 30.0,
        &s,
        &r,
        "5 responses on each",
    );
}

/// The shim's files are its own: it writes records through no symbolic link (one planted where
/// a privileged server writes would redirect them), and counts into no counters file of another
/// user's. Each refusal is one warning; the program runs on, corked.
#[test]
fn stats_files_are_never_followed_through_a_link_nor_shared_with_another_user() {
    needs_root!(NETNS);
    let dir = scratch("stats-own-files");
    let target = dir.join("elsewhere.jsonl");
    let link = dir.join("conns.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let prom = dir.join("socktune.prom");
    let counters = dir.join("socktune.prom.counters");
    std::fs::write(&counters, b"").unwrap();
    std::os::unix::fs::chown(&counters, Some(65534), Some(65534)).unwrap(); // nobody
    let runs = run_all(&[
        keepalive("symlink", HTTP11_SERVER_V4, "127.0.0.1", 20)
            .server_env(&["SOCKTUNE_CORK=1", &setting("STATS", &link)]),
        keepalive("another user's counters", HTTP11_SERVER_V4, "127.0.0.1", 20)
            .server_env(&["SOCKTUNE_CORK=1", &setting("STATS_PROM", &prom)]),
    ]);
    for (r, why) in runs
        .iter()
        .zip(["Too many levels of symbolic links", "another user"])
    {
        check(
            r.num("srv_socktune_lines") == 1.0,
            r,
            "exactly one warning line",
        );
        check(r.stderr.contains(why), r, "the warning names the cause");
        check_corked(r, "cork still works");
    }
    assert!(!target.exists(), "nothing was written through the link");
    assert!(!prom.exists(), "no textfile from another user's counters");
}

/// A corked response that leaves with the FIN at close() is in the record: the snapshot is taken
/// once it has left, not while the cork still holds it.
#[test]
fn a_response_leaving_with_the_fin_is_counted() {
    needs_root!(NETNS);
    let dir = scratch("stats-fin");
    let stats = dir.join("conns.jsonl");
    let r = Scenario::new(
        "fin at close()",
        "python3 {progs}/short_client.py 127.0.0.1 {port} 8 /f100",
    )
    .server("python3 {progs}/prefork_server.py 127.0.0.1 {port} 2 once")
    .server_env(&["SOCKTUNE_CORK=1", &setting("STATS", &stats)])
    .run();
    let s = Summary::read(&stats, None);
    expect(
        s.num("server_none_conns") == 8.0,
        &s,
        &r,
        "one record per connection",
    );
    expect(
        s.num("server_none_data_out") == 8.0,
        &s,
        &r,
        "each response: one data segment, with the FIN",
    );
}

/// Ten short HTTP/1.0 connections from a Fast Open client, to a server with Fast Open on or off.
/// Also gives the client's stats file.
fn fastopen_run(name: &str, server_fastopen: bool) -> (Summary, Summary, Results, PathBuf) {
    let dir = scratch(name);
    let (srv, cli) = (dir.join("server.jsonl"), dir.join("client.jsonl"));
    let srv_stats = setting("STATS", &srv);
    let mut server_env = vec!["SOCKTUNE_CORK=1", &srv_stats];
    if server_fastopen {
        server_env.push("SOCKTUNE_FASTOPEN=256");
    }
    let r = Scenario::new(
        name,
        "python3 {progs}/short_client.py 127.0.0.1 {port} 10 /f100",
    )
    .server(HTTP10_SERVER_V4)
    .tfo()
    .server_env(&server_env)
    .client_env(&["SOCKTUNE_FASTOPEN_CONNECT=1", &setting("STATS", &cli)])
    .run();
    check_quiet(&r);
    (Summary::read(&srv, None), Summary::read(&cli, None), r, cli)
}

/// Fast Open shows in the records of both ends: data in the SYN from the 2nd connection on, the
/// server's connections made by a Fast Open SYN, and the client's one failure (no cookie yet).
#[test]
fn fastopen_shows_in_the_records_of_both_ends() {
    needs_root!(NETNS);
    let (s, c, r, _) = fastopen_run("stats-tfo", true);
    let syn = "0111111111";
    // http.server answers HTTP/1.0, then shuts the connection down: the record follows that.
    let expectations = [
        (
            &c,
            "client_none_syn",
            syn,
            "client records: SYN data from the 2nd connection",
        ),
        (
            &c,
            "client_none_behaviours",
            "fastopen-connect",
            "client behaviour",
        ),
        (&c, "processes", "1", "the client's process line at exit"),
        (
            &s,
            "server_none_syn",
            syn,
            "server records: SYN data from the 2nd connection",
        ),
        (
            &s,
            "server_none_behaviours",
            "cork+fastopen+nodelay",
            "server behaviours",
        ),
        (
            &s,
            "server_none_data_out",
            "10",
            "each corked response: one data segment",
        ),
        (
            &s,
            "server_none_child",
            syn,
            "server records: made by a Fast Open SYN from the 2nd connection",
        ),
        (
            &c,
            "client_none_fail",
            "cookie-unavailable",
            "the client's first connection had no cookie; the rest rode",
        ),
        (
            &s,
            "server_none_min_rtt",
            "10",
            "later TCP_INFO fields read",
        ),
        (
            &c,
            "client_none_min_rtt",
            "10",
            "later TCP_INFO fields read",
        ),
    ];
    expect_fields(&expectations, &r);
    check(
        r.get("syn_data") == syn,
        &r,
        "the client's own TCP_INFO agrees",
    );
}

/// With the server's Fast Open off, every client attempt fails, and the record says why: the
/// server never hands out a cookie. `socktune report` shows the rate and the reason per arm.
#[test]
fn fastopen_failure_reasons_appear_when_the_server_has_it_off() {
    needs_root!(NETNS);
    let (s, c, r, cli) = fastopen_run("stats-tfo-off", false);
    let expectations = [
        (&c, "client_none_syn", "0000000000", "no data rode in a SYN"),
        (
            &c,
            "client_none_fail",
            &["cookie-unavailable"; 10].join("+"),
            "each attempt failed for want of a cookie",
        ),
        (&s, "server_none_child", "0000000000", "no Fast Open child"),
        (
            &s,
            "server_none_behaviours",
            "cork+nodelay",
            "no server Fast Open",
        ),
    ];
    expect_fields(&expectations, &r);
    let out = run_bounded(
        Command::new(launcher()).arg("report").arg(&cli),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "report failed: {text}");
    assert!(
        text.contains("client -: fast open 0/10 in the SYN (0%); not: cookie-unavailable 10"),
        "{text}"
    );
}

/// A stats path that cannot be opened, or a full disk (/dev/full fails every write with ENOSPC),
/// costs one warning line per process, never the host's service.
#[test]
fn an_unwritable_stats_path_warns_once_and_the_program_runs_on() {
    needs_root!(NETNS);
    let runs = run_all(&[
        keepalive("unopenable", HTTP11_SERVER_V4, "127.0.0.1", 20).server_env(&[
            "SOCKTUNE_CORK=1",
            "SOCKTUNE_STATS=/proc/socktune/none.jsonl",
        ]),
        keepalive("disk full", HTTP11_SERVER_V4, "127.0.0.1", 20)
            .server_env(&["SOCKTUNE_CORK=1", "SOCKTUNE_STATS=/dev/full"]),
    ]);
    for (r, why) in runs.iter().zip(["", "No space left on device"]) {
        check(
            r.num("srv_socktune_lines") == 1.0,
            r,
            "exactly one warning line",
        );
        check(
            r.stderr.contains("SOCKTUNE_STATS") && r.stderr.contains(why),
            r,
            "the warning names the variable and the cause",
        );
        check_corked(r, "cork still works");
    }
}

/// Switchback: with 1-second windows, every connection of a window takes that window's arm
/// (odd windows B at 50%), and `socktune report` compares the arms by window means. Arm A's
/// windows are the untuned baseline.
#[test]
fn switchback_windows_give_both_arms_and_a_report_that_tells_them_apart() {
    needs_root!(NETNS);
    let dir = scratch("stats-switchback");
    let stats = dir.join("conns.jsonl");
    // Six seconds of keep-alive connections (5 GETs each), whatever each arm's speed.
    let client = "sh -c 'end=$(( $(date +%s) + 6 )); while [ $(date +%s) -lt $end ]; do \
                  python3 {progs}/ka_client.py 127.0.0.1 {port} 5 /f100 2 >/dev/null || exit 1; \
                  done'";
    let r = Scenario::new("switchback", client)
        .server(HTTP11_SERVER_V4)
        .server_env(&[
            "SOCKTUNE_CORK=1",
            "SOCKTUNE_AB=50",
            "SOCKTUNE_AB_MODE=switchback:1",
            &setting("STATS", &stats),
        ])
        .run();
    check_quiet(&r);
    let text = std::fs::read_to_string(&stats).expect("the server's records");
    // (packets, responses) per (window, arm)
    let mut windows: std::collections::BTreeMap<(u64, String), (u64, u64)> = Default::default();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if v["type"] != "conn" {
            continue;
        }
        let window = v["window"]
            .as_u64()
            .expect("every record carries its window");
        let arm = v["arm"].as_str().expect("and its arm").to_string();
        let want = if window % 2 == 1 { "B" } else { "A" };
        assert_eq!(arm, want, "window {window}: {line}");
        let w = windows.entry((window, arm)).or_default();
        w.0 += v["segs_in"].as_u64().unwrap() + v["segs_out"].as_u64().unwrap();
        w.1 += v["responses"].as_u64().unwrap();
    }
    let ppr = |arm: &str| -> Vec<f64> {
        windows
            .iter()
            .filter(|((_, a), (_, resp))| a == arm && *resp > 0)
            .map(|(_, (p, resp))| *p as f64 / *resp as f64)
            .collect()
    };
    let (a, b) = (ppr("A"), ppr("B"));
    eprintln!("switchback windows: A {a:?}, B {b:?}");
    assert!(
        a.len() >= 2 && b.len() >= 2,
        "windows of both arms: {windows:?}"
    );
    // With 5 GETs a connection, its handshake and close add 1.2 packets per response: arm A
    // measured 6.2 (5 per request untuned), arm B 3.6 (2 per request corked).
    assert!(a.iter().all(|&p| p >= 5.5), "arm A untuned: {a:?}");
    assert!(b.iter().all(|&p| p <= 4.0), "arm B corked: {b:?}");
    let out = run_bounded(
        Command::new(launcher()).arg("report").arg(&stats),
        Duration::from_secs(30),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "report failed: {report}");
    let line = report
        .lines()
        .find(|l| l.starts_with("server: switchback, "))
        .unwrap_or_else(|| panic!("no switchback comparison:\n{report}"));
    assert!(
        line.contains("B - A = -") && line.ends_with("): significant"),
        "{report}"
    );
}

/// Prefork workers whose stats path cannot be written warn once between them: the flag is in
/// memory the workers share from the fork, not in each worker's own copy.
#[test]
fn prefork_workers_warn_once_per_process_tree() {
    needs_root!(NETNS);
    let r = Scenario::new(
        "prefork",
        "python3 {progs}/short_client.py 127.0.0.1 {port} 12 /",
    )
    .server("python3 {progs}/prefork_server.py 127.0.0.1 {port} 3 once")
    .server_env(&["SOCKTUNE_STATS=/dev/full"])
    .run();
    check(
        r.num("srv_workers") >= 2.0,
        &r,
        "the connections must reach several workers",
    );
    check(
        r.num("srv_socktune_lines") == 1.0,
        &r,
        "exactly one warning in the whole process tree",
    );
}
