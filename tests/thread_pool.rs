//! A thread-pool server: the JDK's built-in HttpServer (tests/progs/PoolServer.java), whose
//! workers write a response, headers then body, and park on the pool's queue (an untimed
//! pthread_cond_wait). The worker blocking is the response's boundary: under cork its response
//! leaves when it parks, not when the flusher finds it. The flusher is set to its longest delay,
//! 200 ms, so that a response it released would take that long; the bound below is half of it.
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

/// Compiles PoolServer.java into a scratch directory; returns the server command.
fn pool_server() -> String {
    let classes = scratch("pool-server");
    let javac = run_bounded(
        Command::new("javac")
            .arg("-d")
            .arg(&classes)
            .arg(repo().join("tests/progs/PoolServer.java")),
        Duration::from_secs(120),
    );
    assert!(
        javac.status.success(),
        "javac failed (run: bash scripts/setup.sh):\n{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    format!(
        "java -cp {} PoolServer 127.0.0.1 {{port}}",
        classes.display()
    )
}

#[test]
fn a_worker_parking_releases_its_response() {
    needs_root!(NETNS);
    let server = pool_server();
    let runs = run_all(&[
        keepalive("without socktune", &server, "127.0.0.1", 100),
        keepalive("cork", &server, "127.0.0.1", 100)
            .server_env(&["SOCKTUNE_CORK=1", "SOCKTUNE_CORK_FLUSH_MS=200"]),
    ]);
    let (plain, corked) = (&runs[0], &runs[1]);
    for r in &runs {
        eprintln!(
            "thread pool, {:<16} {} packets/request, p50 {} ms",
            r.name,
            r.get("packets_per_request"),
            r.get("p50_ms")
        );
    }
    check_uncorked(plain, "the JDK's HttpServer without socktune");
    check(
        plain.num("p50_ms") > 30.0,
        plain,
        "without socktune, Nagle holds each body for the delayed ACK",
    );
    check(
        corked.num("packets_per_request") <= 2.2,
        corked,
        "one segment per response",
    );
    check(
        corked.num("p50_ms") < 100.0,
        corked,
        "released when the worker parks, not by the flusher 200 ms later",
    );
}
