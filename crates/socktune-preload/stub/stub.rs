//! libsocktune.so: the small library the loader maps into every process started under socktune.
//! It exports the shim's hooks as jumps through a table, and loads the shim itself
//! (libsocktune_shim.so, beside it) only when the process first does something the shim acts
//! on: a socket call, a fork, or an exec that must put the environment back (the list is
//! `hooks!`'s). A process that never does pays for this file and nothing else
//! (docs/architecture.md, "Start-up").
//!
//! Until then each hook jumps to libc's function. At load, with some `SOCKTUNE_*` set, the stub
//! copies those entries and argv\[0\]'s name, since a program may rewrite its environment and
//! argv before its first socket (nginx does); the shim reads them back through
//! [`socktune_start`]. Built by build.rs with `panic=abort`, without the standard library: that
//! library's own loading cost is what the stub exists to avoid.
#![no_std]
#![allow(non_upper_case_globals, clippy::missing_safety_doc)]

use core::arch::naked_asm;
use core::ffi::{c_char, c_int, c_long, c_void};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};

include!("../asm/ask_then_jump.rs");

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing in this file can panic (no indexing out of bounds, no unwrap); were it to, no
    // unwinder is linked.
    abort()
}

/// SIGABRT, as abort(3), by system calls: every function the stub imports costs each process a
/// symbol lookup at load, called or not (rustc binds them all then).
fn abort() -> ! {
    // SAFETY: getpid(2), kill(2) and exit_group(2) take plain numbers.
    unsafe {
        let pid = syscall3(39, 0, 0, 0);
        syscall3(62, pid as usize, 6, 0);
        syscall3(231, 134, 0, 0);
    }
    loop {}
}

// The precompiled core library's unwind tables name a personality routine; with `panic=abort`
// nothing unwinds, so it is never called. Hidden: exported, it would stand in for the real one
// of any Rust library in the program that looks it up dynamically.
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    "rust_eh_personality:",
    "ud2"
);

// The compiler's copies, fills and string lengths, in the stub itself and hidden (exported, they
// would stand in for libc's in the whole program): imported, each would cost a lookup at load.
core::arch::global_asm!(
    ".globl memcpy",
    ".hidden memcpy",
    "memcpy:",
    "mov rax, rdi",
    "mov rcx, rdx",
    "rep movsb",
    "ret",
    ".globl memset",
    ".hidden memset",
    "memset:",
    "mov r8, rdi",
    "mov eax, esi",
    "mov rcx, rdx",
    "rep stosb",
    "mov rax, r8",
    "ret",
    ".globl strlen",
    ".hidden strlen",
    "strlen:",
    "mov rax, rdi",
    "2:",
    "cmp byte ptr [rax], 0",
    "je 3f",
    "inc rax",
    "jmp 2b",
    "3:",
    "sub rax, rdi",
    "ret",
);

// Only what every process needs at load or at its first hook call; the rest (dlopen,
// dl_iterate_phdr, dlerror) is looked up when a process with settings needs it.
#[link(name = "c")]
extern "C" {
    fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
    fn getauxval(kind: u64) -> u64;
    fn __errno_location() -> *mut c_int;
    static environ: *const *const c_char;
    static program_invocation_short_name: *const c_char;
}

/// The start of glibc's `struct dl_phdr_info` (<link.h>).
#[repr(C)]
struct PhdrInfo {
    addr: usize,
    name: *const c_char,
    phdrs: *const Phdr,
    count: u16,
}

/// `Elf64_Phdr`.
#[repr(C)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    file_size: u64,
    memory_size: u64,
    align: u64,
}

const PT_LOAD: u32 = 1;

/// dl_iterate_phdr's callback: where the object `info` maps our code, its name into `found`
/// (a `*const c_char`), and 1 to stop.
unsafe extern "C" fn holds_us(info: *const PhdrInfo, _: usize, found: *mut c_void) -> c_int {
    // SAFETY: the loader passes its own record of one object, with `count` program headers.
    let info = unsafe { &*info };
    let phdrs = unsafe { core::slice::from_raw_parts(info.phdrs, info.count as usize) };
    let us = decide as usize;
    let holds = phdrs.iter().any(|p| {
        let start = info.addr.wrapping_add(p.vaddr as usize);
        p.kind == PT_LOAD && us >= start && us - start < p.memory_size as usize
    });
    if holds {
        // SAFETY: `found` is own_path's pointer.
        unsafe { *found.cast::<*const c_char>() = info.name };
    }
    holds as c_int
}

