//! The flusher thread: uncorks data that no response boundary released within
//! `SOCKTUNE_CORK_FLUSH_MS`, so a program that writes and then sleeps, waits on a condition
//! variable or reads another fd still has its data on the wire within milliseconds rather than
//! after the kernel's 200 ms cork timer.
//!
//! It also writes the connection records of `SOCKTUNE_STATS` (see `stats`).
//!
//! It ticks every millisecond while any fd holds corked data or records wait, and sleeps on a
//! futex otherwise. The only lock it takes is the records buffer's, which a forked child resets;
//! a forked child starts its own thread on first need.

use crate::log::debug;
use crate::{fdtable, runtime, stats, sys};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

const STOPPED: u32 = 0;
const TICKING: u32 = 1;
const IDLE: u32 = 2;
/// Quiet ticks before the thread goes to sleep on the futex.
const IDLE_AFTER_TICKS: u32 = 200;

static STATE: AtomicU32 = AtomicU32::new(STOPPED);
static TICK: AtomicU32 = AtomicU32::new(0);

/// The current tick, used to stamp new holds.
pub fn now() -> u32 {
    TICK.load(SeqCst)
}

/// Called after marking a hold: makes sure a flusher is running and awake.
pub fn ensure_running() {
    match STATE.load(SeqCst) {
        TICKING => {}
        IDLE => {
            if STATE
                .compare_exchange(IDLE, TICKING, SeqCst, SeqCst)
                .is_ok()
            {
                futex(libc::FUTEX_WAKE);
            }
        }
        _ => {
            if STATE
                .compare_exchange(STOPPED, TICKING, SeqCst, SeqCst)
                .is_ok()
                && !spawn()
            {
                STATE.store(STOPPED, SeqCst);
            }
        }
    }
}

/// In a forked child: the thread did not survive the fork.
pub fn forget_after_fork() {
    STATE.store(STOPPED, SeqCst);
}

fn spawn() -> bool {
    // Block every signal while creating the thread so it inherits a full mask: signals meant for
    // the program must never be delivered to (and swallowed by) our thread.
    // SAFETY: sigset manipulation on local storage; the old mask is restored right after.
    unsafe {
        let mut all = std::mem::zeroed::<libc::sigset_t>();
        let mut old = std::mem::zeroed::<libc::sigset_t>();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let spawned = std::thread::Builder::new()
            .name("socktune-flush".into())
            .stack_size(64 * 1024)
            .spawn(run)
            .is_ok();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned
    }
}

fn run() {
    let _busy = runtime::enter();
    let after = runtime::config().cork_flush_ms;
    let mut quiet = 0;
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let now = TICK.fetch_add(1, SeqCst).wrapping_add(1);
        fdtable::take_held_where(
            |since, _| now.wrapping_sub(since) >= after,
            |fd| {
                // The fd may have been closed since it was claimed: a failed uncork is harmless,
                // and the table is left alone, since the number may already name a new socket.
                if sys::uncork(fd).is_ok() {
                    debug!("fd {fd}: response flushed (no boundary within {after} ms)");
                }
            },
        );
        stats::tick(now);
        if fdtable::held_count() > 0 || stats::busy() {
            quiet = 0;
            continue;
        }
        quiet += 1;
        if quiet >= IDLE_AFTER_TICKS {
            quiet = 0;
            STATE.store(IDLE, SeqCst);
            // A writer that marked a hold (or a record) after our check sees IDLE and wakes us.
            if fdtable::held_count() == 0 && !stats::busy() {
                futex(libc::FUTEX_WAIT);
            }
            let _ = STATE.compare_exchange(IDLE, TICKING, SeqCst, SeqCst);
        }
    }
}

/// FUTEX_WAIT until STATE leaves IDLE, or FUTEX_WAKE the waiter (only the flusher ever waits).
fn futex(op: libc::c_int) {
    // SAFETY: futex on a static word; a wait returns at once if it no longer reads IDLE.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            STATE.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            IDLE,
            std::ptr::null::<libc::timespec>(),
        );
    }
}
