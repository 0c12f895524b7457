//! Live control: the control file `socktune ctl` writes changes into (layout in
//! `socktune_core::live`), mapped shared, so forked workers follow their parent's changes.
//!
//! The hot path is [`refresh`], at each new listener and connection: one load of the file's
//! generation, compared with the one last applied. Only when it changed are the settings read
//! again, put in force for the sockets that start after (existing connections keep their
//! plan), and the listeners' plans for the connections they accept made anew.

use crate::errno::KeepErrno;
use crate::fdtable;
use crate::log::{debug, info};
use crate::settings::{self, config};
use crate::{guard, log, sys};
use once_cell::sync::OnceCell;
use socktune_core::live::{self, FILE_LEN};
use socktune_core::policy;
use socktune_core::record::COUNTER_SLOTS;
use socktune_core::state::{FdState, Kind};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

/// The mapped control file, or null.
static MAP: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// The generation whose settings are in force.
static SEEN: AtomicU64 = AtomicU64::new(0);
static APPLYING: AtomicBool = AtomicBool::new(false);
static PATH: OnceCell<CString> = OnceCell::new();

fn word(base: *mut u8, at: usize) -> &'static AtomicU64 {
    // SAFETY: `base` is the live FILE_LEN-byte shared mapping, `at` an aligned word in it.
    unsafe { &*base.add(at).cast::<AtomicU64>() }
}

fn half(base: *mut u8, at: usize) -> &'static AtomicU32 {
    // SAFETY: as `word`, for an aligned u32.
    unsafe { &*base.add(at).cast::<AtomicU32>() }
}

/// The control file was made, or will never be: set once, inherited by forked children.
static TRIED: AtomicBool = AtomicBool::new(false);

/// At load: a process with live control off never makes the file. Otherwise it is made when
/// it is first needed ([`make_file`]): a process that never listens, accepts or connects over
/// TCP has nothing to control, and most processes under the shim are such.
pub fn init() {
    if !config().ctl {
        TRIED.store(true, SeqCst);
    }
}

/// Makes the tree's control file, once: at the process's first TCP listener, accept or
/// connect, or before its first fork, whichever comes first. Never while the settings are inert (no
/// behaviour on, or secure-execution mode).
#[cold]
fn make_file() {
    if TRIED.swap(true, SeqCst) || !config().ctl || config().inert() {
        return;
    }
    let _keep = KeepErrno::now();
    let start = settings::start_vars();
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let xdg = std::env::var("XDG_RUNTIME_DIR").ok();
    let Some(dir) = live::dir(euid, xdg.as_deref()) else {
        info!("no XDG_RUNTIME_DIR: no control file for socktune ctl");
        return;
    };
    let text = live::encode(start);
    if text.len() > live::START_MAX {
        info!("settings too long for the control file: no live control");
        return;
    }
    let pid = guard::pid();
    let path = format!("{dir}/{}", live::file_name(pid));
    let made = make(&dir, &path, euid);
    if made.is_ok() {
        sweep(&dir, &path, euid);
    }
    match made {
        Ok(base) => {
            // SAFETY: the mapping is FILE_LEN bytes; START_AT + START_MAX is within it.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), base.add(live::START_AT), text.len())
            };
            half(base, live::START_LEN_AT).store(text.len() as u32, SeqCst);
            word(base, live::PID_AT).store(u64::from(pid), SeqCst);
            join(base, pid);
            word(base, 0).store(live::MAGIC, SeqCst);
            let _ = PATH.set(CString::new(path).unwrap_or_default());
            MAP.store(base, SeqCst);
            extern "C" fn remove_at_exit() {
                at_exit();
            }
            // SAFETY: registers a plain extern "C" function.
            unsafe { libc::atexit(remove_at_exit) };
        }
        Err(Refused::Unsafe(why)) => log::stderr(&format!(
            "socktune: no live control: cannot use {path:?} ({why})"
        )),
        Err(Refused::Unavailable(why)) => info!("no live control: cannot use {path:?} ({why})"),
    }
}

/// Why there is no control file: something planted where it goes is worth a warning; a runtime
/// directory that cannot be used is the environment's business, said at `info`.
enum Refused {
    Unsafe(String),
    Unavailable(String),
}