const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;
const RTLD_LAZY: c_int = 1;
const AT_SECURE: u64 = 23;
const SHIM: &[u8] = b"libsocktune_shim.so";
const PREFIX: &[u8] = b"SOCKTUNE_";

/// Read by `socktune doctor --pid` in the file a process has mapped.
#[no_mangle]
pub static SOCKTUNE_VERSION: &str = concat!("socktune-version=", env!("SOCKTUNE_VERSION"), "\0");

/// What the process started with, for the shim: a NULL-terminated array of its `SOCKTUNE_*`
/// entries, argv\[0\]'s name, the stub's absolute path, and the real and effective user and
/// group ids at load.
#[repr(C)]
pub struct Start {
    vars: *const *const c_char,
    argv0: *const c_char,
    lib_path: *const c_char,
    credentials: [u32; 4],
}

const MAX_VARS: usize = 128;
const TEXT: usize = 16384;
const PATH: usize = 4096;

struct Captured {
    start: Start,
    vars: [*const c_char; MAX_VARS + 1],
    text: [u8; TEXT],
    path: [u8; PATH],
}

static mut CAPTURED: Captured = Captured {
    start: Start {
        vars: core::ptr::null(),
        argv0: core::ptr::null(),
        lib_path: core::ptr::null(),
        credentials: [0; 4],
    },
    vars: [core::ptr::null(); MAX_VARS + 1],
    text: [0; TEXT],
    path: [0; PATH],
};

/// The start-up capture, or null where the stub found nothing set (the shim then reads the
/// environment itself, as when it is preloaded on its own).
#[no_mangle]
pub extern "C" fn socktune_start() -> *const Start {
    if MODE.load(SeqCst) == PLAIN {
        return core::ptr::null();
    }
    // SAFETY: written once by `decide`, before the mode left UNDECIDED; read-only after.
    unsafe { &raw const CAPTURED.start }
}

/// The function `name` that comes after us in the loader's order, for the shim's calls to the
/// real functions: dlopened, the shim's own next would skip a library preloaded after ours.
#[no_mangle]
pub unsafe extern "C" fn socktune_next(name: *const c_char) -> *mut c_void {
    // SAFETY: the shim passes a NUL-terminated name.
    unsafe { dlsym(RTLD_NEXT, name) }
}

// The process's mode. UNDECIDED until the constructor (or a hook called before it) decides.
const UNDECIDED: u8 = 0;
const DECIDING: u8 = 1;
/// Nothing set, secure execution, or the shim failed to load: every hook is libc's.
const PLAIN: u8 = 2;
/// Settings captured; the shim loads at the first trigger.
const WAITING: u8 = 3;
const LOADING: u8 = 4;
const LOADED: u8 = 5;
static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);
/// An exec hook loads the shim too: the environment it puts back is the shim's to build.
static EXEC_LOADS: AtomicU8 = AtomicU8::new(0);

macro_rules! hooks {
    ($($name:ident $trigger:literal $($direct:ident)?,)*) => {
        #[allow(non_camel_case_types, dead_code)]
        #[repr(usize)]
        enum Hook { $($name,)* }
        const NAMES: &[&[u8]] = &[$(concat!(stringify!($name), "\0").as_bytes(),)*];
        /// 1: loads the shim; 2: loads it where exec must put the environment back; 3: loads it,
        /// and is not the shim's hook.
        const TRIGGERS: &[u8] = &[$($trigger,)*];
        /// Hooks that send an fd the shim never kept a state for straight to libc.
        const DIRECT: &[bool] = &[$(direct!($($direct)?),)*];
        const COUNT: usize = NAMES.len();
        $( hook!($name $($direct)?); )*
    };
}

macro_rules! direct {
    () => {
        false
    };
    (direct) => {
        true
    };
}

/// A hook's jump through its table entry, or to [`slow_path`] with its index in r11 while the
/// entry is 0.
macro_rules! through_table {
    () => {
        concat!(
            "mov r11, qword ptr [rip + {table} + {offset}]\n", "test r11, r11\n", "jz 2f\n",
            "jmp r11\n", "2:\n", "mov r11d, {index}\n", "jmp {slow}"
        )
    };
}

