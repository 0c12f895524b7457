//! socktune: TCP tuning for unmodified, dynamically linked Linux programs, loaded with
//! `LD_PRELOAD` and driven by `SOCKTUNE_*` environment variables.
//!
//! # How it works
//! - At load, [`config`] parses the variables once into one typed struct (bad values are reported
//!   and switched off, never fatal). In secure-execution mode the shim does nothing.
//! - `hooks` exports socket, listen, accept, connect, the read, write and wait families, close,
//!   dup and setsockopt. Each hook looks the fd up in [`fdtable`] (one atomic load for an fd that
//!   is not a tracked socket), lets `ops` act around the real libc call, and returns that call's
//!   result with its errno.
//! - [`policy`] decides, in plain Rust, what each socket gets: listener options at listen(), a
//!   client plan at connect(), and for accepted sockets the listener's plan.
//! - Cork per response: the first write after a boundary sets TCP_CORK (with TCP_NODELAY on, so
//!   the tail never waits for Nagle). The next read, wait (poll/select/epoll), shutdown or close
//!   releases it; `flusher` releases anything held longer than `SOCKTUNE_CORK_FLUSH_MS`.
//! - Quickack-off: TCP_QUICKACK=0 before connect() and after listen(), and again after every
//!   read that returned data, since the kernel leaves delayed-ACK mode by itself.
//! - Client Fast Open: TCP_FASTOPEN_CONNECT before connect(); if the program then reads or
//!   waits for input before writing, a zero-length send makes the kernel send the SYN, so
//!   server-speaks-first protocols never hang.
//! - Stats: with `SOCKTUNE_STATS`, each TCP connection's TCP_INFO is recorded at close
//!   ([`record`]); `stats` buffers the lines off the hot path and the flusher thread appends them.
//!   `SOCKTUNE_AB` gives a random share of connections none of the behaviours, for comparison.
//! - Exec: the exec and posix_spawn hooks put `LD_PRELOAD` and the `SOCKTUNE_*` variables back
//!   into a child's environment if the program dropped them ([`inherit`]).

// Unit tests build only the pure modules; some of their items serve the FFI modules alone.
#![cfg_attr(test, allow(dead_code))]

#[cfg(not(test))]
use socktune_core::{config, inherit};
use socktune_core::{policy, record};

mod fdtable;

#[cfg(not(test))]
mod flusher;
#[cfg(not(test))]
mod hooks;
#[cfg(not(test))]
mod log;
#[cfg(not(test))]
mod ops;
#[cfg(not(test))]
mod runtime;
#[cfg(not(test))]
mod stats;
#[cfg(not(test))]
mod sys;
