//! Defer-accept heals itself. A listener we set TCP_DEFER_ACCEPT on hands a connection over only
//! once the client has sent data; a server that speaks first (SMTP, FTP, POP3, MySQL greet)
//! waits the whole defer period for each. An accepted connection written before it was ever
//! read shows such a server: defer-accept goes off its listener, so only that first connection
//! pays. Client-speaks-first listeners keep it.

use crate::fdtable;
use crate::log::info;
use crate::sys;
use libc::c_int;
use socktune_core::state::{FdState, Kind};

/// The program wrote first on `fd`, accepted from a listener we deferred (on `state.port()`).
/// True if this call turned defer-accept off.
pub fn server_wrote_first(fd: c_int, state: FdState) -> bool {
    let port = state.port();
    let mut healed = false;
    fdtable::for_each_tracked(|listener, slot, ls| {
        let ours = ls.kind() == Kind::Listener
            && ls.port() == port
            && ls.has(FdState::APPLIED_DEFER_ACCEPT);
        if !ours {
            return;
        }
        let (before, _) = slot.update(|s| s.without(FdState::APPLIED_DEFER_ACCEPT));
        if !before.has(FdState::APPLIED_DEFER_ACCEPT) {
            return; // another thread healed it
        }
        if sys::get_int(listener, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) == Some(0) {
            return; // another process sharing the listener healed it
        }
        match sys::set_int(listener, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, 0) {
            Ok(()) => {
                healed = true;
                info!(
                    "port {port}: the server speaks first (fd {fd} written before it was read): \
                 TCP_DEFER_ACCEPT off on its listener, fd {listener}"
                )
            }
            Err(e) => info!("port {port}: TCP_DEFER_ACCEPT off failed (errno {e})"),
        }
    });
    healed
}
