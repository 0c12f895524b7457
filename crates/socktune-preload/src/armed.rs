//! Armed client connections (`FdState::ARMED`): a connection that waits for the program's first
//! write to complete it. Under client Fast Open with a cached cookie, connect() sends nothing
//! and the SYN leaves with the first write; under quickack-off, the handshake's last ACK is
//! delayed until the first write.
//!
//! An armed connection must look like a plain connect() to the program and its peer, so what
//! waits leaves ("the connection is released") before anything else the program does with it:
//! a read, a wait for input, close, shutdown, sendfile or splice, a TCP_INFO query; and when the
//! thread that armed it waits on other fds, accepts, blocks or sleeps. A deadline of
//! [`DEADLINE_MS`] (the flusher) is the backstop. getpeername answers the address given to
//! connect(), and a non-blocking connect() reports EINPROGRESS, without sending the SYN early.
//!
//! The same module ends a quickack-off connection's pending ACK (`FdState::ACK_PENDING`, see
//! `quickack`) before a read that would wait, and notes the first write of a server that speaks
//! first on a deferred listener (`speaks_first`).

use crate::fdtable::{self, Slot};
use crate::interest::Interest;
use crate::log::debug;
use crate::{flusher, guard, quickack, speaks_first, sys};
use libc::{c_int, sockaddr, socklen_t};
use socktune_core::policy::{self, ArmedWait};
use socktune_core::state::FdState;
use std::cell::Cell;

