//! setsockopt: the program's own TCP choices are respected, never fought, but for the settings
//! `SOCKTUNE_FORCE` names.

use crate::fdtable;
use crate::guard::act;
use crate::{armed, own_options, real};
use libc::{c_int, c_void, socklen_t};
use std::mem::size_of;

/// Replaces setsockopt(2): notes which options the program sets itself before applying them;
/// a forced one socktune set already succeeds without reaching the kernel.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    if let Some(slot) = fdtable::lookup(fd).filter(|s| s.load().is_tcp()) {
        let holds = |size: usize| !value.is_null() && len as usize >= size;
        // SAFETY: the program passes `len` readable bytes at `value`.
        let int =
            holds(size_of::<c_int>()).then(|| unsafe { value.cast::<c_int>().read_unaligned() });
        // SAFETY: as above.
        let linger = holds(size_of::<libc::linger>())
            .then(|| unsafe { value.cast::<libc::linger>().read_unaligned() }.l_onoff != 0);
        let kept = !own_options::sets_again(slot, level, name, int)
            && act("setsockopt", || {
                own_options::program_sets(fd, slot, level, name, int, linger)
            });
        if kept && holds(1) {
            return 0;
        }
    }
    unsafe { real::setsockopt(fd, level, name, value, len) }
}

/// Replaces getsockopt(2): TCP_INFO on an armed connection sends what it holds first, so that
/// the state it shows is a connection under way. SO_ERROR is answered as it stands (0: nothing
/// sent can have failed yet), so an event loop's check after connect keeps its request in the
/// SYN.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    if level == libc::IPPROTO_TCP && name == libc::TCP_INFO && fdtable::armed_count() != 0 {
        if let Some(slot) = fdtable::lookup(fd) {
            act("getsockopt", || {
                armed::before_other_call(fd, slot, slot.load())
            });
        }
    }
    unsafe { real::getsockopt(fd, level, name, value, len) }
}
