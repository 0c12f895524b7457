//! The process's life: start-up, fork, exec and exit. The one module that calls the layers above
//! the services (stats, the flusher's jobs, the exec environment), so that none of them calls
//! upward.

use crate::settings::config;
use crate::{armed, cork, exec_env, fdtable, flusher, guard, live, stats, track, tree};
use socktune_core::config::Inherit;

/// The library's constructor: settings, fork handlers, the exec environment, recording. With
/// no `SOCKTUNE_*` set it returns at the first check, having allocated nothing.
extern "C" fn init() {
    if config().inert() {
        return;
    }
    guard::start(after_fork_in_child);
    // SAFETY: registers plain extern "C" handlers; the parent's and child's touch only atomics.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        )
    };
    if config().inherit == Inherit::Always {
        exec_env::capture(); // only what is put back needs keeping
    }
    if config().records() || config().defer_accept.is_some() {
        tree::map(); // before any fork: the workers share it
    }
    stats::init();
    live::init();
    flusher::set_jobs(&[cork::release_aged, armed::release_aged, stats::tick]);
}

#[cfg(not(test))]
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

/// Before a fork, from its fork handler or, for a fork no handler sees, from that hook.
pub extern "C" fn before_fork() {
    guard::act("fork", live::needed);
}

/// In the parent after a fork, from its fork handler or, for a fork no handler sees (a raw
/// `clone` or fork system call, `_Fork`), from that hook.
pub extern "C" fn after_fork_in_parent() {
    track::mark_connections_shared();
}

/// In a forked child: from its fork handler, or, where none ran, from `guard::adopt` before the
/// shim does anything there.
extern "C" fn after_fork_in_child() {
    guard::child_started();
    // The parent keeps flushing what it corked; our copy of its holds must not double it.
    fdtable::forget_holds();
    flusher::forget_after_fork();
    stats::forget_after_fork();
    live::after_fork_in_child();
    track::mark_connections_shared();
}

/// Before an exec or spawn: the new program may hold the sockets too (on fd 1, CGI style), so a
/// close here must push what we corked rather than leave it to a FIN that never comes. No fork
/// handler says so after posix_spawn or vfork; in a vfork child this marks the parent's table.
/// `replaces_us`: an exec of this process (not a spawn), whose open connections are recorded.
pub fn before_exec(replaces_us: bool) {
    if replaces_us {
        stats::at_exec(); // before they are marked shared, which only the writer records
    }
    track::mark_connections_shared();
}

/// Before `_exit`/`_Exit` (exit() drains through atexit): write the buffered records.
pub fn before_exit() {
    stats::at_exit();
    live::at_exit();
}
