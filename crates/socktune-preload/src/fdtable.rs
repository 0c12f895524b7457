//! Per-fd state: a table indexed by fd, made of atomics, that grows without locks.
//!
//! A fixed directory points to chunks of 1024 slots. A chunk is mmap'd the first time an fd in
//! its range is registered (no malloc, so no re-entrancy) and is never freed, so readers never
//! wait and never see freed memory. An fd with no chunk, or beyond the directory, has no slot and
//! is passed through: a non-socket fd costs one lookup.
//!
//! A slot holds the fd's [`FdState`] word, the number of responses its connection carried, and
//! what it holds corked ("held"): when it was corked, by which thread, and one bit per fd in the
//! chunk's bitmap so that flushers scan words, not slots. A hook looks its fd up once and passes
//! the [`Slot`] handle down.

use crate::stub;
use socktune_core::state::FdState;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};

const CHUNK_BITS: usize = 10;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const WORDS: usize = CHUNK_LEN / 64;
/// 16384 chunks cover fds up to 16M, above any realistic RLIMIT_NOFILE.
const DIR_LEN: usize = 1 << 14;
pub const CAPACITY: usize = DIR_LEN * CHUNK_LEN;

#[derive(Default)]
struct Entry {
    state: AtomicU64,
    /// Responses (write bursts after a read) the connection carried, for its record.
    responses: AtomicU32,
    held_since: AtomicU32,
    held_by: AtomicU32,
    /// When, and by which thread, the connection was armed (`FdState::ARMED`).
    armed_since: AtomicU32,
    armed_by: AtomicU32,
    /// When the connection was last known to be in delayed-ACK mode (set at accept, or at a
    /// read that returned data), in coarse ms; 0: never.
    delayed_ack_at: AtomicU32,
    /// Bytes written since the last response boundary.
    response_bytes: AtomicU32,
    /// The length the current response's head declared, head included (0: unknown;
    /// [`HEAD_UNREAD`]: its first write is under way).
    response_end: AtomicU32,
    /// The connection's MSS once cork needed it (0: not read yet).
    mss: AtomicU32,
    /// The rules-file rule whose settings the socket follows: 0 for the top level, `i + 1` for
    /// rule `i`.
    rule: AtomicU8,
    /// The low 8 bits of the switchback window the connection started in.
    window: AtomicU8,
}

/// `Entry::response_end` while the response's first write is under way.
const HEAD_UNREAD: u32 = u32::MAX;
/// `Entry::response_end` after a first write whose head cork did not read ([`Slot::skip_head`]).
const HEAD_SKIPPED: u32 = u32::MAX - 1;

struct Chunk {
    entries: [Entry; CHUNK_LEN],
    held: [AtomicU64; WORDS],
}

static DIR: [AtomicPtr<Chunk>; DIR_LEN] = [const { AtomicPtr::new(null_mut()) }; DIR_LEN];
/// One past the highest chunk index ever allocated: scans stop there.
static TOP: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicUsize = AtomicUsize::new(0);

