//! Quickack-off, read by read: the kernel leaves delayed-ACK mode by itself (after a while, or
//! when it sees an interactive exchange), so TCP_QUICKACK=0 is set again after every read that
//! returned data. The initial setting, at listen, accept and connect, is in `setup`.

use crate::fdtable::Slot;
use crate::{sys, track};
use libc::c_int;

/// After a read-family call that returned data on a connection that reapplies quickack-off.
pub fn after_read(fd: c_int, slot: Slot) {
    if let Err(e) = sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 0) {
        track::forget_if_gone(slot, e);
    }
}
