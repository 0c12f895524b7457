//! Per-fd state: a table indexed by fd, made of atomics, that grows without locks.
//!
//! A fixed directory points to chunks of 1024 slots. A chunk is mmap'd the first time an fd in
//! its range is registered (no malloc, so no re-entrancy) and is never freed, so readers never
//! wait and never see freed memory. An fd with no chunk, or beyond the directory, reads as
//! `Kind::Empty` and is passed through: a non-socket fd costs one lookup.
//!
//! Besides its [`Meta`] word a slot records corked ("held") data: when it was corked, by which
//! thread, and one bit per fd in the chunk's bitmap so that flushers scan words, not slots.

use crate::policy::Meta;
use crate::record::Tally;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};

const CHUNK_BITS: usize = 10;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const WORDS: usize = CHUNK_LEN / 64;
/// 16384 chunks cover fds up to 16M, above any realistic RLIMIT_NOFILE.
const DIR_LEN: usize = 1 << 14;
pub const CAPACITY: usize = DIR_LEN * CHUNK_LEN;

#[derive(Default)]
struct Slot {
    meta: AtomicU32,
    held_since: AtomicU32,
    held_by: AtomicU32,
    /// Recording state, for `SOCKTUNE_STATS` (see [`Tally`]).
    tally: AtomicU32,
}

struct Chunk {
    slots: [Slot; CHUNK_LEN],
    held: [AtomicU64; WORDS],
}

static DIR: [AtomicPtr<Chunk>; DIR_LEN] = [const { AtomicPtr::new(null_mut()) }; DIR_LEN];
/// One past the highest chunk index ever allocated: scans stop there.
static TOP: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicUsize = AtomicUsize::new(0);

fn index(fd: i32) -> Option<(usize, usize)> {
    let fd = usize::try_from(fd).ok().filter(|&f| f < CAPACITY)?;
    Some((fd >> CHUNK_BITS, fd & (CHUNK_LEN - 1)))
}

fn chunk(dir: usize) -> Option<&'static Chunk> {
    // SAFETY: a non-null pointer is a zero-initialised, never-freed Chunk (see `chunk_or_alloc`).
    unsafe { DIR[dir].load(SeqCst).as_ref() }
}

