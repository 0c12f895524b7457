//! A page shared by this process and every process forked from it: a shared anonymous mapping,
//! made at load, survives fork. Prefork workers whose stats path became unwritable after a
//! privilege drop warn once between them, not once each; and a forking server's child that finds
//! the server speaks first tells its parent, which owns the listener (vsftpd's children close
//! theirs).

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering::SeqCst};

/// Flags, then ports (port + 1; 0: free) whose listeners should lose defer-accept.
struct Page {
    flags: AtomicU32,
    healed_ports: [AtomicU32; 16],
}

static PAGE: AtomicPtr<Page> = AtomicPtr::new(std::ptr::null_mut());

pub const STATS_WARNED: u32 = 1;
pub const PROM_WARNED: u32 = 2;

/// Maps the page, once, before any fork.
pub fn map() {
    if !PAGE.load(SeqCst).is_null() {
        return;
    }
    // All-zero bytes are a valid Page.
    if let Some(map) = crate::sys::map_zeroed(size_of::<Page>(), true) {
        PAGE.store(map.cast(), SeqCst);
    }
}

fn page() -> Option<&'static Page> {
    // SAFETY: a non-null pointer is the live shared mapping made by `map`, never unmapped.
    unsafe { PAGE.load(SeqCst).as_ref() }
}

/// Sets `flag` for the tree; true if this call set it first (or if there is no page).
pub fn first_to_set(flag: u32) -> bool {
    page().is_none_or(|p| p.flags.fetch_or(flag, SeqCst) & flag == 0)
}

/// Some process of the tree found that the server on `port` speaks first.
pub fn note_speaks_first(port: u16) {
    let Some(p) = page() else { return };
    let word = u32::from(port) + 1;
    for slot in &p.healed_ports {
        match slot.compare_exchange(0, word, SeqCst, SeqCst) {
            Ok(_) => return,
            Err(seen) if seen == word => return,
            Err(_) => {}
        }
    }
}

/// Whether some process of the tree found that the server on `port` speaks first.
pub fn speaks_first(port: u16) -> bool {
    let word = u32::from(port) + 1;
    page().is_some_and(|p| p.healed_ports.iter().any(|s| s.load(SeqCst) == word))
}

/// Whether some process of the tree found a server that speaks first, on any port.
pub fn speaks_first_seen() -> bool {
    page().is_some_and(|p| p.healed_ports.iter().any(|s| s.load(SeqCst) != 0))
}
