//! The flusher thread: a millisecond clock for the jobs that must run even when the program
//! makes no call, such as releasing corked data that no response boundary released (`cork`) and
//! writing connection records (`stats`). `lifecycle` hands it those jobs at load, so this module
//! calls nothing above it.
//!
//! It ticks every millisecond while any job has work, and sleeps on a futex otherwise. A forked
//! child starts its own thread on first need.

use crate::guard;
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

/// Work for one tick, given the tick's number; returns true while it has more to do.
pub type Job = fn(u32) -> bool;

static JOBS: OnceCell<&'static [Job]> = OnceCell::new();

pub fn set_jobs(jobs: &'static [Job]) {
    let _ = JOBS.set(jobs);
}

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

/// Called when a job has new work: makes sure the flusher is running and awake.
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
    let _busy = guard::enter();
    let mut quiet = 0;
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let now = TICK.fetch_add(1, SeqCst).wrapping_add(1);
        if run_jobs(now) {
            quiet = 0;
            continue;
        }
        quiet += 1;
        if quiet >= IDLE_AFTER_TICKS {
            quiet = 0;
            STATE.store(IDLE, SeqCst);
            // A job given work after our check sees IDLE and wakes us; this last run catches
            // work given before the store.
            if !run_jobs(now) {
                futex(libc::FUTEX_WAIT);
            }
            let _ = STATE.compare_exchange(IDLE, TICKING, SeqCst, SeqCst);
        }
    }
}

/// Runs every job once; true if any has more to do. A job that panics is skipped for this
/// tick; the thread lives on.
fn run_jobs(now: u32) -> bool {
    let jobs = JOBS.get().copied().unwrap_or_default();
    jobs.iter().fold(false, |busy, job| {
        std::panic::catch_unwind(|| job(now)).unwrap_or(false) | busy
    })
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