/// A hook. A `direct` one (of the read and write family, whose first argument is an fd) first
/// sends an fd below [`TRACKED_LEN`] that the shim never kept a state for to libc's function
/// once [`REAL`] has it, as the shim's hook would: a file or a pipe costs one byte read and one
/// jump. r10 and r11 are scratch registers that no argument uses.
macro_rules! hook {
    ($name:ident) => {
        #[no_mangle]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            naked_asm!(
                through_table!(),
                table = sym TABLE,
                offset = const Hook::$name as usize * 8,
                index = const Hook::$name as usize,
                slow = sym slow_path,
            )
        }
    };
    ($name:ident direct) => {
        #[no_mangle]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            naked_asm!(
                concat!(
                    "mov r10d, edi\n", "cmp r10d, {last}\n", "ja 3f\n",
                    "lea r11, [rip + {tracked}]\n", "cmp byte ptr [r11 + r10], 0\n", "jne 3f\n",
                    "mov r11, qword ptr [rip + {real} + {offset}]\n", "test r11, r11\n",
                    "jz 3f\n", "jmp r11\n", "3:\n", through_table!()
                ),
                last = const TRACKED_LEN - 1,
                tracked = sym TRACKED,
                real = sym REAL,
                table = sym TABLE,
                offset = const Hook::$name as usize * 8,
                index = const Hook::$name as usize,
                slow = sym slow_path,
            )
        }
    };
}

// Every hook of the shim (tests/stub.rs keeps them equal), and three calls that only load it:
// fork, so that workers share what the shim sets up before it (the control file of `socktune
// ctl`, the process tree's page), and chroot and prctl, after which it may not be loadable.
// vfork loads it where an exec would: its child, which shares our memory, must not.
hooks! {
    socket 1, listen 1, accept 1, accept4 1, connect 1, clone 1, _Fork 1, fork 3, chroot 3, prctl 3,
    execve 2, execv 2, execvp 2, execvpe 2, posix_spawn 2, posix_spawnp 2,
    socketpair 0, getpeername 0, getsockopt 0, setsockopt 0, shutdown 0,
    read 0 direct, readv 0 direct, recv 0, recvfrom 0, recvmsg 0, __read_chk 0 direct,
    __recv_chk 0, __recvfrom_chk 0,
    write 0 direct, writev 0 direct, send 0, sendto 0, sendmsg 0, sendfile 0, sendfile64 0, splice 0,
    close 0, close_range 0, dup 0, dup2 0, dup3 0, fcntl 0, fcntl64 0,
    poll 0, __poll_chk 0, ppoll 0, select 0, pselect 0,
    epoll_ctl 0, epoll_wait 0, epoll_pwait 0, epoll_pwait2 0,
    nanosleep 0, clock_nanosleep 0, usleep 0, sleep 0, pthread_cond_wait 0,
    pthread_cond_clockwait 0, sem_wait 0, sem_timedwait 0, sem_clockwait 0,
    sigwait 0, sigwaitinfo 0, sigtimedwait 0,
    vfork 2, __vfork 2, syscall 0, _exit 0, _Exit 0,
}

/// Where each hook jumps: 0 until resolved, then libc's function or the shim's hook.
static TABLE: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];
/// libc's function for each hook once [`real`] looked it up, else 0.
static REAL: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];

/// One byte per fd below it: 1 once the shim kept a state for that fd number
/// ([`socktune_tracked`]), never reset (a stale 1 only sends a call through the shim, which
/// looks for itself). 64 KiB of zero pages, of which only those of fds in use are touched.
const TRACKED_LEN: usize = 1 << 16;
static TRACKED: [AtomicU8; TRACKED_LEN] = [const { AtomicU8::new(0) }; TRACKED_LEN];

/// Called by the shim before it keeps a state for `fd`: the `direct` hooks then send its calls
/// to the shim.
#[no_mangle]
pub extern "C" fn socktune_tracked(fd: c_int) {
    if let Some(byte) = usize::try_from(fd).ok().and_then(|i| TRACKED.get(i)) {
        byte.store(1, SeqCst);
    }
}

/// A hook whose table entry is 0, its index in r11: keeps the arguments (and rax, the vector
/// count of a variadic call), asks [`resolve`] where to go, and jumps there with no frame of
/// ours left (vfork's child returns on this stack).
#[unsafe(naked)]
unsafe extern "C" fn slow_path() {
    naked_asm!(ask_then_jump!("mov rdi, r11\n"), ask = sym resolve)
}