/// Makes and maps the control file at `path`, in `dir` (made if missing): both must be ours,
/// and neither is ever followed through a symbolic link.
fn make(dir: &str, path: &str, euid: u32) -> Result<*mut u8, Refused> {
    let (cdir, cpath) = match (CString::new(dir), CString::new(path)) {
        (Ok(d), Ok(p)) => (d, p),
        _ => return Err(Refused::Unavailable("a NUL in the path".into())),
    };
    let os_error = || std::io::Error::last_os_error().to_string();
    // SAFETY: plain mkdir/lstat/unlink/open/ftruncate/mmap on NUL-terminated paths and our
    // own fd, closed before returning.
    unsafe {
        libc::mkdir(cdir.as_ptr(), 0o700);
        let mut st = std::mem::zeroed::<libc::stat>();
        if libc::lstat(cdir.as_ptr(), &mut st) != 0 {
            return Err(Refused::Unavailable(os_error()));
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Refused::Unsafe(format!(
                "{dir:?} is not a directory (a symbolic link?)"
            )));
        }
        if st.st_uid != euid || st.st_mode & 0o022 != 0 {
            return Err(Refused::Unsafe(format!(
                "{dir:?} belongs to another user or others may write in it"
            )));
        }
        if libc::lstat(cpath.as_ptr(), &mut st) == 0 {
            // Our own pid's file is left from an earlier process of that pid (or from this
            // program before it exec'd): stale, unless it is not a plain file of ours.
            if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != euid {
                return Err(Refused::Unsafe(
                    "it exists and is not our file (a symbolic link?)".into(),
                ));
            }
            libc::unlink(cpath.as_ptr());
        }
        let fd = libc::open(
            cpath.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | sys::OWN_FILE,
            0o600,
        );
        if fd < 0 {
            return Err(Refused::Unavailable(os_error()));
        }
        let map = if libc::ftruncate(fd, FILE_LEN as i64) == 0 {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        } else {
            libc::MAP_FAILED
        };
        let err = os_error();
        libc::syscall(libc::SYS_close, fd);
        if map == libc::MAP_FAILED {
            libc::unlink(cpath.as_ptr());
            return Err(Refused::Unavailable(err));
        }
        Ok(map.cast())
    }
}

/// The control file is needed from now on: at a TCP listener, accepted or connecting socket (a
/// process with only UDP or Unix sockets has nothing to control), and before a fork, so that
/// the workers share their parent's file. The first call makes it.
#[inline]
pub fn needed() {
    if !TRIED.load(Relaxed) {
        make_file();
    }
}

/// Before a new listener or connection takes its plan: puts a live change in force.
#[inline]
pub fn refresh() {
    let base = MAP.load(Relaxed);
    if base.is_null() {
        return;
    }
    let generation = word(base, live::GENERATION_AT).load(Acquire);
    if generation != SEEN.load(Relaxed) {
        apply(base, generation);
    }
}

#[cold]
fn apply(base: *mut u8, generation: u64) {
    // Odd: a writer is midway; the next connection will see its change.
    if generation % 2 == 1 || APPLYING.swap(true, Acquire) {
        return;
    }
    let len = (half(base, live::LIVE_LEN_AT).load(Acquire) as usize).min(live::LIVE_MAX);
    // SAFETY: within the mapping; a concurrent writer makes the generation differ below.
    let bytes = unsafe { std::slice::from_raw_parts(base.add(live::LIVE_AT), len) }.to_vec();
    if word(base, live::GENERATION_AT).load(Acquire) == generation {
        let changes = live::decode(&String::from_utf8_lossy(&bytes));
        let start = settings::start_vars();
        let vars = (!changes.is_empty()).then(|| live::laid_over(start, &changes));
        settings::replace(vars.as_deref());
        SEEN.store(generation, Relaxed);
        replan_listeners();
        info!(
            "live change {}: {}",
            generation / 2,
            if changes.is_empty() {
                "back to the start-up settings".into()
            } else {
                live::encode(&changes).trim_end().replace('\n', " ")
            }
        );
    }
    APPLYING.store(false, Release);
}

/// The listeners' plans for the connections they accept, and their own options, as the
/// settings now in force say; what the program set itself stays its own.
fn replan_listeners() {
    fdtable::for_each_tracked(|fd, slot, state| {
        if state.kind() != Kind::Listener {
            return;
        }
        let rule = slot.rule();
        let cfg = settings::for_socket(rule);
        let plan = policy::listen_plan(cfg, state.port(), state, sys::ephemeral_ports(), false);
        let mut applied = 0;
        let mut option = |want: Option<u32>, name, flag, program_set| {
            let on = state.has(flag);
            if state.has(program_set) {
                applied |= flag & state.0;
                return;
            }
            let value = want.unwrap_or(0);
            if (value > 0 || on) && sys::set_int(fd, libc::IPPROTO_TCP, name, value as i32).is_ok()
            {
                applied |= if value > 0 { flag } else { 0 };
            } else if on {
                applied |= flag;
            }
        };
        option(
            plan.defer_accept,
            libc::TCP_DEFER_ACCEPT,
            FdState::APPLIED_DEFER_ACCEPT,
            FdState::APP_DEFER,
        );
        option(
            plan.fastopen,
            libc::TCP_FASTOPEN,
            FdState::APPLIED_FASTOPEN,
            FdState::APP_FASTOPEN,
        );
        if !state.has(FdState::APP_QUICKACK)
            && state.has(FdState::QUICKACK_OFF) != plan.quickack_off
        {
            let quickack = i32::from(!plan.quickack_off);
            let _ = sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, quickack);
        }
        let state = plan.state.with(applied).with(state.flags(FdState::SHARED));
        slot.reset(state);
        slot.set_rule(rule);
        debug!("fd {fd}: listener re-planned after a live change");
    });
}

