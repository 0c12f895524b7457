//! Logging that cannot hurt the host: formatted into a stack buffer, written with one raw
//! write(2) to stderr or `SOCKTUNE_LOG_FILE`, never to stdout, never allocating. A stderr that
//! is a socket (vsftpd and inetd services run with their client there) gets nothing.

use crate::errno::KeepErrno;
use crate::fdtable;
use socktune_core::config::Level;
use socktune_core::state::{FdState, Kind};
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering::SeqCst};

/// Where log lines go: 2 until a log file is opened; -1 when the file must be (re)opened.
static SINK: AtomicI32 = AtomicI32::new(2);
static LEVEL: AtomicU8 = AtomicU8::new(Level::Error as u8);
/// NUL-terminated log file path, set once at start-up.
static FILE: once_cell::sync::OnceCell<std::ffi::CString> = once_cell::sync::OnceCell::new();

pub fn init(level: Level, file: Option<&str>) {
    LEVEL.store(level as u8, SeqCst);
    if let Some(path) = file.and_then(|f| std::ffi::CString::new(f).ok()) {
        let _ = FILE.set(path);
        SINK.store(-1, SeqCst);
    }
}

#[inline]
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(SeqCst)
}

/// The program closed (or dup'ed over) our log file's fd: reopen before the next line.
pub fn sink_closed() {
    SINK.store(-1, SeqCst);
}

fn sink() -> i32 {
    let fd = SINK.load(SeqCst);
    if fd >= 0 {
        return fd;
    }
    let Some(path) = FILE.get() else { return 2 };
    // SAFETY: open with a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | crate::sys::OWN_FILE,
            0o644,
        )
    };
    if fd < 0 {
        return 2;
    }
    // Mark it so that close() on this number tells us, instead of us writing into a reused fd.
    if let Some(slot) = fdtable::lookup_or_make(fd) {
        slot.reset(FdState::new(Kind::Other, FdState::SHIM_LOG, 0));
    }
    SINK.store(fd, SeqCst);
    fd
}

struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len; // keep one byte for the newline
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one line `socktune[pid]: ...` if `level` is enabled.
#[cold]
pub fn emit(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let _keep = KeepErrno::now(); // opening the log file may fail
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    // SAFETY: getpid cannot fail.
    let _ = write!(line, "socktune[{}]: {}", unsafe { libc::getpid() }, args);
    raw_line(sink(), &mut line);
}

/// Writes `text` to stderr as it is, whatever the level (configuration problems).
pub fn stderr(text: &str) {
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    let _ = line.write_str(text);
    raw_line(2, &mut line);
}

fn raw_line(fd: i32, line: &mut Line) {
    let _keep = KeepErrno::now();
    if fd == 2 && stderr_is_socket() {
        return; // an inetd-style server's stderr is its client: a line there breaks the protocol
    }
    line.buf[line.len] = b'\n';
    line.len += 1;
    // SAFETY: writes our own stack buffer; a raw syscall cannot re-enter any hook.
    unsafe { libc::syscall(libc::SYS_write, fd, line.buf.as_ptr(), line.len) };
}

/// Asked per line, since the program may move a connection onto fd 2 at any time; lines are
/// rare, and written only at the level the user asked for.
fn stderr_is_socket() -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes one struct stat.
    let ok = unsafe { libc::fstat(2, st.as_mut_ptr()) } == 0;
    // SAFETY: initialised (zeroed, then filled by fstat).
    ok && unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFSOCK
}

// The level is tested where the line is, before its arguments are built: most sit on paths
// every write or read takes, with logging off.
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled(::socktune_core::config::Level::Debug) {
            $crate::log::emit(::socktune_core::config::Level::Debug, format_args!($($arg)*))
        }
    };
}
macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::log::enabled(::socktune_core::config::Level::Info) {
            $crate::log::emit(::socktune_core::config::Level::Info, format_args!($($arg)*))
        }
    };
}
pub(crate) use {debug, info};