/// The address hook `index` jumps to now, errno untouched.
extern "C" fn resolve(index: usize) -> usize {
    // SAFETY: glibc's errno location for this thread.
    let errno = unsafe { *__errno_location() };
    let mut mode = MODE.load(SeqCst);
    if mode == UNDECIDED {
        decide();
        mode = MODE.load(SeqCst);
    }
    if DIRECT.get(index) == Some(&true) {
        real(index); // for the direct path
    }
    let loads = loads_shim(index);
    if mode == WAITING && loads {
        load();
    }
    let entry = TABLE.get(index);
    let mut target = entry.map_or(0, |e| e.load(SeqCst));
    if target == 0 {
        let seen = MODE.load(SeqCst);
        target = match seen {
            LOADED => shim_hook(index),
            _ => real(index),
        };
        // Kept for good unless this hook may still load the shim, or the shim is loading.
        let keep = match seen {
            PLAIN | LOADED => true,
            WAITING => !loads,
            _ => false,
        };
        if let Some(e) = entry.filter(|_| keep) {
            // `load` empties the table after leaving WAITING: an entry kept in between must go.
            if e.compare_exchange(0, target, SeqCst, SeqCst).is_ok() && MODE.load(SeqCst) != seen {
                let _ = e.compare_exchange(target, 0, SeqCst, SeqCst);
            }
        }
    }
    // SAFETY: as above.
    unsafe { *__errno_location() = errno };
    target
}

/// Whether a call of hook `index` loads the shim while it waits.
fn loads_shim(index: usize) -> bool {
    match TRIGGERS.get(index) {
        Some(1 | 3) => true,
        Some(2) => EXEC_LOADS.load(SeqCst) == 1,
        _ => false,
    }
}

/// libc's function `name` (NUL-terminated), looked up at its first use.
fn libc_fn(name: &[u8]) -> Option<*mut c_void> {
    // SAFETY: a NUL-terminated name.
    let addr = unsafe { dlsym(RTLD_NEXT, name.as_ptr().cast()) };
    (!addr.is_null()).then_some(addr)
}

/// libc's function for hook `index`; abort() if this libc has none (the program called a
/// function its libc lacks, which the loader would have refused without us).
fn real(index: usize) -> usize {
    let Some(cached) = REAL.get(index) else {
        abort()
    };
    let mut addr = cached.load(SeqCst);
    if addr == 0 {
        let Some(name) = NAMES.get(index) else {
            abort()
        };
        let Some(found) = libc_fn(name) else {
            abort()
        };
        addr = found as usize;
        cached.store(addr, SeqCst);
    }
    addr
}

/// Decides the mode, once: WAITING with the entries captured where some `SOCKTUNE_*` is set,
/// PLAIN otherwise.
extern "C" fn decide() {
    if MODE
        .compare_exchange(UNDECIDED, DECIDING, SeqCst, SeqCst)
        .is_err()
    {
        return;
    }
    // SAFETY: getauxval has no preconditions.
    let capture = if unsafe { getauxval(AT_SECURE) } != 0 {
        Capture::Nothing // setuid/setgid: a preload library must not act
    } else {
        // SAFETY: at load (or in the first hook call, before the program's main) nothing else
        // writes CAPTURED, and environ is glibc's NULL-terminated array.
        unsafe { capture() }
    };
    MODE.store(
        if capture == Capture::Nothing {
            PLAIN
        } else {
            WAITING
        },
        SeqCst,
    );
    if capture == Capture::Partial {
        load(); // could not capture it all: load the shim now, as a plain preload would
    }
}

#[derive(PartialEq)]
enum Capture {
    /// No `SOCKTUNE_*` entry.
    Nothing,
    /// Everything the shim needs, and our path.
    Whole,
    /// Not all of it fitted the buffers, or our path is unknown.
    Partial,
}