fn chunk_or_alloc(dir: usize) -> Option<&'static Chunk> {
    if let Some(c) = chunk(dir) {
        return Some(c);
    }
    let size = std::mem::size_of::<Chunk>();
    // SAFETY: anonymous private mapping; all-zero bytes are a valid Chunk (atomics of 0).
    let fresh = unsafe {
        libc::mmap(
            null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if fresh == libc::MAP_FAILED {
        return None;
    }
    match DIR[dir].compare_exchange(null_mut(), fresh.cast(), SeqCst, SeqCst) {
        Ok(_) => {
            TOP.fetch_max(dir + 1, SeqCst);
        }
        Err(_) => {
            // Another thread won the race; its chunk stands.
            // SAFETY: `fresh` is our own unpublished mapping of `size` bytes.
            unsafe { libc::munmap(fresh, size) };
        }
    }
    chunk(dir)
}

fn slot(fd: i32) -> Option<(&'static Chunk, usize)> {
    let (d, i) = index(fd)?;
    Some((chunk(d)?, i))
}

fn armed_delta(old: Meta, new: Meta) {
    match (old.has(Meta::ARMED), new.has(Meta::ARMED)) {
        (false, true) => {
            ARMED.fetch_add(1, SeqCst);
        }
        (true, false) => {
            ARMED.fetch_sub(1, SeqCst);
        }
        _ => {}
    }
}

/// The fd's state; `Kind::Empty` if we know nothing of it.
#[inline]
pub fn get(fd: i32) -> Meta {
    match slot(fd) {
        Some((c, i)) => Meta(c.slots[i].meta.load(SeqCst)),
        None => Meta::default(),
    }
}

/// Registers a new state for `fd`, replacing whatever a previous fd of that number left.
pub fn set(fd: i32, meta: Meta) {
    let Some((d, i)) = index(fd) else { return };
    let Some(c) = chunk_or_alloc(d) else { return };
    take_held_in(c, i);
    c.slots[i].tally.store(0, SeqCst);
    let old = Meta(c.slots[i].meta.swap(meta.0, SeqCst));
    armed_delta(old, meta);
}

/// Forgets `fd` (closed, or found not to be a socket). Returns its state before.
pub fn clear(fd: i32) -> Meta {
    let Some((c, i)) = slot(fd) else {
        return Meta::default();
    };
    take_held_in(c, i);
    c.slots[i].tally.store(0, SeqCst);
    let old = Meta(c.slots[i].meta.swap(0, SeqCst));
    armed_delta(old, Meta::default());
    old
}

pub fn tally(fd: i32) -> Tally {
    slot(fd).map_or(Tally::default(), |(c, i)| {
        Tally(c.slots[i].tally.load(SeqCst))
    })
}

/// Applies `f` atomically to a tracked fd's recording state, unless it would not change it.
pub fn update_tally(fd: i32, f: impl Fn(Tally) -> Tally) {
    let Some((c, i)) = slot(fd) else { return };
    let word = &c.slots[i].tally;
    let _ = word.fetch_update(SeqCst, SeqCst, |t| {
        let new = f(Tally(t)).0;
        (new != t).then_some(new)
    });
}

/// Applies `f` atomically to a tracked fd's state; returns the new state.
pub fn update(fd: i32, f: impl Fn(Meta) -> Meta) -> Meta {
    let Some((c, i)) = slot(fd) else {
        return Meta::default();
    };
    let mut cur = c.slots[i].meta.load(SeqCst);
    loop {
        let new = f(Meta(cur));
        match c.slots[i].meta.compare_exchange(cur, new.0, SeqCst, SeqCst) {
            Ok(_) => {
                armed_delta(Meta(cur), new);
                return new;
            }
            Err(seen) => cur = seen,
        }
    }
}

pub fn set_flags(fd: i32, flags: u32) -> Meta {
    update(fd, |m| Meta(m.0 | flags))
}

pub fn clear_flags(fd: i32, flags: u32) -> Meta {
    update(fd, |m| Meta(m.0 & !flags))
}

/// Records that `fd` now holds corked data, stamped with the flusher tick and the thread.
/// Returns false if it was already marked.
pub fn mark_held(fd: i32, tick: u32, thread: u32) -> bool {
    let Some((c, i)) = slot(fd) else { return false };
    let (w, bit) = (i / 64, 1u64 << (i % 64));
    if c.held[w].load(SeqCst) & bit != 0 {
        return false;
    }
    // Stamp before publishing the bit, so a flusher never reads a stale stamp for a new hold.
    c.slots[i].held_since.store(tick, SeqCst);
    c.slots[i].held_by.store(thread, SeqCst);
    let was = c.held[w].fetch_or(bit, SeqCst);
    if was & bit == 0 {
        HELD.fetch_add(1, SeqCst);
        true
    } else {
        false
    }
}

pub fn is_held(fd: i32) -> bool {
    slot(fd).is_some_and(|(c, i)| c.held[i / 64].load(SeqCst) & (1u64 << (i % 64)) != 0)
}

fn take_held_in(c: &Chunk, i: usize) -> bool {
    let bit = 1u64 << (i % 64);
    let was = c.held[i / 64].fetch_and(!bit, SeqCst);
    if was & bit != 0 {
        HELD.fetch_sub(1, SeqCst);
        true
    } else {
        false
    }
}

/// Claims the duty to flush `fd`: true for exactly one caller per hold.
pub fn take_held(fd: i32) -> bool {
    slot(fd).is_some_and(|(c, i)| take_held_in(c, i))
}

pub fn held_count() -> usize {
    HELD.load(SeqCst)
}

pub fn armed_count() -> usize {
    ARMED.load(SeqCst)
}

fn fd_of(dir: usize, i: usize) -> i32 {
    ((dir << CHUNK_BITS) | i) as i32
}

/// Claims every hold whose `(since, thread)` satisfies `pick`, and calls `flush` on its fd.
pub fn take_held_where(pick: impl Fn(u32, u32) -> bool, mut flush: impl FnMut(i32)) {
    if held_count() == 0 {
        return;
    }
    for d in 0..TOP.load(SeqCst) {
        let Some(c) = chunk(d) else { continue };
        for w in 0..WORDS {
            let mut bits = c.held[w].load(SeqCst);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let s = &c.slots[i];
                if pick(s.held_since.load(SeqCst), s.held_by.load(SeqCst)) && take_held_in(c, i) {
                    flush(fd_of(d, i));
                }
            }
        }
    }
}

