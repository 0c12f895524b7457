//! `SOCKTUNE_STATS` and `SOCKTUNE_STATS_PROM`: a record of each TCP connection at its close,
//! and counters for the whole process tree; plus the random arm of `SOCKTUNE_AB`.
//!
//! The closing thread only formats its line into a memory buffer. The flusher thread appends
//! the buffer to the file within about 10 ms (whole lines per write(2) on an O_APPEND file, so
//! processes can share one file), and exit, `_exit` and the end of a fork-safe life drain it.
//! The counters live in a shared file mapping (`<prom path>.counters`), so forked and exec'd
//! processes add to the same numbers, and any of them can render the textfile.

use crate::errno::{self, KeepErrno};
use crate::fdtable::{self, Slot};
use crate::settings::config;
use crate::{flusher, guard, live, log, sys, tree};
use once_cell::sync::OnceCell;
use socktune_core::record::{self, Conn, End, Side, COUNTER_SLOTS, DROPPED_SLOT};
use socktune_core::state::{Arm, FdState, Kind};
use std::cell::UnsafeCell;
use std::ffi::CString;
use std::mem::{offset_of, size_of_val};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::SeqCst};

/// Lines waiting for the file, behind a spin lock: the critical sections are a memcpy, and a
/// thread never nests them (pushes run under the re-entrancy guard).
struct Pending {
    locked: AtomicBool,
    lines: UnsafeCell<Vec<u8>>,
}

// SAFETY: `lines` is only touched with `locked` held.
unsafe impl Sync for Pending {}

impl Pending {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, SeqCst, SeqCst)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: we hold the lock.
        let r = f(unsafe { &mut *self.lines.get() });
        self.locked.store(false, SeqCst);
        r
    }
}

static PENDING: Pending = Pending {
    locked: AtomicBool::new(false),
    lines: UnsafeCell::new(Vec::new()),
};
/// Past this, records are dropped (and counted) rather than grow memory without bound.
const MAX_PENDING: usize = 1 << 20;
const DRAIN_AT_BYTES: usize = 16 << 10;
/// Milliseconds a line may wait in memory.
const DRAIN_AFTER_TICKS: u32 = 10;
/// At most ten textfile rewrites a second, each within 0.1 s of a change.
const PROM_EVERY_TICKS: u32 = 100;

static PENDING_BYTES: AtomicU32 = AtomicU32::new(0);
/// When (flusher clock, ms) the oldest pending line was buffered.
static OLDEST: AtomicU32 = AtomicU32::new(0);
/// Drains between taking lines from the buffer and finishing their write.
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static EXITED: AtomicBool = AtomicBool::new(false);
static RNG: AtomicU64 = AtomicU64::new(0);
static PROM_DIRTY: AtomicBool = AtomicBool::new(false);
static PROM_WRITTEN: AtomicU32 = AtomicU32::new(0);
static COUNTERS: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
static PATHS: OnceCell<Paths> = OnceCell::new();

struct Paths {
    stats: Option<CString>,
    prom: Option<CString>,
}

/// Sets up recording at load: paths, the counters mapping, the arm generator, the exit drain.
pub fn init() {
    let cfg = config();
    seed();
    if !cfg.records() {
        return;
    }
    let cstr = |p: &Option<String>| p.as_deref().and_then(|p| CString::new(p).ok());
    let _ = PATHS.set(Paths {
        stats: cstr(&cfg.stats),
        prom: cstr(&cfg.stats_prom),
    });
    if let Some(prom) = &cfg.stats_prom {
        map_counters(&format!("{prom}.counters"));
    }
    extern "C" fn drain_at_exit() {
        at_exit();
    }
    // SAFETY: registers a plain extern "C" function.
    unsafe { libc::atexit(drain_at_exit) };
}

