//! Load: untuned nginx (2 workers, sendfile on, tcp_nopush and tcp_nodelay off, keep-alive)
//! under `SOCKTUNE_CORK=1`, driven by wrk with 1,000 concurrent keep-alive connections for 30 s
//! in a private network namespace, without and with the shim in one run
//! (tests/harness/load.py; scripts/setup.sh installs nginx and wrk).
mod common;
use common::*;
use std::time::Duration;

const CONNS: u32 = 1000;
/// RSS the workers may gain in the run's second half, summed (allocator and page noise).
const RSS_SLACK_KB: f64 = 512.0;
/// Requests/s with the shim must reach this share of the figure without it.
const MIN_RATE_RATIO: f64 = 0.9;

#[test]
fn nginx_under_1000_keepalive_connections_without_and_with_the_shim() {
    needs_root!("runs nginx under wrk in a private network namespace made with unshare -n");
    let r = run_harness(
        "load.py",
        &[format!("--conns={CONNS}")],
        Duration::from_secs(900), // two 30 s runs
    );
    eprintln!("{}", r.stderr);
    for v in ["plain", "shim"] {
        let n = |k: &str| r.num(&format!("{v}_{k}"));
        eprintln!(
            "{v}: {} requests/s, {} responses, fds {} idle / {} start / {} mid / {} end / {} after, \
             RSS {} / {} / {} KiB",
            n("req_s"),
            n("good"),
            n("fd_idle"),
            n("fd_start"),
            n("fd_mid"),
            n("fd_end"),
            n("fd_after"),
            n("rss_start_kb"),
            n("rss_mid_kb"),
            n("rss_end_kb")
        );
        check(n("errors") == 0.0, &r, &format!("{v}: wrk saw errors"));
        check(
            n("bad") == 0.0 && n("good") == n("requests") && n("good") > 0.0,
            &r,
            &format!("{v}: every response must be 200 with the file's exact bytes"),
        );
        check(
            n("fd_start") - n("fd_idle") >= f64::from(CONNS),
            &r,
            &format!("{v}: the workers should hold all {CONNS} connections at once"),
        );
        check(
            (n("fd_end") - n("fd_start")).abs() <= 4.0 && n("fd_after") == n("fd_idle"),
            &r,
            &format!("{v}: open fds grew, or stayed open after wrk closed its connections"),
        );
        check(
            n("rss_growth2_kb") <= RSS_SLACK_KB,
            &r,
            &format!("{v}: worker RSS grew in the second half by more than {RSS_SLACK_KB} KiB"),
        );
    }
    let ratio = r.num("shim_req_s") / r.num("plain_req_s");
    eprintln!(
        "requests/s with / without the shim: {ratio:.2} (order {})",
        r.get("order")
    );
    check(
        ratio >= MIN_RATE_RATIO,
        &r,
        &format!("requests/s with the shim below {MIN_RATE_RATIO} x without"),
    );
}