/// The tree's counters in the control file, while it has one.
pub fn counters() -> Option<&'static [AtomicU64; COUNTER_SLOTS]> {
    let base = MAP.load(Relaxed);
    // SAFETY: the counters lie within the mapping, 8-byte aligned (see `socktune_core::live`).
    (!base.is_null()).then(|| unsafe {
        &*base
            .add(live::COUNTERS_AT)
            .cast::<[AtomicU64; COUNTER_SLOTS]>()
    })
}

fn members(base: *mut u8) -> &'static [AtomicU32; live::MEMBERS] {
    // SAFETY: the members lie within the mapping, 4-byte aligned (see `socktune_core::live`).
    unsafe {
        &*base
            .add(live::MEMBERS_AT)
            .cast::<[AtomicU32; live::MEMBERS]>()
    }
}

/// Puts `pid` in a free member slot (none left: the file may outlive the tree).
fn join(base: *mut u8, pid: u32) {
    let _ = members(base)
        .iter()
        .find(|m| m.compare_exchange(0, pid, SeqCst, SeqCst).is_ok());
}

/// A forked child shares the file: one more member to wait for before removing it.
pub fn after_fork_in_child() {
    let base = MAP.load(Relaxed);
    if !base.is_null() {
        join(base, guard::pid());
    }
}

/// At exit: the last member of the tree to leave removes the file.
pub fn at_exit() {
    // A vfork child runs in our memory: the file is not its to remove.
    if guard::in_vfork_child() {
        return;
    }
    let base = MAP.swap(std::ptr::null_mut(), SeqCst);
    if base.is_null() {
        return;
    }
    let pid = guard::pid();
    let all = members(base);
    let _ = all
        .iter()
        .find(|m| m.compare_exchange(pid, 0, SeqCst, SeqCst).is_ok());
    if all.iter().all(|m| m.load(SeqCst) == 0) {
        if let Some(path) = PATH.get() {
            // SAFETY: a NUL-terminated path.
            unsafe { libc::unlink(path.as_ptr()) };
        }
    }
}

/// Removes the control files in `dir`, other than `own`, that are ours and that no member
/// process is alive to use: trees killed by a signal leave theirs.
fn sweep(dir: &str, own: &str, euid: u32) {
    let Ok(cdir) = CString::new(dir) else {
        return;
    };
    // SAFETY: opendir/readdir/closedir on a NUL-terminated path; each entry's name is read
    // before the next readdir.
    unsafe {
        let d = libc::opendir(cdir.as_ptr());
        if d.is_null() {
            return;
        }
        loop {
            let entry = libc::readdir(d);
            if entry.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()).to_string_lossy();
            let path = format!("{dir}/{name}");
            if name.ends_with(".ctl") && path != own && !in_use(&path, euid) {
                if let Ok(cpath) = CString::new(path) {
                    libc::unlink(cpath.as_ptr());
                }
            }
        }
        libc::closedir(d);
    }
}

/// Whether the control file at `path` is not ours to judge, or one of its members is alive.
fn in_use(path: &str, euid: u32) -> bool {
    let Ok(cpath) = CString::new(path) else {
        return true;
    };
    let mut pids = [0u32; live::MEMBERS];
    let mut magic = 0u64;
    // SAFETY: open/fstat/pread into local buffers of the sizes given; the fd is closed.
    unsafe {
        let fd = libc::open(cpath.as_ptr(), libc::O_RDONLY | sys::OWN_FILE);
        if fd < 0 {
            return true;
        }
        let mut st = std::mem::zeroed::<libc::stat>();
        let ours = libc::fstat(fd, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
            && st.st_uid == euid
            && libc::pread(fd, (&mut magic as *mut u64).cast(), 8, 0) == 8
            && magic == live::MAGIC
            && libc::pread(
                fd,
                pids.as_mut_ptr().cast(),
                4 * live::MEMBERS,
                live::MEMBERS_AT as i64,
            ) == (4 * live::MEMBERS) as isize;
        libc::syscall(libc::SYS_close, fd);
        if !ours {
            return true;
        }
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    pids.iter()
        .filter(|&&p| p != 0)
        .any(|&p| unsafe { libc::kill(p as i32, 0) == 0 || crate::errno::get() == libc::EPERM })
}