thread_local! {
    /// This thread armed a connection that may still be armed: its blocking calls release it.
    static ARMED_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Nothing stays armed longer than this without a write: a program that connects and then works
/// or blocks in a call we do not see gets its connection completed anyway.
pub const DEADLINE_MS: u32 = 5;
/// How long close or shutdown waits for the handshake of a connection the program believes is
/// connected: a plain blocking connect() would have waited for it before returning.
const HANDSHAKE_WAIT_MS: c_int = 2000;

const ARMED_FLAGS: u64 = FdState::ARMED | FdState::ARMED_WAITED | FdState::ARMED_IN_PROGRESS;

/// What connect() planned, for after the real call.
pub struct Connecting {
    pub slot: Slot,
    pub fastopen: bool,
    pub quickack_off: bool,
}

/// After the real connect(), which returned `result` with `errno`: arm the connection if its
/// SYN or last handshake ACK now waits for the first write. Returns the errno to report with -1
/// instead of the kernel's 0: a non-blocking Fast Open connect reports EINPROGRESS, as a plain
/// one would, so that an event loop keeps its order of callbacks.
pub fn after_connect(fd: c_int, c: Connecting, result: c_int, errno: c_int) -> Option<c_int> {
    let connecting = result == 0 || errno == libc::EINPROGRESS;
    if !connecting || !(c.fastopen || c.quickack_off) {
        return None;
    }
    let syn_waits = c.fastopen && result == 0 && sys::syn_deferred(fd);
    if syn_waits {
        // Cookie cached: nothing sent yet; the first write carries the SYN.
        let in_progress = policy::reports_in_progress(sys::nonblocking(fd), result, syn_waits);
        let flags = if in_progress {
            FdState::ARMED | FdState::ARMED_IN_PROGRESS
        } else {
            FdState::ARMED
        };
        arm(fd, c.slot, flags);
        debug!("fd {fd}: Fast Open armed, SYN waits for the first write");
        return in_progress.then_some(libc::EINPROGRESS);
    }
    if c.quickack_off {
        arm(fd, c.slot, FdState::ARMED);
    }
    None
}

fn arm(fd: c_int, slot: Slot, flags: u64) {
    let _ = ARMED_HERE.try_with(|h| h.set(true));
    let now = flusher::now();
    slot.stamp_armed(now, guard::thread_token());
    slot.set(flags);
    if !flusher::wake_by(now, DEADLINE_MS) {
        // Nothing could keep the deadline: what is armed leaves now.
        kick(fd, slot, slot.load());
    }
}

/// The program writes: what waited for its first write (or for its response) leaves with it.
pub fn before_write(fd: c_int, slot: Slot, state: FdState) {
    slot.unset(ARMED_FLAGS | FdState::ACK_PENDING | FdState::DEFER_WATCH);
    if state.has(FdState::ACK_PENDING) {
        quickack::answered(fd);
    }
    if state.has(FdState::DEFER_WATCH) && speaks_first::server_wrote_first(fd, state) {
        slot.set(FdState::DEFER_HEALED);
    }
}

/// Before a read-family call.
pub fn before_read(fd: c_int, slot: Slot, state: FdState) {
    if state.has(FdState::ARMED) {
        kick(fd, slot, state);
    }
    if state.has(FdState::DEFER_WATCH) {
        slot.unset(FdState::DEFER_WATCH); // the client spoke first: defer-accept is right here
    }
    if policy::acks_before_read(state, || sys::readable_now(fd), || !sys::nonblocking(fd)) {
        quickack::ack_now(
            fd,
            slot,
            "a read that waits, with nothing written since the last",
        );
    }
}

/// Before close (or an implicit close by dup2/close_range) or shutdown: the peer must see the
/// connection, and its end, as it would after a plain connect(). Nothing is logged on this path:
/// the program may be closing stderr.
pub fn before_end(fd: c_int, slot: Slot, state: FdState) {
    if !state.has(FdState::ARMED) {
        return;
    }
    let syn_sent = kick(fd, slot, state);
    if syn_sent && policy::armed_end_waits_for_handshake(state) {
        sys::wait_connected(fd, HANDSHAKE_WAIT_MS);
    }
}

/// Before sendfile/splice to the fd, or a TCP_INFO query: only write() and its kin carry the
/// SYN's data, and TCP_INFO should show a connection under way.
pub fn before_other_call(fd: c_int, slot: Slot, state: FdState) {
    if state.has(FdState::ARMED) {
        kick(fd, slot, state);
    }
}

/// Sends what waits for the first write now, and disarms. Returns true if it sent a Fast Open
/// SYN.
fn kick(fd: c_int, slot: Slot, state: FdState) -> bool {
    match sys::tcp_state(fd) {
        Some(sys::TCP_SYN_SENT) => {
            // A Fast Open SYN waiting for data goes now; on a plain connecting socket the
            // zero-length send would do nothing.
            let fastopen = state.has(FdState::APPLIED_FASTOPEN_CONNECT);
            if fastopen {
                sys::kick_syn(fd);
            }
            if state.reapplies_quickack() {
                // Still armed: the handshake's last ACK has yet to be sent.
                slot.unset(FdState::ARMED_IN_PROGRESS | FdState::ARMED_WAITED);
            } else {
                slot.unset(ARMED_FLAGS);
            }
            fastopen
        }
        Some(sys::TCP_ESTABLISHED) if state.reapplies_quickack() => {
            let _ = sys::ack_now(fd);
            slot.unset(ARMED_FLAGS);
            false
        }
        _ => {
            slot.unset(ARMED_FLAGS);
            false
        }
    }
}

/// getpeername() failed with ENOTCONN: on an armed Fast Open connection, answer the address
/// given to connect(), as the kernel will once the SYN is out, without sending it. True if
/// `addr` and `len` now hold it, as getpeername would have written them.
///
/// # Safety
/// `addr` and `len` are what the program passed to getpeername.
pub unsafe fn peer_name(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> bool {
    let armed = fdtable::lookup(fd).is_some_and(|s| s.load().has(FdState::ARMED));
    if !armed || addr.is_null() || len.is_null() || !sys::syn_deferred(fd) {
        return false; // a SYN on its way gets ENOTCONN, as from a plain connect in progress
    }
    let Some((ss, got)) = sys::connecting_peer(fd) else {
        return false;
    };
    // SAFETY: the program gave `*len` writable bytes at `addr`; like getpeername, the address
    // is truncated to them and `*len` says its full size.
    unsafe {
        let room = (*len as usize).min(got as usize);
        std::ptr::copy_nonoverlapping(
            (&ss as *const libc::sockaddr_storage).cast::<u8>(),
            addr.cast::<u8>(),
            room,
        );
        *len = got;
    }
    debug!("fd {fd}: getpeername answered for a Fast Open SYN that waits for data");
    true
}

/// Before poll/select/epoll, with connections armed: none may be waited on for input that
/// cannot come, and the thread that armed one must not wait elsewhere while its peer waits.
pub fn before_wait(interest: &impl Interest) {
    let me = guard::thread_token();
    fdtable::for_each_tracked(|fd, slot, state| {
        if !state.has(FdState::ARMED) {
            return;
        }
        let armed_here = slot.armed_stamp().1 == me;
        match policy::armed_wait(state, interest.of(fd, state), armed_here) {
            ArmedWait::Kick => {
                kick(fd, slot, state);
            }
            ArmedWait::LetThrough => {
                // Seen writable: the program now believes it connected.
                slot.update(|s| {
                    s.with(FdState::ARMED_WAITED)
                        .without(FdState::ARMED_IN_PROGRESS)
                });
            }
            ArmedWait::Leave => {}
        }
    });
}

/// This thread may have armed a connection still armed (one thread-local read). Out of line:
/// inlined, the hooks computed its thread-local's address (`__tls_get_addr`) ahead of the
/// armed count's check that guards it, on every read and write of a connection.
#[inline(never)]
pub fn armed_here() -> bool {
    ARMED_HERE.try_with(Cell::get).unwrap_or(false)
}

/// Before this thread accepts, or blocks in a call that waits on no fd (a condition variable, a
/// semaphore, a sleep, a signal): what it armed leaves now.
pub fn before_thread_blocks() {
    release_mine(-1);
}

/// Before a write of connection `fd` by a thread that armed another one: that one's peer may
/// wait for it before it answers what this write asks (the passive-FTP client connects the data
/// connection, then sends RETR on the control one, and the server accepts before it replies).
/// `fd` itself stays armed: its write carries the data.
pub fn before_write_elsewhere(fd: c_int) {
    release_mine(fd);
}

/// Releases what this thread armed, but `except`.
fn release_mine(except: c_int) {
    if !armed_here() {
        return;
    }
    let _ = ARMED_HERE.try_with(|h| h.set(false));
    let me = guard::thread_token();
    release_where(|_, by| by == me, except);
}

/// Before a read of `fd` by a thread that armed a connection: a blocking read may wait for a
/// peer that waits for that connection (the passive-FTP client reads its control connection).
/// A non-blocking read does not wait; the wait after it is where the release comes.
pub fn before_read_elsewhere(fd: c_int) {
    if armed_here() && !sys::nonblocking(fd) {
        before_thread_blocks();
    }
}

/// The flusher's job: releases what stayed armed [`DEADLINE_MS`] with no write; while any
/// connection is still armed, asks to look again in a millisecond.
pub fn release_aged(now: u32) -> Option<u32> {
    if fdtable::armed_count() == 0 {
        return None;
    }
    release_where(|since, _| now.wrapping_sub(since) >= DEADLINE_MS, -1);
    (fdtable::armed_count() > 0).then_some(now.wrapping_add(1))
}

/// Kicks every armed connection whose (tick, thread) stamp satisfies `pick`. A kick checks the
/// socket's TCP state first, so an fd closed and reused meanwhile comes to no harm.
fn release_where(pick: impl Fn(u32, u32) -> bool, except: c_int) {
    fdtable::for_each_tracked(|fd, slot, state| {
        if state.has(FdState::ARMED) {
            let (since, by) = slot.armed_stamp();
            if fd == except {
                if by == guard::thread_token() {
                    let _ = ARMED_HERE.try_with(|h| h.set(true));
                }
            } else if pick(since, by) {
                kick(fd, slot, state);
                if slot.load().has(FdState::ARMED) && by == guard::thread_token() {
                    let _ = ARMED_HERE.try_with(|h| h.set(true)); // its ACK is still to come
                }
            }
        }
    });
}

/// epoll_ctl ADD/MOD of an armed fd: remember that epoll waits on it, and whether for input
/// only.
pub fn epoll_registered(fd: c_int, events: u32) {
    let Some(slot) = fdtable::lookup(fd).filter(|s| s.load().has(FdState::ARMED)) else {
        return;
    };
    let read_only = events & libc::EPOLLIN as u32 != 0 && events & libc::EPOLLOUT as u32 == 0;
    slot.update(|s| {
        let s = s.with(FdState::EPOLL_REGISTERED);
        if read_only {
            s.with(FdState::EPOLL_READ_ONLY)
        } else {
            s.without(FdState::EPOLL_READ_ONLY)
        }
    });
}
