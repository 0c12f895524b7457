//! Cork per response. The first write after a boundary sets TCP_CORK (with TCP_NODELAY on, so
//! the tail never waits for Nagle) and marks the fd as holding data. The next boundary releases
//! it: a read on the fd, a wait (poll/select/epoll) by the thread that wrote, shutdown, close,
//! or the program taking cork or nodelay over. The flusher releases anything held longer than
//! `SOCKTUNE_CORK_FLUSH_MS`, for programs that write and then sleep or wait on something else.

use crate::fdtable::{self, Slot};
use crate::log::debug;
use crate::settings::config;
use crate::{flusher, guard, sys, track};
use libc::c_int;
use socktune_core::policy::{self, CloseAction, ShutdownAction};
use socktune_core::state::FdState;

/// Before a write-family call on a connection we cork: cork the response if it is a new one.
/// `gathered`: the call hands over several buffers at once.
pub fn before_write(fd: c_int, slot: Slot, state: FdState, gathered: bool) {
    if slot.is_held() {
        return;
    }
    if !policy::corks_response(gathered, state.has(FdState::APP_NODELAY)) {
        debug!("fd {fd}: a whole response in one gathered write, nodelay on: sent as it is");
        return;
    }
    match sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK, 1) {
        Ok(()) => {
            slot.mark_held(flusher::now(), guard::thread_token());
            flusher::ensure_running();
            debug!("fd {fd}: corked for a new response");
        }
        Err(e) => track::forget_if_gone(slot, e),
    }
}

/// Uncorks the fd, whose hold the caller has claimed: the response leaves now.
fn release(fd: c_int, slot: Slot, why: &str) {
    match sys::uncork(fd) {
        Ok(()) => debug!("fd {fd}: response flushed ({why})"),
        Err(e) => track::forget_if_gone(slot, e),
    }
}

/// Releases what our cork holds on the fd, if it holds anything.
fn flush(fd: c_int, slot: Slot, why: &str) {
    if slot.take_held() {
        release(fd, slot, why);
    }
}

/// Before a read-family call: the program turns to read, so the response is complete.
pub fn before_read(fd: c_int, slot: Slot) {
    flush(fd, slot, "the program reads");
}

/// The program sets TCP_CORK or TCP_NODELAY itself: our held data must never wait on its choice.
pub fn program_takes_over(fd: c_int, slot: Slot) {
    flush(fd, slot, "the program takes over cork and nodelay");
}

/// Before poll/select/epoll: the thread is about to wait, so what it corked is complete.
pub fn before_wait() {
    let me = guard::thread_token();
    fdtable::take_held_where(
        |_, by| by == me,
        |fd, slot| release(fd, slot, "the thread waits for events"),
    );
}

/// Before close() (or an implicit close by dup2/close_range). Nothing is logged on the close
/// path: the program may be closing stderr itself.
pub fn before_close(fd: c_int, slot: Slot, state: FdState) {
    if !slot.take_held() {
        return;
    }
    match policy::close_action(state, sys::unread_bytes(fd)) {
        CloseAction::PushFirst => {
            let _ = sys::uncork(fd);
        }
        // The close would send the held data with the FIN; a write-side shutdown sends the
        // same segment now, so that the connection's record counts it.
        CloseAction::RideFin if state.has(FdState::RECORDED) => sys::shutdown_write(fd),
        CloseAction::RideFin => {}
    }
}

/// Before shutdown(): a FIN rides on corked data by itself, except where
/// [`policy::shutdown_action`] says to push first or keep holding.
pub fn before_shutdown(fd: c_int, slot: Slot, how: c_int) {
    if !slot.is_held() {
        return;
    }
    match policy::shutdown_action(how == libc::SHUT_RD, sys::handshake_pending(fd)) {
        ShutdownAction::PushFirst => flush(fd, slot, "read-side shutdown"),
        ShutdownAction::RideFin => {
            if slot.take_held() {
                debug!("fd {fd}: response leaves with the FIN (shutdown)");
            }
        }
        ShutdownAction::KeepHeld => {
            debug!("fd {fd}: handshake pending; the response stays held until the next boundary")
        }
    }
}

/// The flusher's job: releases holds older than `SOCKTUNE_CORK_FLUSH_MS`; true while any fd
/// still holds data.
pub fn release_aged(now: u32) -> bool {
    let after = config().cork_flush_ms;
    fdtable::take_held_where(
        |since, _| now.wrapping_sub(since) >= after,
        |fd, _| {
            // The fd may have been closed since it was claimed: a failed uncork is harmless,
            // and the table is left alone, since the number may already name a new socket.
            if sys::uncork(fd).is_ok() {
                debug!("fd {fd}: response flushed (no boundary within {after} ms)");
            }
        },
    );
    fdtable::held_count() > 0
}
