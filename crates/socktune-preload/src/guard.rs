//! What keeps the shim's own work from hurting the program's call: the re-entrancy guard, errno
//! kept, and panics contained. Also the thread and process identity the shim needs.
//!
//! A hook runs the shim's logic before and after the real call only through [`act`], and calls
//! the real function itself outside it, exactly once, whatever the logic does.

use crate::errno::KeepErrno;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::SeqCst};

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

/// Runs one step of the shim's logic for the hook `call`: not at all if this thread is already
/// inside the shim; with errno kept as the program's call left it; and with a panic caught,
/// reported once, and turned into `R::default()`, so that the program's call goes ahead
/// untouched.
#[inline]
pub fn act<R: Default>(call: &str, logic: impl FnOnce() -> R) -> R {
    let Some(_busy) = enter() else {
        return R::default();
    };
    let _keep = KeepErrno::now();
    match catch_unwind(AssertUnwindSafe(|| {
        let r = logic();
        if cfg!(feature = "panic-in-logic") {
            panic!("socktune built with panic-in-logic: {call} panics after its step");
        }
        r
    })) {
        Ok(r) => r,
        Err(_) => {
            failed(call);
            R::default()
        }
    }
}

#[cold]
fn failed(call: &str) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, SeqCst) {
        crate::log::stderr(&format!(
            "socktune: internal error in {call}; the call went ahead untouched (reported once)"
        ));
    }
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

pub fn note_pid() {
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
