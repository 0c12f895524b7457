//! The flusher thread: runs the jobs that must happen even when the program makes no call, such
//! as pushing held responses that no boundary released (`cork`) and writing connection records
//! (`stats`). `lifecycle` hands it those jobs at load, so this module calls nothing above it.
//!
//! It sleeps on a futex until the earliest time a job asked for, and with nothing due sleeps
//! without a deadline, to be woken by the next work: a system call in the program's thread only
//! for work that finds it so. While work keeps coming (asked for since its last look), it looks
//! again one deadline's span later instead, so that work faster than its deadlines costs at
//! most one wake-up per span and no call in the program's thread. A forked child starts its own
//! thread on first need.

use crate::guard;
use once_cell::sync::OnceCell;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

/// Work due at `now` (ms on [`now`]'s clock); returns when it next needs to run, or `None`
/// while it has nothing to do. (A job that only knows it has more work returns `now + 1`.)
pub type Job = fn(u32) -> Option<u32>;

static JOBS: OnceCell<&'static [Job]> = OnceCell::new();

pub fn set_jobs(jobs: &'static [Job]) {
    let _ = JOBS.set(jobs);
}

// SLEEP: what the thread is doing.
const STOPPED: u32 = 0;
const AWAKE: u32 = 1;
/// Asleep until `WAKE_AT`.
const UNTIL: u32 = 2;
/// Asleep with no deadline.
const IDLE: u32 = 3;
/// The thread could not be created (vsftpd's sessions run with RLIMIT_NPROC at 0): not tried
/// again in this process.
const FAILED: u32 = 4;

static SLEEP: AtomicU32 = AtomicU32::new(STOPPED);
static WAKE_AT: AtomicU32 = AtomicU32::new(0);
/// Bumped by every job's request, so that the thread can tell that work keeps coming.
static ASKED: AtomicU32 = AtomicU32::new(0);
/// How far ahead the last request's deadline was (ms).
static SPAN: AtomicU32 = AtomicU32::new(1);
/// Bumped by every wake-up, so that a wait that began after it returns at once.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Milliseconds on CLOCK_MONOTONIC (from the vDSO, no system call); only differences mean
/// anything, since it wraps.
pub fn now() -> u32 {
    crate::sys::clock_ms(libc::CLOCK_MONOTONIC)
}

/// Whether time `a` comes before `b` on the wrapping clock.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The earlier of two times, either of which may be missing.
pub fn earliest(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if before(a, b) { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A job has work due `within_ms` of `now` (the caller's [`now`]): makes sure the thread runs
/// and looks by then; false if it cannot be started. Costs a system call only when the thread
/// sleeps without a deadline (or past this one).
pub fn wake_by(now: u32, within_ms: u32) -> bool {
    let deadline = now.wrapping_add(within_ms);
    ASKED.fetch_add(1, SeqCst);
    SPAN.store(within_ms.clamp(1, 1000), SeqCst);
    match SLEEP.load(SeqCst) {
        STOPPED => {
            if SLEEP
                .compare_exchange(STOPPED, AWAKE, SeqCst, SeqCst)
                .is_ok()
                && !spawn()
            {
                SLEEP.store(FAILED, SeqCst);
                return false;
            }
        }
        FAILED => return false,
        // Looking now, perhaps past this work already: its next wait must not begin.
        AWAKE => {
            SEQ.fetch_add(1, SeqCst);
        }
        UNTIL if !before(deadline, WAKE_AT.load(SeqCst)) => {}
        _ => {
            SEQ.fetch_add(1, SeqCst);
            futex_wake();
        }
    }
    true
}

/// In a forked child: the thread did not survive the fork (and a child may be allowed one).
pub fn forget_after_fork() {
    SLEEP.store(STOPPED, SeqCst);
}

/// Starts the thread with `pthread_create` itself rather than `std::thread`, whose calls the
/// loader would bind in every process at load (see docs/architecture.md, "Start-up").
fn spawn() -> bool {
    extern "C" fn start(_: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: names the calling thread (a prctl; no file to open, no hook to pass).
        unsafe { libc::pthread_setname_np(libc::pthread_self(), c"socktune-flush".as_ptr()) };
        // Nothing may unwind out of a C thread's start; `run` contains its jobs' panics.
        let _ = std::panic::catch_unwind(run);
        std::ptr::null_mut()
    }
    // Block every signal while creating the thread so it inherits a full mask: signals meant for
    // the program must never be delivered to (and swallowed by) our thread.
    // SAFETY: sigset and thread attributes on local storage, destroyed and restored right after;
    // the thread runs `start`, which needs no argument, detached.
    unsafe {
        let mut all = std::mem::zeroed::<libc::sigset_t>();
        let mut old = std::mem::zeroed::<libc::sigset_t>();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut attr = std::mem::zeroed::<libc::pthread_attr_t>();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setstacksize(&mut attr, 64 * 1024);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut thread = 0;
        let spawned = libc::pthread_create(&mut thread, &attr, start, std::ptr::null_mut()) == 0;
        libc::pthread_attr_destroy(&mut attr);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned
    }
}

/// With nothing due, the thread sleeps without a deadline, unless work was asked for since it
/// last looked: work that comes faster than its deadlines (a short connection's response, held
/// for microseconds, hundreds of times a second) then finds it awake within one span, with no
/// futex call in the program's thread, until one span passes with none.
fn run() {
    let _busy = guard::enter();
    let mut asked_before = ASKED.load(SeqCst);
    loop {
        SLEEP.store(AWAKE, SeqCst);
        let seq = SEQ.load(SeqCst);
        let asked = ASKED.load(SeqCst);
        let now = now();
        let next = run_jobs(now)
            .or_else(|| (asked != asked_before).then(|| now.wrapping_add(SPAN.load(SeqCst))));
        asked_before = asked;
        match next {
            Some(at) => {
                WAKE_AT.store(at, SeqCst);
                SLEEP.store(UNTIL, SeqCst);
                futex_wait(seq, Some(at.wrapping_sub(now) as i32));
            }
            None => {
                SLEEP.store(IDLE, SeqCst);
                futex_wait(seq, None);
            }
        }
    }
}

/// Runs every job once; the earliest time any asks for. A job that panics is skipped for this
/// round; the thread lives on.
fn run_jobs(now: u32) -> Option<u32> {
    let jobs = JOBS.get().copied().unwrap_or_default();
    jobs.iter().fold(None, |next, job| {
        earliest(next, std::panic::catch_unwind(|| job(now)).ok().flatten())
    })
}

/// Waits on SEQ while it still reads `seq`, for `ms` at most (`None`: no limit).
fn futex_wait(seq: u32, ms: Option<i32>) {
    let timeout = ms.map(|ms| {
        let ms = i64::from(ms.max(0));
        libc::timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000) * 1_000_000,
        }
    });
    let ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: futex on a static word; the wait returns at once if it no longer reads `seq`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            SEQ.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seq,
            ptr,
        );
    }
}

fn futex_wake() {
    // SAFETY: wakes the one waiter (only the flusher ever waits).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            SEQ.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
            std::ptr::null::<libc::timespec>(),
        );
    }
}
