//! Hooks call the real function exactly once, whatever happens inside the shim. The library is
//! built a second time with the `panic-in-logic` feature, where every step of the shim's own
//! logic panics after it ran. Under that build:
//! - once_check.c, errno_check.c and fd_check.c (libc's results and errno, fd lifetimes, and
//!   calls that a second real call would visibly change: a second accept takes the next queued
//!   connection, a second read the next byte, a second close says EBADF) pass as without it;
//! - a keep-alive server with every behaviour on serves every response byte-exact, and says
//!   once, on stderr, that its logic failed.
//!
//! The normal build runs the same scenarios, so each result is checked against an untouched
//! baseline.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// target/panic-in-logic/<profile>/libsocktune.so, built once per test binary.
fn panicking_lib() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = cargo_build(
            &["-p", "socktune-preload", "--features", "panic-in-logic"],
            Some(&repo().join("target/panic-in-logic")),
        );
        let path = profile_dir.join("libsocktune.so");
        assert!(path.is_file(), "no {}", path.display());
        path
    })
}

#[test]
fn every_hooked_call_reaches_libc_once_under_a_panicking_shim() {
    needs_root!(NETNS);
    without_then_with_shim("once_check", &lib());
    without_then_with_shim("once_check", panicking_lib());
}

#[test]
fn results_errno_and_fd_lifetimes_match_libc_under_a_panicking_shim() {
    needs_root!(NETNS);
    without_then_with_shim("errno_check", panicking_lib());
    without_then_with_shim("fd_check", panicking_lib());
}

const LOGIC_FAILED: &str = "socktune: internal error in ";

#[test]
fn a_server_under_a_panicking_shim_serves_every_response_byte_exact() {
    needs_root!(NETNS);
    let scenario = |name: &str| {
        Scenario::new(name, "python3 {progs}/sized_client.py 127.0.0.1 {port} 3")
            .server("python3 {progs}/sized_server.py 127.0.0.1 {port} writev")
            .server_env(&[ALL_BEHAVIOURS, &["SOCKTUNE_STATS=/dev/null"]].concat())
            .tfo()
    };
    let runs = run_all(&[
        scenario("normal build"),
        scenario("panic-in-logic build").library(panicking_lib()),
    ]);
    for r in &runs {
        check(r.num("errors") == 0.0, r, "every body is byte-exact");
        check(r.num("requests") == 30.0, r, "every request is answered");
    }
    let (normal, panicking) = (&runs[0], &runs[1]);
    check(
        !normal.stderr.contains(LOGIC_FAILED),
        normal,
        "the normal build's logic never fails",
    );
    check(
        panicking.stderr.matches(LOGIC_FAILED).count() == 1,
        panicking,
        "the panicking build says once that its logic failed",
    );
}
