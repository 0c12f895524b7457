//! What keeps the shim's own work from hurting the program's call: the re-entrancy guard, errno
//! kept, and panics contained. Also the thread and process identity the shim needs: which
//! process this is (ours, a fork child whose fork handler has yet to run, or a vfork child) told
//! without a system call.
//!
//! A hook runs the shim's logic before and after the real call only through [`act`], and calls
//! the real function itself outside it, exactly once, whatever the logic does. The exceptions
//! are steps of a few atomics on the fd's own entry, which make no call (so cannot re-enter),
//! allocate nothing and leave errno alone: the table lookup itself, and cork's steps on a
//! connection that holds nothing (`cork::writes_learnt_whole`, `cork::read_ends_unheld`), and
//! a setsockopt that repeats what the program took over (`own_options::sets_again`).

use crate::errno::KeepErrno;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;

thread_local! {
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static TOKEN: Cell<u32> = const { Cell::new(0) };
}

/// Held while the shim does its own work on this thread; hooks entered meanwhile pass straight
/// through to libc.
pub struct Busy(());

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = BUSY.try_with(|b| b.set(false));
    }
}

/// `None` if this thread is already inside the shim (or is exiting and has no thread-locals).
pub fn enter() -> Option<Busy> {
    BUSY.try_with(|b| (!b.replace(true)).then_some(Busy(())))
        .ok()
        .flatten()
}

/// Runs one step of the shim's logic for the hook `call`: not at all if this thread is already
/// inside the shim; with errno kept as the program's call left it; and with a panic caught,
/// reported once, and turned into `R::default()`, so that the program's call goes ahead
/// untouched. In a fork child whose fork handler has not run, the handler runs first.
#[inline]
pub fn act<R: Default>(call: &str, logic: impl FnOnce() -> R) -> R {
    let Some(_busy) = enter() else {
        return R::default();
    };
    let _keep = KeepErrno::now();
    match catch_unwind(AssertUnwindSafe(|| {
        adopt();
        let r = logic();
        if cfg!(feature = "panic-in-logic") {
            panic!("socktune built with panic-in-logic: {call} panics after its step");
        }
        r
    })) {
        Ok(r) => r,
        Err(_) => {
            failed(call);
            R::default()
        }
    }
}

#[cold]
fn failed(call: &str) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, SeqCst) {
        crate::log::stderr(&format!(
            "socktune: internal error in {call}; the call went ahead untouched (reported once)"
        ));
    }
}

/// A small number naming the calling thread, for "flush what this thread wrote".
pub fn thread_token() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    TOKEN
        .try_with(|t| {
            if t.get() == 0 {
                t.set(NEXT.fetch_add(1, SeqCst));
            }
            t.get()
        })
        .unwrap_or(0)
}

/// This process's id, kept from load and from each fork: asking the kernel would be a call the
/// program did not make.
static PID: AtomicI32 = AtomicI32::new(0);

pub fn pid() -> u32 {
    PID.load(SeqCst) as u32
}

/// A word on a page the kernel zeroes in every child with memory of its own
/// (`MADV_WIPEONFORK`) and leaves alone in us and in a vfork child, which shares our memory.
/// Zero: a fork child whose fork handler has not run (a raw `clone` or fork system call, as
/// vsftpd starts its sessions with, or `_Fork`). Null: not mapped (the shim is inert, or the
/// kernel is older than 4.14).
static FORK_MARK: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());
/// What such a child runs first: the fork handler, registered from above at load.
static IN_CHILD: OnceLock<extern "C" fn()> = OnceLock::new();

/// At load: note the pid, map the fork mark, and take the handler a fork child runs.
pub fn start(in_child: extern "C" fn()) {
    note_pid();
    let _ = IN_CHILD.set(in_child);
    const LEN: usize = 4096; // one page (mmap and madvise round up)
    let Some(page) = crate::sys::map_zeroed(LEN, false) else {
        return;
    };
    // SAFETY: `page` is our own mapping of LEN bytes.
    if unsafe { libc::madvise(page, LEN, libc::MADV_WIPEONFORK) } != 0 {
        // SAFETY: as above; nothing else has seen it.
        unsafe { libc::munmap(page, LEN) };
        return;
    }
    let mark = page.cast::<AtomicU32>();
    // SAFETY: `mark` points into the live mapping, never unmapped from now on.
    unsafe { &*mark }.store(1, SeqCst);
    FORK_MARK.store(mark, SeqCst);
}