/// Copies the `SOCKTUNE_*` entries, argv\[0\]'s name, our path and the credentials.
unsafe fn capture() -> Capture {
    // The one place that writes it: a reference through a raw pointer, as a `static mut` needs.
    #[allow(clippy::deref_addrof)]
    let c = unsafe { &mut *(&raw mut CAPTURED) };
    let mut text = Writer {
        buf: &mut c.text,
        len: 0,
    };
    let mut count = 0;
    let mut whole = true;
    let mut env = unsafe { environ };
    while !env.is_null() {
        let entry = unsafe { *env };
        if entry.is_null() {
            break;
        }
        // SAFETY: a NUL-terminated entry; its length is read only where the prefix matched, as
        // most are not ours.
        if unsafe { has_prefix(entry, PREFIX) } {
            let bytes = unsafe { c_str(entry) };
            if bytes.starts_with(b"SOCKTUNE_INHERIT=") || bytes.starts_with(b"SOCKTUNE_CONFIG=")
            {
                EXEC_LOADS.store(1, SeqCst);
            }
            match (count < MAX_VARS, text.push(bytes)) {
                (true, Some(copy)) => {
                    if let Some(slot) = c.vars.get_mut(count) {
                        *slot = copy;
                    }
                    count += 1;
                }
                _ => whole = false,
            }
        }
        env = unsafe { env.add(1) };
    }
    if count == 0 && whole {
        return Capture::Nothing;
    }
    c.start.vars = c.vars.as_ptr();
    let name = unsafe { program_invocation_short_name };
    if !name.is_null() {
        match text.push(unsafe { c_str(name) }) {
            Some(copy) => c.start.argv0 = copy,
            None => whole = false,
        }
    }
    c.start.lib_path = own_path(&mut c.path);
    whole &= !c.start.lib_path.is_null();
    // SAFETY: these system calls take no arguments and cannot fail.
    c.start.credentials = unsafe {
        [
            sys0(102), // getuid
            sys0(107), // geteuid
            sys0(104), // getgid
            sys0(108), // getegid
        ]
    };
    if whole {
        Capture::Whole
    } else {
        Capture::Partial
    }
}

/// Writes bytes into a fixed buffer, always leaving a NUL after them.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    /// Extends the string being written; `None` (nothing written) if it does not fit.
    fn append(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        let room = self.buf.get_mut(self.len..end.checked_add(1)?)?;
        let (body, nul) = room.split_at_mut(bytes.len());
        body.copy_from_slice(bytes);
        nul.fill(0);
        self.len = end;
        Some(())
    }

    /// A NUL-terminated copy of `bytes` of its own: where it starts.
    fn push(&mut self, bytes: &[u8]) -> Option<*const c_char> {
        let start = self.len;
        self.append(bytes)?;
        self.len += 1; // past the NUL
        self.buf.get(start..).map(|b| b.as_ptr().cast())
    }
}

/// Whether the NUL-terminated string `p` starts with `prefix`, reading no further than either.
unsafe fn has_prefix(p: *const c_char, prefix: &[u8]) -> bool {
    prefix
        .iter()
        .enumerate()
        .all(|(i, &b)| unsafe { *p.add(i) } as u8 == b)
}

/// The bytes of a NUL-terminated string.
unsafe fn c_str<'a>(p: *const c_char) -> &'a [u8] {
    let mut n = 0;
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    unsafe { core::slice::from_raw_parts(p.cast(), n) }
}

/// This library's absolute path in `buf` (made absolute with the working directory at load:
/// the program may change it before the shim loads), or null.
fn own_path(buf: &mut [u8; PATH]) -> *const c_char {
    let Some(iterate) = libc_fn(b"dl_iterate_phdr\0") else {
        return core::ptr::null();
    };
    // SAFETY: libc's dl_iterate_phdr, with a callback that only reads what it is given. It
    // walks the few objects loaded so far; dladdr would search our symbol table as well.
    let iterate: unsafe extern "C" fn(
        unsafe extern "C" fn(*const PhdrInfo, usize, *mut c_void) -> c_int,
        *mut c_void,
    ) -> c_int = unsafe { core::mem::transmute(iterate) };
    let mut found: *const c_char = core::ptr::null();
    unsafe { iterate(holds_us, (&raw mut found).cast()) };
    if found.is_null() {
        return core::ptr::null();
    }
    // SAFETY: the loader's path is NUL-terminated and lives as long as the library.
    let name = unsafe { c_str(found) };
    let mut len = 0;
    if name.first() != Some(&b'/') {
        // SAFETY: getcwd(2) writes at most the length given.
        let n = unsafe { syscall3(79, buf.as_mut_ptr() as usize, PATH, 0) };
        if n <= 1 {
            return core::ptr::null();
        }
        len = n as usize - 1; // the count includes the NUL
        if let Some(b) = buf.get_mut(len) {
            *b = b'/';
        }
        len += 1;
    }
    let mut w = Writer { buf, len };
    match w.append(name) {
        Some(()) => buf.as_ptr().cast(),
        None => core::ptr::null(),
    }
}

