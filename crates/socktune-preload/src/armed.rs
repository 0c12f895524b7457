//! Armed client connections (`FdState::ARMED`): a connection that waits for the program's first
//! write to complete it. Under client Fast Open with a cached cookie, connect() sends nothing
//! and the SYN leaves with the first write; under quickack-off, the handshake's last ACK is
//! delayed until the first write. If the program reads, or waits for input only, before it
//! writes (a server that speaks first), what waits must leave now, or nothing ever arrives.

use crate::fdtable::{self, Slot};
use crate::log::debug;
use crate::sys;
use libc::c_int;
use socktune_core::policy::{self, ArmedWait};
use socktune_core::state::FdState;

/// What connect() planned, for after the real call.
pub struct Connecting {
    pub slot: Slot,
    pub fastopen: bool,
    pub quickack_off: bool,
}

/// After the real connect(), which returned `result` with `errno`: arm the connection if its
/// SYN or last handshake ACK now waits for the first write.
pub fn after_connect(fd: c_int, c: Connecting, result: c_int, errno: c_int) {
    let connecting = result == 0 || errno == libc::EINPROGRESS;
    if !connecting || !(c.fastopen || c.quickack_off) {
        return;
    }
    if c.fastopen && result == 0 && sys::tcp_state(fd) == Some(sys::TCP_SYN_SENT) {
        // Cookie cached: nothing sent yet; the first write carries the SYN.
        c.slot.set(FdState::ARMED);
        debug!("fd {fd}: Fast Open armed, SYN waits for the first write");
    } else if c.quickack_off {
        c.slot.set(FdState::ARMED);
    }
}

/// The program's first write completes the connection by itself.
pub fn before_write(slot: Slot) {
    slot.unset(FdState::ARMED | FdState::ARMED_WAITED);
}

/// Before a read-family call on an armed connection.
pub fn before_read(fd: c_int, slot: Slot, state: FdState) {
    kick(fd, slot, state);
}

/// Sends what waits for the first write now, and disarms.
fn kick(fd: c_int, slot: Slot, state: FdState) {
    match sys::tcp_state(fd) {
        Some(sys::TCP_SYN_SENT) => {
            // A Fast Open SYN waiting for data goes now; on a plain connecting socket the
            // zero-length send does nothing.
            sys::kick_syn(fd);
            debug!("fd {fd}: SYN pushed before a read (server speaks first?)");
            if state.reapplies_quickack() {
                return; // still armed: the handshake's last ACK has yet to be sent
            }
        }
        Some(sys::TCP_ESTABLISHED) if state.reapplies_quickack() => {
            // Quickack on sends the delayed handshake ACK; off again keeps delayed ACKs after.
            let _ = sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1);
            let _ = sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 0);
            debug!("fd {fd}: handshake ACK sent before a read (server speaks first?)");
        }
        _ => {}
    }
    slot.unset(FdState::ARMED | FdState::ARMED_WAITED);
}

/// How a wait call describes its interest in an fd: (read, write), or `None` if not waited on.
pub trait Interest {
    fn of(&self, fd: c_int, state: FdState) -> Option<(bool, bool)>;
}

/// epoll: what epoll_ctl told us (see [`epoll_registered`]); unknown means read and write.
pub struct EpollInterest;

impl Interest for EpollInterest {
    fn of(&self, _fd: c_int, state: FdState) -> Option<(bool, bool)> {
        Some((true, !state.has(FdState::EPOLL_READ_ONLY)))
    }
}

/// Before poll/select/epoll, with connections armed: none may be waited on for input that
/// cannot come.
pub fn before_wait(interest: &impl Interest) {
    fdtable::for_each_tracked(|fd, slot, state| {
        if !state.has(FdState::ARMED) {
            return;
        }
        if let Some((read, write)) = interest.of(fd, state) {
            match policy::armed_wait(state, read, write) {
                ArmedWait::Kick => kick(fd, slot, state),
                ArmedWait::LetThrough => {
                    slot.set(FdState::ARMED_WAITED);
                }
            }
        }
    });
}

/// epoll_ctl ADD/MOD of an armed fd: remember whether it waits for input only.
pub fn epoll_registered(fd: c_int, events: u32) {
    let Some(slot) = fdtable::lookup(fd).filter(|s| s.load().has(FdState::ARMED)) else {
        return;
    };
    let read_only = events & libc::EPOLLIN as u32 != 0 && events & libc::EPOLLOUT as u32 == 0;
    if read_only {
        slot.set(FdState::EPOLL_READ_ONLY);
    } else {
        slot.unset(FdState::EPOLL_READ_ONLY);
    }
}