/// The directory index of `fd`'s chunk, for an fd the table has room for.
fn dir_of(fd: i32) -> Option<usize> {
    let fd = usize::try_from(fd).ok().filter(|&f| f < CAPACITY)?;
    Some(fd >> CHUNK_BITS)
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
    // All-zero bytes are a valid Chunk (atomics of 0).
    let fresh = crate::sys::map_zeroed(size, false)?;
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

fn armed_delta(old: FdState, new: FdState) {
    match (old.has(FdState::ARMED), new.has(FdState::ARMED)) {
        (false, true) => {
            ARMED.fetch_add(1, SeqCst);
        }
        (true, false) => {
            ARMED.fetch_sub(1, SeqCst);
        }
        _ => {}
    }
}

/// One fd's place in the table, looked up once per call.
#[derive(Clone, Copy)]
pub struct Slot {
    chunk: &'static Chunk,
    fd: u32,
}

/// The slot of an fd the table has room for; `None` (pass it through) for one it never saw
/// the chunk of, a negative fd or one beyond [`CAPACITY`].
#[inline]
pub fn lookup(fd: i32) -> Option<Slot> {
    Some(Slot::at(chunk(dir_of(fd)?)?, fd))
}

/// The slot of `fd`, made if need be, to register a new state in.
pub fn lookup_or_make(fd: i32) -> Option<Slot> {
    Some(Slot::at(chunk_or_alloc(dir_of(fd)?)?, fd))
}

impl Slot {
    /// `fd`'s slot in `chunk`, its chunk.
    fn at(chunk: &'static Chunk, fd: i32) -> Slot {
        Slot {
            chunk,
            fd: fd as u32,
        }
    }

    fn index(self) -> usize {
        self.fd as usize & (CHUNK_LEN - 1)
    }

    fn entry(self) -> &'static Entry {
        &self.chunk.entries[self.index()]
    }

    #[inline]
    pub fn load(self) -> FdState {
        FdState(self.entry().state.load(SeqCst))
    }

    /// Registers a new state, replacing whatever a previous fd of this number left: its holds
    /// and its response count go too. Returns the state it replaced.
    pub fn reset(self, state: FdState) -> FdState {
        if state.0 != 0 {
            stub::tracked(self.fd as i32);
        }
        self.take_held();
        let e = self.entry();
        e.responses.store(0, SeqCst);
        e.delayed_ack_at.store(0, SeqCst);
        e.response_bytes.store(0, SeqCst);
        e.response_end.store(0, SeqCst);
        e.mss.store(0, SeqCst);
        e.rule.store(0, SeqCst);
        e.window.store(0, SeqCst);
        let old = FdState(e.state.swap(state.0, SeqCst));
        armed_delta(old, state);
        old
    }

    /// Forgets the fd (closed, or found not to be a socket). Returns its state before.
    pub fn clear(self) -> FdState {
        self.reset(FdState::default())
    }

    /// Applies `f` atomically; returns the state before and after.
    pub fn update(self, f: impl Fn(FdState) -> FdState) -> (FdState, FdState) {
        let word = &self.entry().state;
        let mut cur = word.load(SeqCst);
        loop {
            let new = f(FdState(cur));
            if new.0 == cur {
                return (new, new);
            }
            if cur == 0 {
                stub::tracked(self.fd as i32);
            }
            match word.compare_exchange(cur, new.0, SeqCst, SeqCst) {
                Ok(_) => {
                    armed_delta(FdState(cur), new);
                    return (FdState(cur), new);
                }
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn set(self, flags: u64) -> FdState {
        self.update(|s| s.with(flags)).1
    }

    pub fn unset(self, flags: u64) -> FdState {
        self.update(|s| s.without(flags)).1
    }

    /// Notes that the connection is in delayed-ACK mode at `now_ms`; returns when it last was
    /// known to be (0: never).
    pub fn note_delayed_ack(self, now_ms: u32) -> u32 {
        self.entry().delayed_ack_at.swap(now_ms.max(1), SeqCst)
    }

    /// Adds a write's bytes to the current response's; returns the response's total so far.
    pub fn add_response_bytes(self, n: usize) -> u32 {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let e = &self.entry().response_bytes;
        e.fetch_add(n, SeqCst).saturating_add(n)
    }

    /// Bytes written since the last response boundary.
    pub fn response_bytes(self) -> u32 {
        self.entry().response_bytes.load(SeqCst)
    }

    /// A response boundary: the next write starts counting again.
    pub fn response_bytes_ended(self) {
        self.entry().response_bytes.store(0, SeqCst);
        self.entry().response_end.store(0, SeqCst);
    }

    /// The current response's first write is being made: its head is read once the kernel has
    /// taken it ([`Slot::take_head_unread`]).
    pub fn mark_head_unread(self) {
        self.entry().response_end.store(HEAD_UNREAD, SeqCst);
    }

    /// Whether the response's head is still to be read; claims it if so.
    pub fn take_head_unread(self) -> bool {
        let e = &self.entry().response_end;
        e.load(SeqCst) == HEAD_UNREAD && e.compare_exchange(HEAD_UNREAD, 0, SeqCst, SeqCst).is_ok()
    }

    /// The current response's first write went as written without its head read: the length
    /// stays unknown unless [`Slot::head_skipped`] is asked of the write after it.
    pub fn skip_head(self) {
        self.entry().response_end.store(HEAD_SKIPPED, SeqCst);
    }

    /// Whether the current response's head was skipped.
    pub fn head_skipped(self) -> bool {
        self.entry().response_end.load(SeqCst) == HEAD_SKIPPED
    }

    /// Notes the length the current response declared ([`socktune_core::framing`]).
    pub fn set_response_end(self, end: u32) {
        self.entry().response_end.store(end, SeqCst);
    }

    /// The length the current response declared, if its head said one.
    fn declared_end(self) -> Option<u32> {
        let end = self.entry().response_end.load(SeqCst);
        (end != 0 && end < HEAD_SKIPPED).then_some(end)
    }

    /// Whether the current response has all the bytes it declared.
    pub fn response_complete(self, total: u32) -> bool {
        self.declared_end().is_some_and(|end| total >= end)
    }

    /// Whether the current response has the bytes it declared and not one more.
    pub fn response_exact(self) -> bool {
        self.declared_end() == Some(self.response_bytes())
    }

    /// The MSS noted by [`Slot::set_mss`], 0 if none.
    pub fn mss(self) -> u32 {
        self.entry().mss.load(SeqCst)
    }

    pub fn set_mss(self, mss: u32) {
        self.entry().mss.store(mss, SeqCst);
    }

    pub fn responses(self) -> u32 {
        self.entry().responses.load(SeqCst)
    }

    /// Counts one more response (saturating).
    pub fn count_response(self) {
        let _ = self
            .entry()
            .responses
            .fetch_update(SeqCst, SeqCst, |n| n.checked_add(1));
    }

    /// Copies `from`'s state and response count, for a duplicated fd.
    pub fn copy_from(self, from: Slot, state: FdState) {
        self.reset(state);
        self.entry().responses.store(from.responses(), SeqCst);
        self.set_rule(from.rule());
        self.set_window_low(from.window_low());
    }

    /// The rule chosen for the socket ([`Slot::set_rule`]); 0, the top level, until then.
    pub fn rule(self) -> u8 {
        self.entry().rule.load(SeqCst)
    }

    pub fn set_rule(self, rule: u8) {
        self.entry().rule.store(rule, SeqCst);
    }

    /// The low 8 bits of the switchback window the connection started in (0 until set).
    pub fn window_low(self) -> u8 {
        self.entry().window.load(SeqCst)
    }

    pub fn set_window_low(self, low: u8) {
        self.entry().window.store(low, SeqCst);
    }

    /// Records that the fd now holds corked data, stamped with the flusher tick and the thread.
    /// Returns false if it was already marked.
    pub fn mark_held(self, tick: u32, thread: u32) -> bool {
        let (w, bit) = (self.index() / 64, 1u64 << (self.index() % 64));
        let held = &self.chunk.held[w];
        if held.load(SeqCst) & bit != 0 {
            return false;
        }
        // Stamp before publishing the bit, so a flusher never reads a stale stamp for a new hold.
        let e = self.entry();
        e.held_since.store(tick, SeqCst);
        e.held_by.store(thread, SeqCst);
        let was = held.fetch_or(bit, SeqCst);
        if was & bit == 0 {
            HELD.fetch_add(1, SeqCst);
            true
        } else {
            false
        }
    }

    /// Stamps an arming with the flusher tick and the thread, before the flag is set.
    pub fn stamp_armed(self, tick: u32, thread: u32) {
        let e = self.entry();
        e.armed_since.store(tick, SeqCst);
        e.armed_by.store(thread, SeqCst);
    }

    /// The tick and thread of the last [`Slot::stamp_armed`].
    pub fn armed_stamp(self) -> (u32, u32) {
        let e = self.entry();
        (e.armed_since.load(SeqCst), e.armed_by.load(SeqCst))
    }

    pub fn is_held(self) -> bool {
        self.chunk.held[self.index() / 64].load(SeqCst) & (1u64 << (self.index() % 64)) != 0
    }

    /// The thread token of the fd's hold, if it holds anything.
    pub fn held_by(self) -> Option<u32> {
        self.is_held().then(|| self.entry().held_by.load(SeqCst))
    }

    /// The tick and thread of the last [`Slot::mark_held`], which a take leaves in place.
    pub fn hold_stamp(self) -> (u32, u32) {
        let e = self.entry();
        (e.held_since.load(SeqCst), e.held_by.load(SeqCst))
    }

    /// Claims the duty to flush the fd: true for exactly one caller per hold.
    pub fn take_held(self) -> bool {
        take_held_in(self.chunk, self.index())
    }
}

fn take_held_in(c: &Chunk, i: usize) -> bool {
    let bit = 1u64 << (i % 64);
    // A plain load first: most reads and waits find nothing held, and need no locked write.
    if c.held[i / 64].load(SeqCst) & bit == 0 {
        return false;
    }
    let was = c.held[i / 64].fetch_and(!bit, SeqCst);
    if was & bit != 0 {
        HELD.fetch_sub(1, SeqCst);
        true
    } else {
        false
    }
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
pub fn take_held_where(pick: impl Fn(u32, u32) -> bool, mut flush: impl FnMut(i32, Slot)) {
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
                let e = &c.entries[i];
                if pick(e.held_since.load(SeqCst), e.held_by.load(SeqCst)) && take_held_in(c, i) {
                    let fd = fd_of(d, i);
                    flush(fd, Slot::at(c, fd));
                }
            }
        }
    }
}

/// Calls `f` on every fd we track (kind not Empty), in fd order.
pub fn for_each_tracked(mut f: impl FnMut(i32, Slot, FdState)) {
    for d in 0..TOP.load(SeqCst) {
        let Some(c) = chunk(d) else { continue };
        for i in 0..CHUNK_LEN {
            let fd = fd_of(d, i);
            let slot = Slot::at(c, fd);
            let s = slot.load();
            if s.0 != 0 {
                f(fd, slot, s);
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
    use socktune_core::state::Kind;

    // The table is process-global; each test uses its own fd numbers.

    fn state(fd: i32) -> FdState {
        lookup(fd).map_or(FdState::default(), Slot::load)
    }

    fn register(fd: i32, state: FdState) -> Slot {
        let slot = lookup_or_make(fd).expect("fd within the table");
        slot.reset(state);
        slot
    }

    #[test]
    fn unknown_and_out_of_range_fds_are_empty() {
        assert_eq!(state(123_456).kind(), Kind::Empty);
        assert_eq!(state(-1).kind(), Kind::Empty);
        assert_eq!(state(i32::MAX).kind(), Kind::Empty);
        assert!(lookup_or_make(-5).is_none());
        assert!(lookup_or_make(i32::MAX).is_none());
        assert_eq!(state(i32::MAX).kind(), Kind::Empty);
    }

    #[test]
    fn set_get_clear_and_high_fds() {
        for fd in [3, 1023, 1024, 70_000, CAPACITY as i32 - 1] {
            let slot = register(fd, FdState::new(Kind::Server, FdState::CORK, 80));
            assert_eq!(state(fd).kind(), Kind::Server, "fd {fd}");
            assert_eq!(slot.clear().kind(), Kind::Server);
            assert_eq!(state(fd).kind(), Kind::Empty);
        }
    }

    #[test]
    fn holds_are_claimed_once_and_cleared_with_the_fd() {
        let slot = register(2000, FdState::new(Kind::Server, FdState::CORK, 80));
        assert!(slot.mark_held(7, 1));
        assert!(!slot.mark_held(8, 1), "second write of the same response");
        assert!(slot.is_held());
        assert!(slot.take_held());
        assert!(!slot.take_held());
        assert!(slot.mark_held(9, 1));
        slot.clear();
        assert!(!slot.is_held(), "close forgets the hold");
    }

    #[test]
    fn take_held_where_filters_by_thread_and_age() {
        let (a, b) = (3001, 3002);
        let sa = register(a, FdState::new(Kind::Server, FdState::CORK, 80));
        let sb = register(b, FdState::new(Kind::Server, FdState::CORK, 80));
        sa.mark_held(10, 42);
        sb.mark_held(10, 43);
        let mut got = Vec::new();
        take_held_where(|_, by| by == 42, |fd, _| got.push(fd));
        assert!(got.contains(&a) && !got.contains(&b));
        assert!(sb.is_held());
        take_held_where(|since, _| since <= 10, |fd, _| got.push(fd));
        assert!(got.contains(&b));
        assert!(!sb.is_held());
    }

    #[test]
    fn armed_count_follows_the_flag() {
        let before = armed_count();
        let slot = register(4001, FdState::new(Kind::Client, FdState::ARMED, 25));
        assert_eq!(armed_count(), before + 1);
        slot.unset(FdState::ARMED);
        assert_eq!(armed_count(), before);
        slot.set(FdState::ARMED);
        slot.clear();
        assert_eq!(armed_count(), before);
    }

    #[test]
    fn the_response_count_saturates_and_a_new_state_resets_it() {
        let slot = register(4100, FdState::new(Kind::Server, FdState::RECORDED, 80));
        slot.count_response();
        slot.count_response();
        assert_eq!(slot.responses(), 2);
        slot.entry().responses.store(u32::MAX, SeqCst);
        slot.count_response();
        assert_eq!(slot.responses(), u32::MAX);
        let dup = register(4101, FdState::default());
        dup.copy_from(slot, slot.load());
        assert_eq!((dup.responses(), dup.load()), (u32::MAX, slot.load()));
        slot.reset(FdState::new(Kind::Tcp, 0, 0));
        assert_eq!(slot.responses(), 0);
    }

    #[test]
    fn concurrent_registration_of_one_chunk_keeps_every_entry() {
        let base = 50 * 1024;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for k in 0..100 {
                        register(base + t * 100 + k, FdState::new(Kind::Other, 0, 0));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for fd in base..base + 800 {
            assert_eq!(state(fd).kind(), Kind::Other, "fd {fd}");
        }
    }
}