fn note_pid() {
    // SAFETY: getpid has no preconditions.
    PID.store(unsafe { libc::getpid() }, SeqCst);
}

/// First thing in a forked child, whether its fork handler ran or [`adopt`] runs it.
pub fn child_started() {
    note_pid();
    // SAFETY: a non-null mark is the word on the page `start` mapped, never unmapped.
    if let Some(mark) = unsafe { FORK_MARK.load(SeqCst).as_ref() } {
        mark.store(1, SeqCst);
    }
    // The vforks and memory sharers were the parent's: nothing runs in this copy of it.
    let _ = VFORKED.try_with(|v| v.set(false));
    VFORKING.store(0, SeqCst);
    SHARED_MEMORY.store(false, SeqCst);
}

/// In a child forked where no fork handler ran: runs it, once, before the shim does anything
/// there. Two loads otherwise.
#[inline]
pub fn adopt() {
    // SAFETY: as in `child_started`.
    if let Some(mark) = unsafe { FORK_MARK.load(SeqCst).as_ref() } {
        if mark.load(SeqCst) == 0 {
            adopt_now(mark);
        }
    }
}

#[cold]
fn adopt_now(mark: &AtomicU32) {
    if mark.compare_exchange(0, 1, SeqCst, SeqCst).is_ok() {
        if let Some(in_child) = IN_CHILD.get() {
            let _busy = enter();
            in_child();
        }
    }
}

/// Whether the shim sees each vfork (`hooks::fork`, x86-64 only). Where it does not, any check
/// may be in a vfork child, and every one asks getpid.
const VFORK_SEEN: bool = cfg!(target_arch = "x86_64");

thread_local! {
    /// This thread called vfork (or a clone like it) and has not found itself back in this
    /// process since. Its vfork child runs on these same thread-locals.
    static VFORKED: Cell<bool> = const { Cell::new(false) };
}
/// Threads with `VFORKED` set: while none has, no check asks getpid.
static VFORKING: AtomicU32 = AtomicU32::new(0);
/// A child ran in our memory beside us, or on thread-locals of its own: from then on every
/// check asks getpid.
static SHARED_MEMORY: AtomicBool = AtomicBool::new(false);

/// Before this thread vforks.
pub fn before_vfork() {
    adopt();
    let _ = VFORKED.try_with(|v| {
        if !v.replace(true) {
            VFORKING.fetch_add(1, SeqCst);
        }
    });
}

/// Before a child that shares our memory, other than a vfork child, starts.
pub fn before_sharing_memory() {
    adopt();
    SHARED_MEMORY.store(true, SeqCst);
}

/// True in a vfork child before it execs: it shares our memory, the fd table included, but not
/// our fds, so what it closes or duplicates must leave the table alone. Asks getpid only on a
/// thread that vforked and has not checked since (then once), or after a memory sharer.
pub fn in_vfork_child() -> bool {
    adopt();
    let asks = !VFORK_SEEN
        || SHARED_MEMORY.load(SeqCst)
        || (VFORKING.load(SeqCst) != 0 && VFORKED.try_with(Cell::get).unwrap_or(true));
    asks && elsewhere()
}

#[cold]
fn elsewhere() -> bool {
    let pid = PID.load(SeqCst);
    // SAFETY: getpid has no preconditions.
    let elsewhere = pid != 0 && pid != unsafe { libc::getpid() };
    if !elsewhere {
        // Back in this process: this thread's vfork child has exec'd or exited.
        let _ = VFORKED.try_with(|v| {
            if v.replace(false) {
                VFORKING.fetch_sub(1, SeqCst);
            }
        });
    }
    elsewhere
}