/// Loads the shim from our directory and points every hook at it; on failure says so once and
/// leaves the hooks on libc's functions.
fn load() {
    if MODE
        .compare_exchange(WAITING, LOADING, SeqCst, SeqCst)
        .is_err()
    {
        return; // another thread loads it; until then its calls go to libc, as untracked
    }
    let mut path = [0u8; PATH];
    // Looked up before the dlopen: a dlsym after a failed one clears the error it would give.
    let dlerror = libc_fn(b"dlerror\0");
    let handle = match (shim_path(&mut path), libc_fn(b"dlopen\0")) {
        (Some(p), Some(dlopen)) => {
            // SAFETY: libc's dlopen, on a NUL-terminated path; the shim's constructor runs
            // inside. Lazy binding, as when the shim was preloaded itself.
            let dlopen: unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void =
                unsafe { core::mem::transmute(dlopen) };
            unsafe { dlopen(p, RTLD_LAZY) }
        }
        _ => core::ptr::null_mut(),
    };
    if handle.is_null() {
        let why = dlerror.map_or(core::ptr::null(), |dlerror| {
            // SAFETY: libc's dlerror; its message is NUL-terminated, or null.
            let dlerror: unsafe extern "C" fn() -> *const c_char =
                unsafe { core::mem::transmute(dlerror) };
            unsafe { dlerror() }
        });
        say_not_loaded(&path, why);
        MODE.store(PLAIN, SeqCst);
        return;
    }
    SHIM_HANDLE.store(handle as usize, SeqCst);
    // Each hook finds the shim's function at its next call: most programs use a few of them, and
    // a lookup costs about as much as the rest of loading per symbol.
    for entry in &TABLE {
        entry.store(0, SeqCst);
    }
    MODE.store(LOADED, SeqCst);
}

static SHIM_HANDLE: AtomicUsize = AtomicUsize::new(0);

/// The shim's function for hook `index` (for the calls that only load it, libc's).
fn shim_hook(index: usize) -> usize {
    let handle = SHIM_HANDLE.load(SeqCst) as *mut c_void;
    match (TRIGGERS.get(index), NAMES.get(index)) {
        (Some(&3), _) | (_, None) => real(index),
        // SAFETY: a NUL-terminated name, which the shim exports.
        (_, Some(name)) => match unsafe { dlsym(handle, name.as_ptr().cast()) } as usize {
            0 => real(index),
            addr => addr,
        },
    }
}

/// `<our directory>/libsocktune_shim.so` in `buf`.
fn shim_path(buf: &mut [u8; PATH]) -> Option<*const c_char> {
    let own = unsafe { CAPTURED.start.lib_path };
    if own.is_null() {
        return None;
    }
    let own = unsafe { c_str(own) };
    let dir = own.iter().rposition(|&b| b == b'/')? + 1;
    let mut w = Writer { buf, len: 0 };
    w.append(own.get(..dir)?)?;
    w.append(SHIM)?;
    Some(w.buf.as_ptr().cast())
}

/// One line on stderr, with the loader's reason `why` (dlerror's, or null), unless stderr is a
/// socket: an inetd-style server's client is there.
fn say_not_loaded(path: &[u8; PATH], why: *const c_char) {
    // SAFETY: fstat(2) into a buffer larger than struct stat.
    let mut st = [0u64; 32];
    if unsafe { syscall3(5, 2, st.as_mut_ptr() as usize, 0) } == 0 {
        let mode = (st[3] & 0xffff_ffff) as u32; // st_mode, after st_dev, st_ino, st_nlink
        if mode & 0o170000 == 0o140000 {
            return;
        }
    }
    let mut line = [0u8; PATH + 512];
    let mut w = Writer {
        buf: &mut line,
        len: 0,
    };
    let path_len = path.iter().position(|&b| b == 0).unwrap_or(0);
    let why = if why.is_null() {
        &b"not found"[..]
    } else {
        unsafe { c_str(why) }
    };
    let parts: [&[u8]; 5] = [
        b"socktune: could not load ",
        path.get(..path_len).unwrap_or(b""),
        b" (",
        why,
        b"); socktune is off in this process\n",
    ];
    for part in parts {
        let _ = w.append(part);
    }
    let len = w.len;
    // SAFETY: write(2) of our own buffer.
    unsafe { syscall3(1, 2, line.as_ptr() as usize, len) };
}

unsafe fn sys0(nr: c_long) -> u32 {
    unsafe { syscall3(nr, 0, 0, 0) as u32 }
}

/// A raw system call: the stub's own calls must not go through its hooks.
unsafe fn syscall3(nr: c_long, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes a valid system call and arguments.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = decide;
