//! The real libc functions behind our hooks: the bottom layer, which calls nothing of ours.
//!
//! Each is resolved once, on first use, with `dlsym(RTLD_NEXT)` (the stub's, where the stub
//! loaded us: the next library after it), and called through a typed pointer. A function this
//! glibc lacks is never a panic: the call fails with ENOSYS.

use libc::{
    c_char, c_int, c_uint, c_ulong, c_void, clockid_t, epoll_event, fd_set, iovec, msghdr, nfds_t,
    off64_t, off_t, pid_t, pollfd, posix_spawn_file_actions_t, posix_spawnattr_t, pthread_cond_t,
    pthread_mutex_t, sem_t, siginfo_t, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec,
    timeval, useconds_t,
};
use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering::Acquire, Ordering::Release};

/// One libc symbol, resolved on first use.
pub struct Symbol {
    name: &'static CStr,
    addr: AtomicUsize,
}

/// `addr` once dlsym found nothing.
const MISSING: usize = 1;

impl Symbol {
    pub const fn new(name: &'static CStr) -> Symbol {
        Symbol {
            name,
            addr: AtomicUsize::new(0),
        }
    }

    /// The function's address where it was looked up and found.
    #[inline(always)]
    pub fn resolved(&self) -> Option<*const c_void> {
        let a = self.addr.load(Acquire);
        (a > MISSING).then_some(a as *const c_void)
    }

    /// The function's address, or `None` if this libc has no such function.
    pub fn addr(&self) -> Option<*const c_void> {
        let mut a = self.addr.load(Acquire);
        if a == 0 {
            let p = match crate::stub::next() {
                // SAFETY: the stub's dlsym(RTLD_NEXT) with a NUL-terminated name.
                Some(next) => unsafe { next(self.name.as_ptr()) },
                // SAFETY: dlsym with a NUL-terminated name.
                None => unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) },
            };
            a = if p.is_null() { MISSING } else { p as usize };
            self.addr.store(a, Release);
        }
        (a != MISSING).then_some(a as *const c_void)
    }
}

/// What a call to a missing function returns: -1 with errno ENOSYS.
pub trait Missing {
    fn missing() -> Self;
}

impl Missing for c_int {
    fn missing() -> c_int {
        crate::errno::set(libc::ENOSYS);
        -1
    }
}

/// sleep(3), which every glibc has: were it missing, it would return at once.
impl Missing for c_uint {
    fn missing() -> c_uint {
        crate::errno::set(libc::ENOSYS);
        0
    }
}

impl Missing for ssize_t {
    fn missing() -> ssize_t {
        crate::errno::set(libc::ENOSYS);
        -1
    }
}

