//! libsocktune_shim.so: TCP tuning for unmodified, dynamically linked Linux programs, driven by
//! `SOCKTUNE_*` environment variables. `LD_PRELOAD` names the stub, libsocktune.so
//! (`stub/stub.rs`, built by build.rs), which loads this library at the process's first socket
//! call or fork and hands it what it captured at start ([`stub`]); preloaded itself, it reads
//! the environment at its own load.
//!
//! # How it works
//! - At load, `lifecycle` runs the constructor: [`settings`] parses the variables once (bad
//!   values are reported and switched off, never fatal; in secure-execution mode the shim does
//!   nothing), and fork handlers, the exec environment and recording are set up.
//! - `hooks` exports socket, listen, accept, connect, getpeername, the read, write (splice
//!   included) and wait families, close, dup, setsockopt, getsockopt, exec, `_exit`, and on
//!   x86-64 vfork, clone, `syscall` and `_Fork` (forks no fork handler sees). Each hook looks
//!   its fd up in [`fdtable`] once (one atomic load for an fd that is not a tracked socket),
//!   runs the behaviours' steps around the real call through [`guard::act`], calls the real
//!   function ([`real`]) exactly once, and returns its result with its errno.
//! - The behaviours, one module each: `setup` (the options set once, at listen, accept and
//!   connect, from `socktune_core::policy`'s plans), `cork` (cork per response), `armed` (client
//!   connections that wait for the first write: Fast Open and quickack-off), `quickack` (delayed
//!   ACKs re-entered after reads, and sent when the program reads or waits on before it writes),
//!   `speaks_first` (defer-accept off a listener whose server writes first), `own_options` (the
//!   program's own setsockopt wins).
//! - `live` makes and maps the control file of `socktune ctl` (at the first TCP listener,
//!   accept, connect, or a fork), and puts a live change in force for the sockets that start
//!   after it.
//! - `stats` records each connection's TCP_INFO at its end, for `SOCKTUNE_STATS` and
//!   `SOCKTUNE_STATS_PROM`, and draws the A/B arm; the `flusher` thread writes the records and
//!   releases corks no boundary released.
//!
//! docs/architecture.md draws the layers; no module calls a layer above its own.

// A cdylib has no Rust API: its documentation is its private modules (`cargo doc
// --document-private-items`), so links to them are what the docs are for.
#![allow(rustdoc::private_intra_doc_links)]
// Unit-test builds export no hooks, so the functions only hooks call go unused there.
#![cfg_attr(test, allow(dead_code))]

// The bottom: libc, errno, system calls, the fd table.
mod errno;
mod fdtable;
mod real;
mod stub;
mod sys;

// Services.
mod flusher;
mod guard;
mod interest;
mod live;
mod log;
mod settings;
mod stats;
mod track;
mod tree;

// Behaviours.
mod armed;
mod cork;
mod own_options;
mod quickack;
mod setup;
mod speaks_first;

// The process's life, and the exported hooks.
mod exec_env;
mod hooks;
mod lifecycle;

#[cfg(test)]
mod behaviour_tests;

/// The version, for `socktune doctor --pid` to find in the file a process has mapped. Exported,
/// so that neither LTO nor the linker drops it; the NUL ends it for the reader.
#[no_mangle]
pub static SOCKTUNE_VERSION: &str = concat!("socktune-version=", env!("CARGO_PKG_VERSION"), "\0");
