//! The exported functions that replace libc's, one file per call family. Each is thin: it looks
//! its fd up once, runs the behaviours' steps before and after the real call through
//! [`guard::act`](crate::guard::act), calls the real function exactly once, outside those steps,
//! and returns its result with its errno.
//!
//! In unit-test builds nothing is exported, so the test harness's own calls reach libc.
//!
//! Safety: a hook's `unsafe { real::…(…) }` passes the program's own arguments to libc unchanged,
//! so it is exactly as safe as the program's call; the other unsafe blocks say why they are sound.
#![allow(
    clippy::undocumented_unsafe_blocks,
    reason = "each real call passes the program's arguments on unchanged (see above)"
)]

mod block;
mod close;
mod connect;
mod exec;
mod exit;
#[cfg(target_arch = "x86_64")]
mod fork;
mod read;
mod socket;
mod sockopt;
mod wait;
mod write;