/// Seeds the arm generator from the kernel's per-exec random bytes and the pid; a forked child
/// reseeds, so that prefork workers do not replay one sequence.
fn seed() {
    // SAFETY: AT_RANDOM points to 16 random bytes for the life of the process.
    let random = unsafe {
        let p = libc::getauxval(libc::AT_RANDOM) as *const u8;
        if p.is_null() {
            0
        } else {
            std::ptr::read_unaligned(p.cast::<u64>())
        }
    };
    RNG.store(record::mix(random ^ u64::from(guard::pid())), SeqCst);
}

thread_local! {
    /// The low bits of the switchback window this thread's last `draw_arm` used, for the
    /// `start` that follows it.
    static DRAWN_WINDOW: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// The arm for a new connection, if `SOCKTUNE_AB` splits them: its own draw, or under
/// switchback the arm of the current window.
pub fn draw_arm() -> Option<Arm> {
    let cfg = config();
    let pct = cfg.ab?;
    if let Some(secs) = cfg.ab_window_s {
        let window = now_us() / 1_000_000 / u64::from(secs);
        DRAWN_WINDOW.with(|w| w.set(window as u8));
        return Some(record::window_arm(window, pct));
    }
    let state = RNG.fetch_add(record::GAMMA, SeqCst);
    Some(record::arm_for(record::mix(state), pct))
}

/// Registers a new connection in `slot` with its recording state: recorded or not, its arm,
/// and under switchback its window. Returns the state registered.
pub fn start(slot: Slot, state: FdState, arm: Option<Arm>) -> FdState {
    let cfg = config();
    let recorded = if cfg.records() { FdState::RECORDED } else { 0 };
    let state = state.with(recorded).with_arm(arm);
    slot.reset(state);
    if cfg.ab_window_s.is_some() && arm.is_some() {
        slot.set_window_low(DRAWN_WINDOW.with(std::cell::Cell::get));
    }
    state
}

/// The program writes on a connection: the first write after a read starts a response.
#[inline]
pub fn wrote(slot: Slot) {
    let (before, after) = slot.update(|s| s.after_write().0);
    if !before.has(FdState::WROTE) && after.has(FdState::WROTE) {
        slot.count_response();
    }
}

/// The program reads a connection.
#[inline]
pub fn read(slot: Slot) {
    slot.update(FdState::after_read);
}

/// A connection is being closed or shut down: record it unless another holder will.
pub fn ended(fd: i32, slot: Slot, state: FdState, end: End) {
    let responses = slot.responses();
    if !record::reports_at_close(state, responses) {
        return;
    }
    slot.unset(FdState::RECORDED);
    let Some(sys::TcpInfo {
        info,
        len,
        fastopen_bits,
    }) = sys::tcp_info_filled(fd)
    else {
        return;
    };
    // A field this kernel's TCP_INFO does not reach is not a figure.
    macro_rules! filled {
        ($field:ident) => {
            (offset_of!(libc::tcp_info, $field) + size_of_val(&info.$field) <= len)
                .then_some(info.$field)
        };
    }
    let side = if state.kind() == Kind::Client {
        Side::Client
    } else {
        Side::Server
    };
    let applied = record::applied(state);
    let ts_us = now_us();
    let window = config()
        .ab_window_s
        .filter(|_| state.arm().is_some())
        .map(|secs| record::started_window(slot.window_low(), ts_us / 1_000_000 / u64::from(secs)));
    let syn_data = info.tcpi_options & TCPI_OPT_SYN_DATA != 0;
    let conn = Conn {
        ts_us,
        pid: guard::pid(),
        side: Some(side),
        local_port: sys::local_port(fd).unwrap_or(0),
        remote_port: sys::peer_port(fd).unwrap_or(0),
        arm: state.arm(),
        window,
        applied,
        responses,
        segs_in: info.tcpi_segs_in,
        segs_out: info.tcpi_segs_out,
        data_segs_in: info.tcpi_data_segs_in,
        data_segs_out: info.tcpi_data_segs_out,
        bytes_acked: info.tcpi_bytes_acked,
        bytes_received: info.tcpi_bytes_received,
        retrans: info.tcpi_total_retrans,
        rtt_us: info.tcpi_rtt,
        rttvar_us: info.tcpi_rttvar,
        syn_data,
        fastopen_child: info.tcpi_options & TCPI_OPT_TFO_CHILD != 0,
        fastopen_fail: record::fastopen_fail(side, applied, syn_data, fastopen_bits >> 1),
        min_rtt_us: filled!(tcpi_min_rtt),
        delivery_rate: filled!(tcpi_delivery_rate),
        busy_us: filled!(tcpi_busy_time),
        rwnd_limited_us: filled!(tcpi_rwnd_limited),
        sndbuf_limited_us: filled!(tcpi_sndbuf_limited),
        reordering: filled!(tcpi_reordering),
        end: Some(end),
    };
    push(&conn);
}

/// `tcpi_options` bits: the SYN carried data and the peer took it; the connection was created
/// by a Fast Open SYN (server side; kernels without the bit leave it clear).
const TCPI_OPT_SYN_DATA: u8 = 32;
const TCPI_OPT_TFO_CHILD: u8 = 128;

fn now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn push(conn: &Conn) {
    CONNECTIONS.fetch_add(1, SeqCst);
    // The textfile's counters, and the control file's for `socktune ctl show`.
    for counters in [counters(), live::counters()].into_iter().flatten() {
        for (slot, n) in record::increments(conn) {
            counters[slot].fetch_add(n, SeqCst);
        }
    }
    PROM_DIRTY.fetch_or(counters().is_some(), SeqCst);
    if PATHS.get().is_some_and(|p| p.stats.is_some()) {
        let line = format!("{conn}\n");
        let kept = PENDING.with(|lines| {
            if lines.len() + line.len() > MAX_PENDING {
                return false;
            }
            if lines.is_empty() {
                OLDEST.store(flusher::now(), SeqCst);
            }
            lines.extend_from_slice(line.as_bytes());
            PENDING_BYTES.store(lines.len() as u32, SeqCst);
            true
        });
        if !kept {
            dropped(1);
        }
    }
    flusher::wake_by(flusher::now(), DRAIN_AFTER_TICKS);
}

fn dropped(records: u64) {
    DROPPED.fetch_add(records, SeqCst);
    for counters in [counters(), live::counters()].into_iter().flatten() {
        counters[DROPPED_SLOT].fetch_add(records, SeqCst);
    }
    PROM_DIRTY.fetch_or(counters().is_some(), SeqCst);
}

/// The flusher's job: writes what waited long enough; returns when what is left is due.
pub fn tick(now: u32) -> Option<u32> {
    let pending = PENDING_BYTES.load(SeqCst) as usize;
    if pending > 0
        && (pending >= DRAIN_AT_BYTES || now.wrapping_sub(OLDEST.load(SeqCst)) >= DRAIN_AFTER_TICKS)
    {
        drain();
    }
    if PROM_DIRTY.load(SeqCst) && now.wrapping_sub(PROM_WRITTEN.load(SeqCst)) >= PROM_EVERY_TICKS {
        PROM_WRITTEN.store(now, SeqCst);
        write_prom();
    }
    let lines_due = (PENDING_BYTES.load(SeqCst) > 0)
        .then(|| OLDEST.load(SeqCst).wrapping_add(DRAIN_AFTER_TICKS));
    let prom_due = PROM_DIRTY
        .load(SeqCst)
        .then(|| PROM_WRITTEN.load(SeqCst).wrapping_add(PROM_EVERY_TICKS));
    flusher::earliest(lines_due, prom_due)
}

fn drain() {
    IN_FLIGHT.fetch_add(1, SeqCst);
    let lines = PENDING.with(|lines| {
        PENDING_BYTES.store(0, SeqCst);
        std::mem::take(lines)
    });
    if !lines.is_empty() {
        append(&lines);
    }
    IN_FLIGHT.fetch_sub(1, SeqCst);
}

/// Appends whole lines to the stats file, opened for this write only, so no fd of ours stays
/// open for the program to close or inherit.
fn append(lines: &[u8]) {
    let Some(path) = PATHS.get().and_then(|p| p.stats.as_ref()) else {
        return;
    };
    static WARNED: AtomicBool = AtomicBool::new(false);
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | sys::OWN_FILE;
    match write_file(path, flags, lines) {
        Ok(()) => {}
        Err(e) => {
            let records = lines.iter().filter(|&&b| b == b'\n').count() as u64;
            dropped(records);
            if first_warning_in_tree(&WARNED, tree::STATS_WARNED) {
                log::stderr(&format!(
                    "socktune: cannot append connection records to SOCKTUNE_STATS={:?} ({}); \
                     records are dropped",
                    path,
                    std::io::Error::from_raw_os_error(e)
                ));
            }
        }
    }
}

/// open + write-all + close with raw calls (never through our hooks); `Err(errno)`.
fn write_file(path: &CString, flags: i32, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: NUL-terminated path; the fd is ours alone until closed below.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o644);
        if fd < 0 {
            return Err(errno::get());
        }
        let mut done = 0;
        let mut result = Ok(());
        while done < bytes.len() {
            let n = libc::syscall(
                libc::SYS_write,
                fd,
                bytes[done..].as_ptr(),
                bytes.len() - done,
            );
            if n < 0 {
                let e = errno::get();
                if e == libc::EINTR {
                    continue;
                }
                result = Err(e);
                break;
            }
            done += n as usize;
        }
        libc::syscall(libc::SYS_close, fd);
        result
    }
}

