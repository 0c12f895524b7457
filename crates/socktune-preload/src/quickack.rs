//! Quickack-off, read by read: the kernel leaves delayed-ACK mode by itself (after a while, or
//! when it sees an interactive exchange), so TCP_QUICKACK=0 is set again after every read that
//! returned data. The initial setting, at listen, accept and connect, is in `setup`.
//!
//! The ACK so delayed should ride on the program's response. It must never make the peer wait:
//! a peer whose Nagle holds the rest of what it sends (a header, then a body) waits for that
//! ACK. So the read leaves the connection `ACK_PENDING` until the program writes; if it reads
//! again and that read would wait (`armed::before_read`), or its thread waits for input on the
//! connection (`before_wait`), the ACK leaves at once. A read that brings the head of an HTTP
//! message whose rest is still coming sends it before the program even turns to read again.

use crate::fdtable::{self, Slot};
use crate::interest::Interest;
use crate::log::debug;
use crate::{sys, track};
use libc::c_int;
use socktune_core::state::FdState;
use std::cell::Cell;

/// The connections this thread read last and has not answered: a few, since an event loop
/// reads several before it writes; the oldest is acknowledged when a new one needs room.
const PENDING_LEN: usize = 4;

thread_local! {
    static PENDING: [Cell<c_int>; PENDING_LEN] = const { [const { Cell::new(-1) }; PENDING_LEN] };
}

/// After a read-family call that returned data on a connection that reapplies quickack-off.
/// `continues`: the read began a message whose rest is still coming; its peer may hold that rest
/// until this ACK comes (Nagle, a header and then a body), so it leaves now, and delayed-ACK mode
/// holds the next one.
pub fn after_read(fd: c_int, slot: Slot, continues: bool) {
    let set = if continues {
        sys::ack_now(fd)
    } else {
        sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 0)
    };
    if let Err(e) = set {
        track::forget_if_gone(slot, e);
        return;
    }
    if continues {
        // Everything read so far is acknowledged: a wait for the rest has no ACK to send first.
        slot.unset(FdState::ACK_PENDING);
        answered(fd);
        return;
    }
    slot.set(FdState::ACK_PENDING);
    let _ = PENDING.try_with(|p| {
        if p.iter().any(|c| c.get() == fd) {
            return;
        }
        let evicted = p[PENDING_LEN - 1].get();
        for i in (1..PENDING_LEN).rev() {
            p[i].set(p[i - 1].get());
        }
        p[0].set(fd);
        if let Some(old) = fdtable::lookup(evicted) {
            ack_now(
                evicted,
                old,
                "one more connection read before any was answered",
            );
        }
    });
}

/// Sends the connection's pending ACK now, if it still has one.
pub fn ack_now(fd: c_int, slot: Slot, why: &str) {
    let (before, _) = slot.update(|s| s.without(FdState::ACK_PENDING));
    if !before.has(FdState::ACK_PENDING) {
        return;
    }
    match sys::ack_now(fd) {
        Ok(()) => debug!("fd {fd}: delayed ACK sent ({why})"),
        Err(e) => track::forget_if_gone(slot, e),
    }
}

/// Nothing to watch on `fd`: the program wrote (its ACK rides on the write), or the ACK left.
pub fn answered(fd: c_int) {
    let _ = PENDING.try_with(|p| {
        for c in p {
            if c.get() == fd {
                c.set(-1);
            }
        }
    });
}

/// This thread read a connection it has not answered yet: a cheap check before waits.
#[inline]
pub fn pending_here() -> bool {
    PENDING
        .try_with(|p| p.iter().any(|c| c.get() >= 0))
        .unwrap_or(false)
}

/// Before this thread waits for events: the connections it read and has not answered, if the
/// wait is for their input, get their ACK now.
pub fn before_wait(interest: &impl Interest) {
    let _ = PENDING.try_with(|p| {
        for c in p {
            let fd = c.replace(-1);
            let Some(slot) = fdtable::lookup(fd) else {
                continue;
            };
            let state = slot.load();
            if !state.has(FdState::ACK_PENDING) {
                continue;
            }
            if interest.any_input() || matches!(interest.of(fd, state), Some((true, _))) {
                ack_now(fd, slot, "the program waits for more input");
            } else {
                c.set(fd); // still ours to watch
            }
        }
        // Keep the watched ones first, so that `pending_here` sees them.
        let mut kept: [c_int; PENDING_LEN] = std::array::from_fn(|i| p[i].get());
        kept.sort_by_key(|&fd| fd < 0);
        for (c, fd) in p.iter().zip(kept) {
            c.set(fd);
        }
    });
}
