//! Defer-accept heals itself. A listener we set TCP_DEFER_ACCEPT on hands a connection over only
//! once the client has sent data; a server that speaks first (SMTP, FTP, POP3, MySQL greet)
//! waits the whole defer period for each. An accepted connection written before it was ever
//! read shows such a server: defer-accept goes off its listener, so only that first connection
//! pays. Client-speaks-first listeners keep it.

use crate::fdtable::{self, Slot};
use crate::log::info;
use crate::{sys, tree};
use libc::c_int;
use socktune_core::state::{FdState, Kind};

/// The program wrote first on `fd`, accepted from a listener we deferred (on `state.port()`).
/// True if this call turned defer-accept off. The rest of the process tree hears of it too: a
/// forking server's child may have closed its copy of the listener.
pub fn server_wrote_first(fd: c_int, state: FdState) -> bool {
    let port = state.port();
    tree::note_speaks_first(port);
    let mut healed = false;
    fdtable::for_each_tracked(|listener, slot, ls| {
        if ls.kind() == Kind::Listener && ls.port() == port {
            healed |= heal(listener, slot, port, fd);
        }
    });
    healed
}

/// A deferred listener handed over a connection: if another process of the tree found that
/// its server speaks first, defer-accept goes off here too. True if this call turned it off: the
/// connection just accepted paid for it.
pub fn after_handing_over(listener: c_int, slot: Slot, state: FdState) -> bool {
    state.has(FdState::APPLIED_DEFER_ACCEPT)
        && tree::speaks_first(state.port())
        && heal(listener, slot, state.port(), -1)
}

/// Turns defer-accept off `listener` (`why`: the connection that showed it, -1 if another
/// process's); true if this call did.
fn heal(listener: c_int, slot: Slot, port: u16, why: c_int) -> bool {
    let (before, _) = slot.update(|s| s.without(FdState::APPLIED_DEFER_ACCEPT));
    if !before.has(FdState::APPLIED_DEFER_ACCEPT) {
        return false; // not deferred, or another thread healed it
    }
    if sys::get_int(listener, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) == Some(0) {
        return false; // another process sharing the listener healed it
    }
    match sys::set_int(listener, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, 0) {
        Ok(()) => {
            info!(
                "port {port}: the server speaks first (a connection written before it was read, \
                 fd {why}): TCP_DEFER_ACCEPT off on its listener, fd {listener}"
            );
            true
        }
        Err(e) => {
            info!("port {port}: TCP_DEFER_ACCEPT off failed (errno {e})");
            false
        }
    }
}
