//! The exported functions that replace libc's, one file per call family. Each is thin: it looks
//! its fd up once, runs the behaviours' steps before and after the real call through
//! [`guard::act`](crate::guard::act), calls the real function exactly once, outside those steps,
//! and returns its result with its errno.
//!
//! In unit-test builds nothing is exported, so the test harness's own calls reach libc.

mod close;
mod connect;
mod exec;
mod exit;
mod read;
mod socket;
mod sockopt;
mod wait;
mod write;