/// Calls `f` on every fd we track (kind not Empty), in fd order.
pub fn for_each_tracked(mut f: impl FnMut(i32, Meta)) {
    for d in 0..TOP.load(SeqCst) {
        let Some(c) = chunk(d) else { continue };
        for (i, s) in c.slots.iter().enumerate() {
            let m = Meta(s.meta.load(SeqCst));
            if m.0 != 0 {
                f(fd_of(d, i), m);
            }
        }
    }
}

/// In a forked child: the parent still holds these sockets and flushes them itself.
pub fn forget_holds() {
    for d in 0..TOP.load(SeqCst) {
        if let Some(c) = chunk(d) {
            for w in &c.held {
                w.store(0, SeqCst);
            }
        }
    }
    HELD.store(0, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Kind;

    // The table is process-global; each test uses its own fd numbers.

    #[test]
    fn unknown_and_out_of_range_fds_are_empty() {
        assert_eq!(get(123_456).kind(), Kind::Empty);
        assert_eq!(get(-1).kind(), Kind::Empty);
        assert_eq!(get(i32::MAX).kind(), Kind::Empty);
        set(-5, Meta::new(Kind::Tcp, 0, 0));
        set(i32::MAX, Meta::new(Kind::Tcp, 0, 0));
        assert_eq!(get(i32::MAX).kind(), Kind::Empty);
    }

    #[test]
    fn set_get_clear_and_high_fds() {
        for fd in [3, 1023, 1024, 70_000, CAPACITY as i32 - 1] {
            set(fd, Meta::new(Kind::Server, Meta::CORK, 80));
            assert_eq!(get(fd).kind(), Kind::Server, "fd {fd}");
            assert_eq!(clear(fd).kind(), Kind::Server);
            assert_eq!(get(fd).kind(), Kind::Empty);
        }
    }

    #[test]
    fn holds_are_claimed_once_and_cleared_with_the_fd() {
        let fd = 2000;
        set(fd, Meta::new(Kind::Server, Meta::CORK, 80));
        assert!(mark_held(fd, 7, 1));
        assert!(!mark_held(fd, 8, 1), "second write of the same response");
        assert!(is_held(fd));
        assert!(take_held(fd));
        assert!(!take_held(fd));
        assert!(mark_held(fd, 9, 1));
        clear(fd);
        assert!(!is_held(fd), "close forgets the hold");
    }

    #[test]
    fn take_held_where_filters_by_thread_and_age() {
        let (a, b) = (3001, 3002);
        set(a, Meta::new(Kind::Server, Meta::CORK, 80));
        set(b, Meta::new(Kind::Server, Meta::CORK, 80));
        mark_held(a, 10, 42);
        mark_held(b, 10, 43);
        let mut got = Vec::new();
        take_held_where(|_, by| by == 42, |fd| got.push(fd));
        assert!(got.contains(&a) && !got.contains(&b));
        assert!(is_held(b));
        take_held_where(|since, _| since <= 10, |fd| got.push(fd));
        assert!(got.contains(&b));
        assert!(!is_held(b));
    }

    #[test]
    fn armed_count_follows_the_flag() {
        let fd = 4001;
        let before = armed_count();
        set(fd, Meta::new(Kind::Client, Meta::ARMED, 25));
        assert_eq!(armed_count(), before + 1);
        clear_flags(fd, Meta::ARMED);
        assert_eq!(armed_count(), before);
        set_flags(fd, Meta::ARMED);
        clear(fd);
        assert_eq!(armed_count(), before);
    }

    #[test]
    fn concurrent_registration_of_one_chunk_keeps_every_entry() {
        let base = 50 * 1024;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for k in 0..100 {
                        set(base + t * 100 + k, Meta::new(Kind::Other, 0, 0));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for fd in base..base + 800 {
            assert_eq!(get(fd).kind(), Kind::Other, "fd {fd}");
        }
    }
}
