//! Process-wide start-up, the re-entrancy guard, thread identity and fork handling.

use crate::config::{self, Config};
use crate::{fdtable, flusher, log};
use once_cell::sync::Lazy;
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::SeqCst};

/// Parsed once, at load time (see `INIT`), so later changes to the environment do not matter:
/// nginx, for one, clears it before forking its workers.
static CONFIG: Lazy<Config> = Lazy::new(load);

pub fn config() -> &'static Config {
    &CONFIG
}

fn load() -> Config {
    let _busy = enter();
    // A hook that runs before our constructor parses the config inside the program's call.
    let _keep = crate::sys::KeepErrno::now();
    // SAFETY: getauxval is always safe to call.
    if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
        return Config::default(); // setuid/setgid: a preload library must not act
    }
    // Lossy, so that a value that is not UTF-8 is reported as invalid rather than ignored.
    let parsed = config::parse(std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    }));
    let cfg = parsed.config;
    log::init(cfg.log, cfg.log_file.as_deref());
    if !parsed.reported {
        for problem in &parsed.problems {
            log::stderr(problem);
        }
        if !cfg.inert() {
            for line in cfg.to_string().lines() {
                log::info!("{line}");
            }
        }
        // Runs from the library's constructor (or a hook called before it), before main() can
        // have started threads that read the environment.
        std::env::set_var(config::REPORTED_VAR, &parsed.fingerprint);
    }
    cfg
}

thread_local! {
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static TOKEN: Cell<u32> = const { Cell::new(0) };
}

/// Held while the shim does its own work on this thread; hooks entered meanwhile pass straight
/// through to libc.
pub struct Busy(());

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = BUSY.try_with(|b| b.set(false));
    }
}

/// `None` if this thread is already inside the shim (or is exiting and has no thread-locals).
pub fn enter() -> Option<Busy> {
    BUSY.try_with(|b| (!b.replace(true)).then_some(Busy(())))
        .ok()
        .flatten()
}

/// A small number naming the calling thread, for "flush what this thread wrote".
pub fn thread_token() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    TOKEN
        .try_with(|t| {
            if t.get() == 0 {
                t.set(NEXT.fetch_add(1, SeqCst));
            }
            t.get()
        })
        .unwrap_or(0)
}

/// This process's id, to tell a vfork child, which runs in our memory, from us.
static PID: AtomicI32 = AtomicI32::new(0);

fn note_pid() {
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { libc::getpid() }, SeqCst);
}

/// True in a vfork child before it execs: it shares our memory, the fd table included, but not
/// our fds, so what it closes or duplicates must leave the table alone. One getpid call: only
/// asked when a tracked fd is closed or duplicated.
pub fn in_vfork_child() -> bool {
    let pid = PID.load(SeqCst);
    // SAFETY: as above.
    pid != 0 && pid != unsafe { libc::getpid() }
}

extern "C" fn after_fork_in_parent() {
    mark_connections_shared();
}

extern "C" fn after_fork_in_child() {
    note_pid();
    // The parent keeps flushing what it corked; our copy of its holds must not double it.
    fdtable::forget_holds();
    flusher::forget_after_fork();
    crate::stats::forget_after_fork();
    mark_connections_shared();
}

/// Both processes now hold every socket: a close in one no longer closes the connection.
pub fn mark_connections_shared() {
    fdtable::for_each_tracked(|fd, m| {
        if m.is_connection() {
            fdtable::set_flags(fd, crate::policy::Meta::SHARED);
        }
    });
}

extern "C" fn init() {
    let cfg = config();
    if !cfg.inert() {
        note_pid();
        // SAFETY: registers plain extern "C" handlers that only touch atomics.
        unsafe {
            libc::pthread_atfork(None, Some(after_fork_in_parent), Some(after_fork_in_child))
        };
        crate::hooks::capture_inherited();
        crate::stats::init();
    }
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