fn counters() -> Option<&'static [AtomicU64; COUNTER_SLOTS]> {
    let p = COUNTERS.load(SeqCst);
    // SAFETY: a non-null pointer is a live shared mapping of the counters (see `map_counters`).
    (!p.is_null()).then(|| unsafe { &*p.add(1).cast::<[AtomicU64; COUNTER_SLOTS]>() })
}

/// "socktune1" in the first word: anything else is not our file, and is left alone.
const MAGIC: u64 = u64::from_le_bytes(*b"socktun1");
const MAP_LEN: usize = 4096;
const _: () = assert!((COUNTER_SLOTS + 1) * 8 <= MAP_LEN);

fn map_counters(path: &str) {
    let warn = |why: &str| {
        log::stderr(&format!(
            "socktune: SOCKTUNE_STATS_PROM: cannot use {path:?} ({why}); no Prometheus textfile"
        ))
    };
    let Ok(cpath) = CString::new(path) else {
        return;
    };
    let _keep = KeepErrno::now();
    // SAFETY: plain open/fstat/ftruncate/mmap on our own fd, closed before returning.
    unsafe {
        let fd = libc::open(
            cpath.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | sys::OWN_FILE,
            0o644,
        );
        if fd < 0 {
            return warn(&std::io::Error::last_os_error().to_string());
        }
        let mut st = std::mem::zeroed::<libc::stat>();
        if libc::fstat(fd, &mut st) == 0 && st.st_uid != libc::geteuid() {
            // Shared with whoever owns it: another user's file is not ours to count in.
            libc::syscall(libc::SYS_close, fd);
            return warn("it belongs to another user");
        }
        let sized = libc::fstat(fd, &mut st) == 0
            && (st.st_size >= MAP_LEN as i64 || libc::ftruncate(fd, MAP_LEN as i64) == 0);
        let map = if sized {
            libc::mmap(
                std::ptr::null_mut(),
                MAP_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        } else {
            libc::MAP_FAILED
        };
        libc::syscall(libc::SYS_close, fd);
        if map == libc::MAP_FAILED {
            return warn(&std::io::Error::last_os_error().to_string());
        }
        let words = map.cast::<AtomicU64>();
        let magic = (*words).compare_exchange(0, MAGIC, SeqCst, SeqCst);
        if magic.is_err_and(|m| m != MAGIC) {
            libc::munmap(map, MAP_LEN);
            return warn("not a socktune counters file");
        }
        COUNTERS.store(words, SeqCst);
    }
}

/// True for the first warning of its kind in this process tree (in this process alone, if the
/// shared word could not be mapped).
fn first_warning_in_tree(here: &AtomicBool, flag: u32) -> bool {
    if here.swap(true, SeqCst) {
        return false;
    }
    tree::first_to_set(flag)
}

/// Renders the counters into the textfile: a temporary file renamed over it, so that
/// node_exporter never reads half a file.
fn write_prom() {
    let (Some(counters), Some(paths)) = (counters(), PATHS.get()) else {
        return;
    };
    let Some(path) = &paths.prom else { return };
    let Ok(tmp) = CString::new(format!("{}.{}.tmp", path.to_string_lossy(), guard::pid())) else {
        return;
    };
    PROM_DIRTY.store(false, SeqCst);
    let snapshot: [u64; COUNTER_SLOTS] = std::array::from_fn(|i| counters[i].load(SeqCst));
    let text = record::render_prom(&snapshot);
    static WARNED: AtomicBool = AtomicBool::new(false);
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | sys::OWN_FILE;
    let result = write_file(&tmp, flags, text.as_bytes()).and_then(|()| {
        // SAFETY: two NUL-terminated paths.
        if unsafe { libc::rename(tmp.as_ptr(), path.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(errno::get())
        }
    });
    if let Err(e) = result {
        // SAFETY: NUL-terminated path; a missing file is fine.
        unsafe { libc::unlink(tmp.as_ptr()) };
        if first_warning_in_tree(&WARNED, tree::PROM_WARNED) {
            log::stderr(&format!(
                "socktune: cannot write SOCKTUNE_STATS_PROM={path:?} ({})",
                std::io::Error::from_raw_os_error(e)
            ));
        }
    }
}

/// Exit (atexit, or the `_exit` hook): write what is buffered, the process line, the textfile.
pub fn at_exit() {
    // A vfork child runs in our memory: the buffer is not its to write.
    if !config().records() || guard::in_vfork_child() || EXITED.swap(true, SeqCst) {
        return;
    }
    let _busy = guard::enter();
    let _keep = KeepErrno::now();
    // Connections the program leaves open (children that exit without closing the client's
    // socket, clients that leave by _exit) are recorded as they stand.
    fdtable::for_each_tracked(|fd, slot, state| {
        if state.is_connection() {
            ended(fd, slot, state, End::Exit);
        }
    });
    // A drain the flusher started has taken its lines: let it finish them (bounded wait).
    for _ in 0..200 {
        if IN_FLIGHT.load(SeqCst) == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drain();
    let connections = CONNECTIONS.load(SeqCst);
    if connections > 0 {
        let line = record::process_line(now_us(), guard::pid(), connections, DROPPED.load(SeqCst));
        append(format!("{line}\n").as_bytes());
    }
    if PROM_DIRTY.load(SeqCst) {
        write_prom();
    }
}

/// Before this process execs another program (not a spawn, which leaves it running): its open
/// connections are recorded as they stand, and the buffer written, which the exec would drop.
pub fn at_exec() {
    if !config().records() || guard::in_vfork_child() {
        return;
    }
    fdtable::for_each_tracked(|fd, slot, state| {
        if state.is_connection() {
            ended(fd, slot, state, End::Exec);
        }
    });
    drain();
}

/// In a forked child: the parent writes what was buffered before the fork; the child starts
/// empty. The old buffer is leaked, not freed: another thread may have been inside it.
pub fn forget_after_fork() {
    // SAFETY: only this thread exists in the child; the lock word is reset with the buffer.
    unsafe { std::ptr::write(PENDING.lines.get(), Vec::new()) };
    PENDING.locked.store(false, SeqCst);
    PENDING_BYTES.store(0, SeqCst);
    IN_FLIGHT.store(0, SeqCst);
    CONNECTIONS.store(0, SeqCst);
    DROPPED.store(0, SeqCst);
    EXITED.store(false, SeqCst);
    PROM_DIRTY.store(false, SeqCst);
    seed();
}