/// Declares `real::NAME(args)`: libc's NAME, resolved once and called through a typed pointer.
macro_rules! real_functions {
    ($($name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {$(
        #[allow(clippy::too_many_arguments, non_snake_case)]
        pub unsafe fn $name($($arg: $ty),*) -> $ret {
            static SYMBOL: Symbol = Symbol::new(
                match CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                    Ok(name) => name,
                    Err(_) => panic!("a symbol name has no NUL"),
                },
            );
            // Resolved: a tail call, with nothing saved around it (the lookup below would make
            // the compiler save registers on every call).
            if let Some(addr) = SYMBOL.resolved() {
                // SAFETY: dlsym found libc's function of this name, which has this signature.
                return unsafe {
                    std::mem::transmute::<*const c_void, unsafe extern "C" fn($($ty),*) -> $ret>(
                        addr,
                    )($($arg),*)
                };
            }
            #[cold]
            #[inline(never)]
            unsafe fn first_call($($arg: $ty),*) -> $ret {
                match SYMBOL.addr() {
                    // SAFETY: the caller's arguments; the symbol is resolved now.
                    Some(_) => unsafe { $name($($arg),*) },
                    None => <$ret as Missing>::missing(),
                }
            }
            // SAFETY: the caller's arguments.
            unsafe { first_call($($arg),*) }
        }
    )*};
}

real_functions! {
    socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    socketpair(domain: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int;
    listen(fd: c_int, backlog: c_int) -> c_int;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: socklen_t) -> c_int;
    getsockopt(fd: c_int, level: c_int, name: c_int, value: *mut c_void, len: *mut socklen_t) -> c_int;
    getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;

    read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    readv(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t;
    recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t;
    __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t;
    __recvfrom_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;

    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t;
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    sendfile(out: c_int, input: c_int, offset: *mut off_t, count: size_t) -> ssize_t;
    sendfile64(out: c_int, input: c_int, offset: *mut off64_t, count: size_t) -> ssize_t;
    splice(input: c_int, off_in: *mut off64_t, out: c_int, off_out: *mut off64_t, len: size_t, flags: c_uint) -> ssize_t;

    poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int;
    ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int;
    pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    epoll_wait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int;
    epoll_pwait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int;
    epoll_pwait2(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut epoll_event) -> c_int;

    pthread_cond_wait(cond: *mut pthread_cond_t, mutex: *mut pthread_mutex_t) -> c_int;
    pthread_cond_clockwait(cond: *mut pthread_cond_t, mutex: *mut pthread_mutex_t, clock: clockid_t, abstime: *const timespec) -> c_int;
    sem_wait(sem: *mut sem_t) -> c_int;
    sem_timedwait(sem: *mut sem_t, abstime: *const timespec) -> c_int;
    sem_clockwait(sem: *mut sem_t, clock: clockid_t, abstime: *const timespec) -> c_int;
    nanosleep(request: *const timespec, remain: *mut timespec) -> c_int;
    clock_nanosleep(clock: clockid_t, flags: c_int, request: *const timespec, remain: *mut timespec) -> c_int;
    usleep(usec: useconds_t) -> c_int;
    sleep(seconds: c_uint) -> c_uint;
    sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int;
    sigwaitinfo(set: *const sigset_t, info: *mut siginfo_t) -> c_int;
    sigtimedwait(set: *const sigset_t, info: *mut siginfo_t, timeout: *const timespec) -> c_int;

    close(fd: c_int) -> c_int;
    shutdown(fd: c_int, how: c_int) -> c_int;
    close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int;
    dup(fd: c_int) -> c_int;
    dup2(old: c_int, new: c_int) -> c_int;
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    // fcntl is variadic; its one optional argument travels in the same register as a third fixed
    // argument on Linux's x86-64 and AArch64 calling conventions, so it is passed on as a word.
    fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int;
    fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int;

    // clone is variadic; the three optional arguments travel as fixed ones would (x86-64).
    clone(f: *mut c_void, stack: *mut c_void, flags: c_int, arg: *mut c_void, ptid: *mut pid_t, tls: *mut c_void, ctid: *mut pid_t) -> c_int;
    _Fork() -> pid_t;

    execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    posix_spawn(pid: *mut pid_t, path: *const c_char, actions: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
    posix_spawnp(pid: *mut pid_t, file: *const c_char, actions: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int;
}

/// libc's `_exit` or `_Exit`; the exit_group system call if this libc has neither.
pub unsafe fn exit_via(symbol: &Symbol, status: c_int) -> ! {
    match symbol.addr() {
        // SAFETY: dlsym found glibc's _exit/_Exit, which has this signature.
        Some(addr) => unsafe {
            std::mem::transmute::<*const c_void, unsafe extern "C" fn(c_int) -> !>(addr)(status)
        },
        None => loop {
            // SAFETY: exit_group takes an int and does not return.
            unsafe { libc::syscall(libc::SYS_exit_group, status) };
        },
    }
}

/// For the trampolines of `hooks::fork`, which jump to the real function.
pub static VFORK: Symbol = Symbol::new(c"vfork");
pub static SYSCALL: Symbol = Symbol::new(c"syscall");

pub static EXIT: Symbol = Symbol::new(c"_exit");
pub static EXIT_UPPER: Symbol = Symbol::new(c"_Exit");
