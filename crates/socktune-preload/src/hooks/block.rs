//! Blocking calls that are not waits on fds: condition variables, semaphores, sleeps and signal
//! waits. A thread that blocks for longer than the flusher would hold its corked responses has
//! finished writing them, so they leave now: a thread-pool server's worker that writes a
//! response and parks on its pool's condition variable is answered at once, not by the flusher.
//! A shorter block changes nothing the flusher would not, and is left alone: taking a lock, or
//! CPython's GIL (a 5 ms timed wait on a condition variable, whose clock a caller cannot see, so
//! pthread_cond_timedwait is not hooked), may come between the writes of one response.
//! A block of at least the armed deadline (`armed::DEADLINE_MS`) also releases the connections
//! this thread armed: the peer may be waiting for them.

use crate::guard::act;
use crate::settings::config;
use crate::{armed, cork, fdtable, real};
use libc::{
    c_int, c_uint, clockid_t, pthread_cond_t, pthread_mutex_t, sem_t, siginfo_t, sigset_t,
    timespec, useconds_t,
};

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;

/// Before the thread blocks for `ns` nanoseconds at most (`None`: with no bound). Inline: with
/// nothing held or armed anywhere it costs two loads.
#[inline(always)]
fn before(call: &str, ns: impl FnOnce() -> Option<i64>) {
    if fdtable::held_count() != 0 || fdtable::armed_count() != 0 {
        release(call, ns);
    }
}

#[inline(never)]
fn release(call: &str, ns: impl FnOnce() -> Option<i64>) {
    act(call, || {
        let ns = ns();
        let flush_after = i64::from(config().cork_flush_ms) * NS_PER_MS;
        if ns.is_none_or(|ns| ns >= flush_after) {
            cork::before_wait();
        }
        // A connection this thread armed would wait out the block: the armed deadline's worth.
        let armed_after = i64::from(armed::DEADLINE_MS) * NS_PER_MS;
        if fdtable::armed_count() != 0 && ns.is_none_or(|ns| ns >= armed_after) {
            armed::before_thread_blocks();
        }
    });
}

fn duration_ns(t: *const timespec) -> Option<i64> {
    // SAFETY: the program passes a timespec, or null for none.
    let t = unsafe { t.as_ref() }?;
    Some(t.tv_sec.saturating_mul(NS_PER_S).saturating_add(t.tv_nsec))
}

/// How far `deadline` on `clock` is from now.
fn until_ns(clock: clockid_t, deadline: *const timespec) -> Option<i64> {
    let deadline = duration_ns(deadline)?;
    let mut now = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec; a bad clock leaves it at zero.
    unsafe { libc::clock_gettime(clock, &mut now) };
    Some(deadline - duration_ns(&now).unwrap_or(0))
}

fn unbounded() -> Option<i64> {
    None
}

/// Replaces pthread_cond_wait(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pthread_cond_wait(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
) -> c_int {
    before("pthread_cond_wait", unbounded);
    unsafe { real::pthread_cond_wait(cond, mutex) }
}

/// Replaces pthread_cond_clockwait(3) (glibc ≥ 2.30).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pthread_cond_clockwait(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    before("pthread_cond_clockwait", || until_ns(clock, abstime));
    unsafe { real::pthread_cond_clockwait(cond, mutex, clock, abstime) }
}

/// Replaces sem_wait(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sem_wait(sem: *mut sem_t) -> c_int {
    before("sem_wait", unbounded);
    unsafe { real::sem_wait(sem) }
}

/// Replaces sem_timedwait(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sem_timedwait(sem: *mut sem_t, abstime: *const timespec) -> c_int {
    before("sem_timedwait", || until_ns(libc::CLOCK_REALTIME, abstime));
    unsafe { real::sem_timedwait(sem, abstime) }
}

/// Replaces sem_clockwait(3) (glibc ≥ 2.30), which CPython's locks use.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sem_clockwait(
    sem: *mut sem_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    before("sem_clockwait", || until_ns(clock, abstime));
    unsafe { real::sem_clockwait(sem, clock, abstime) }
}

/// Replaces nanosleep(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn nanosleep(request: *const timespec, remain: *mut timespec) -> c_int {
    before("nanosleep", || duration_ns(request));
    unsafe { real::nanosleep(request, remain) }
}

/// Replaces clock_nanosleep(2), which CPython's time.sleep uses.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    request: *const timespec,
    remain: *mut timespec,
) -> c_int {
    before("clock_nanosleep", || {
        if flags & libc::TIMER_ABSTIME != 0 {
            until_ns(clock, request)
        } else {
            duration_ns(request)
        }
    });
    unsafe { real::clock_nanosleep(clock, flags, request, remain) }
}

/// Replaces usleep(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn usleep(usec: useconds_t) -> c_int {
    before("usleep", || Some(i64::from(usec) * 1000));
    unsafe { real::usleep(usec) }
}

/// Replaces sleep(3), which sleeps inside libc without calling our nanosleep.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    before("sleep", || Some(i64::from(seconds) * NS_PER_S));
    unsafe { real::sleep(seconds) }
}

/// Replaces sigwait(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int {
    before("sigwait", unbounded);
    unsafe { real::sigwait(set, sig) }
}

/// Replaces sigwaitinfo(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigwaitinfo(set: *const sigset_t, info: *mut siginfo_t) -> c_int {
    before("sigwaitinfo", unbounded);
    unsafe { real::sigwaitinfo(set, info) }
}

/// Replaces sigtimedwait(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigtimedwait(
    set: *const sigset_t,
    info: *mut siginfo_t,
    timeout: *const timespec,
) -> c_int {
    before("sigtimedwait", || duration_ns(timeout));
    unsafe { real::sigtimedwait(set, info, timeout) }
}
