//! Thin, typed wrappers over the system calls the shim makes on its own behalf.
//!
//! Anything that could land in one of our hooks goes through [`crate::real`]; the calls we do
//! not intercept (getsockname, ioctl) go straight to libc.

use crate::{errno, real, stub};
use libc::{c_int, socklen_t};
use socktune_core::state::Kind;
use std::ffi::CStr;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, SocketAddr};

/// setsockopt with an int value, through the real function; `Err(errno)` on failure.
pub fn set_int(fd: c_int, level: c_int, name: c_int, value: c_int) -> Result<(), c_int> {
    let len = size_of::<c_int>() as socklen_t;
    // SAFETY: `value` outlives the call and `len` is its size.
    let r = unsafe { real::setsockopt(fd, level, name, (&value as *const c_int).cast(), len) };
    if r == 0 {
        Ok(())
    } else {
        Err(errno::get())
    }
}

/// setsockopt with a byte string (TCP_CONGESTION), through the real function.
pub fn set_bytes(fd: c_int, level: c_int, name: c_int, value: &[u8]) -> Result<(), c_int> {
    // SAFETY: `value` outlives the call and its length is passed.
    let r = unsafe {
        real::setsockopt(
            fd,
            level,
            name,
            value.as_ptr().cast(),
            value.len() as socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(errno::get())
    }
}

fn get<T: Copy>(fd: c_int, level: c_int, name: c_int) -> Option<T> {
    get_len(fd, level, name).map(|(value, _)| value)
}

/// getsockopt into a zeroed `T`, with the length the kernel filled.
fn get_len<T: Copy>(fd: c_int, level: c_int, name: c_int) -> Option<(T, usize)> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: the buffer is `len` bytes; the kernel writes at most that many.
    let r = unsafe { real::getsockopt(fd, level, name, value.as_mut_ptr().cast(), &mut len) };
    // SAFETY: zero-initialised, and the kernel filled what it had.
    (r == 0).then(|| (unsafe { value.assume_init() }, len as usize))
}

pub fn get_int(fd: c_int, level: c_int, name: c_int) -> Option<c_int> {
    get::<c_int>(fd, level, name)
}

pub fn tcp_info(fd: c_int) -> Option<libc::tcp_info> {
    get::<libc::tcp_info>(fd, libc::IPPROTO_TCP, libc::TCP_INFO)
}

/// TCP_INFO as the kernel filled it.
pub struct TcpInfo {
    pub info: libc::tcp_info,
    /// How much this kernel filled: an older one fills less, and the fields past it are zeros,
    /// not figures.
    pub len: usize,
    /// The byte glibc's struct leaves as padding: `tcpi_delivery_rate_app_limited` (bit 0) and
    /// `tcpi_fastopen_client_fail` (bits 1-2).
    pub fastopen_bits: u8,
}

/// The raw bytes, aligned for the struct.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct RawInfo([u8; size_of::<libc::tcp_info>()]);

pub fn tcp_info_filled(fd: c_int) -> Option<TcpInfo> {
    let (raw, len) = get_len::<RawInfo>(fd, libc::IPPROTO_TCP, libc::TCP_INFO)?;
    Some(TcpInfo {
        // SAFETY: the bytes of a plain C struct of integers, every pattern valid.
        info: unsafe { std::ptr::read(raw.0.as_ptr().cast()) },
        len,
        fastopen_bits: raw.0[7],
    })
}

/// The TCP state number (`TCP_SYN_SENT` is 2).
pub fn tcp_state(fd: c_int) -> Option<u8> {
    tcp_info(fd).map(|i| i.tcpi_state)
}

// The kernel's TCP state numbers (include/net/tcp_states.h).
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_SYN_SENT: u8 = 2;
pub const TCP_SYN_RECV: u8 = 3;
pub const TCP_CLOSE_WAIT: u8 = 8;

/// A Fast Open connect() whose SYN waits for data: in SYN-SENT with nothing sent yet.
pub fn syn_deferred(fd: c_int) -> bool {
    tcp_info(fd).is_some_and(|i| i.tcpi_state == TCP_SYN_SENT && i.tcpi_segs_out == 0)
}

/// An accepted Fast Open connection whose handshake ACK has not come yet.
pub fn handshake_pending(fd: c_int) -> bool {
    tcp_state(fd) == Some(TCP_SYN_RECV)
}

/// A fresh anonymous mapping of `len` zero bytes, private, or shared with the processes forked
/// from this one.
pub fn map_zeroed(len: usize, shared: bool) -> Option<*mut libc::c_void> {
    let sharing = if shared {
        libc::MAP_SHARED
    } else {
        libc::MAP_PRIVATE
    };
    // SAFETY: a new mapping where the kernel picks; nothing existing is touched.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            sharing | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (map != libc::MAP_FAILED).then_some(map)
}

/// A millisecond clock that costs no system call (CLOCK_MONOTONIC_COARSE, from the vDSO); it
/// wraps after 49 days, so only differences of it mean anything.
pub fn coarse_ms() -> u32 {
    clock_ms(libc::CLOCK_MONOTONIC_COARSE)
}

/// Milliseconds on `clock` (from the vDSO for the monotonic clocks), wrapping as [`coarse_ms`].
pub fn clock_ms(clock: libc::clockid_t) -> u32 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(clock, &mut t) };
    (t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000) as u32
}

/// Releases our TCP_CORK: what it held leaves, the tail at once since nodelay is on.
pub fn uncork(fd: c_int) -> Result<(), c_int> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK, 0)
}

/// Sends what MSG_MORE writes left pending: setting TCP_NODELAY pushes pending frames, also
/// when it is on already (the kernel's `__tcp_sock_set_nodelay`).
pub fn push(fd: c_int) -> Result<(), c_int> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// Makes an armed Fast Open socket send its SYN now, with no data and without blocking.
pub fn kick_syn(fd: c_int) {
    // SAFETY: a zero-length send reads no memory.
    unsafe {
        real::send(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}

/// The peer address of a connecting socket, which getpeername refuses until the handshake is
/// done: SO_PEERNAME asks the kernel without that check, for the exact size of the family's
/// address. Returns the address and its length.
pub fn connecting_peer(fd: c_int) -> Option<(libc::sockaddr_storage, socklen_t)> {
    let len = match get_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)? {
        libc::AF_INET => size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
        _ => return None,
    } as socklen_t;
    let mut ss = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut got = len;
    // SAFETY: the buffer is a sockaddr_storage, larger than `len`.
    let r = unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERNAME,
            ss.as_mut_ptr().cast(),
            &mut got,
        )
    };
    // SAFETY: zero-initialised, and the kernel wrote the address.
    (r == 0).then(|| (unsafe { ss.assume_init() }, got))
}

/// The socket is in non-blocking mode (fcntl through the raw syscall: fcntl is hooked).
pub fn nonblocking(fd: c_int) -> bool {
    // SAFETY: F_GETFL reads the fd's flags.
    let flags = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    flags >= 0 && flags as c_int & libc::O_NONBLOCK != 0
}

/// A read now would not wait: data, the peer's FIN or an error is there.
pub fn readable_now(fd: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one pollfd on our stack, no wait.
    unsafe { real::poll(&mut p, 1, 0) > 0 }
}

/// Waits up to `ms` for a connecting socket to finish its handshake (or fail).
pub fn wait_connected(fd: c_int, ms: c_int) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd on our stack.
    unsafe { real::poll(&mut p, 1, ms) };
}

/// Sends a delayed ACK now and re-enters delayed-ACK mode: quickack on sends what is due.
pub fn ack_now(fd: c_int) -> Result<(), c_int> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1)?;
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 0)
}

/// shutdown(SHUT_WR) on the shim's own behalf: the FIN leaves with any corked data. False if
/// the kernel refused it.
pub fn shutdown_write(fd: c_int) -> bool {
    // SAFETY: a raw syscall on an fd number; it cannot reach our hooks.
    unsafe { libc::syscall(libc::SYS_shutdown, fd, libc::SHUT_WR) == 0 }
}

/// Bytes received and not yet read.
pub fn unread_bytes(fd: c_int) -> usize {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r == 0 {
        n.max(0) as usize
    } else {
        0
    }
}

/// The port in an IPv4 or IPv6 socket address.
pub fn sockaddr_port(addr: *const libc::sockaddr, len: socklen_t) -> Option<u16> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family is readable; each arm checks the length of its own struct.
    unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
                Some(u16::from_be((*addr.cast::<libc::sockaddr_in>()).sin_port))
            }
            libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
                Some(u16::from_be((*addr.cast::<libc::sockaddr_in6>()).sin6_port))
            }
            _ => None,
        }
    }
}

/// The address and port in an IPv4 or IPv6 socket address.
pub fn sockaddr_ip(addr: *const libc::sockaddr, len: socklen_t) -> Option<SocketAddr> {
    let port = sockaddr_port(addr, len)?;
    // SAFETY: sockaddr_port checked the family and that its whole struct is there.
    let ip = unsafe {
        match c_int::from((*addr).sa_family) {
            libc::AF_INET => IpAddr::from(
                (*addr.cast::<libc::sockaddr_in>())
                    .sin_addr
                    .s_addr
                    .to_ne_bytes(),
            ),
            _ => IpAddr::from((*addr.cast::<libc::sockaddr_in6>()).sin6_addr.s6_addr),
        }
    };
    Some(SocketAddr::new(ip, port))
}

/// The peer's address, for rules by peer.
pub fn peer_addr(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: passed on a sockaddr_storage and its size.
    address(|a, l| unsafe { real::getpeername(fd, a, l) })
}

pub fn is_ipv6(fd: c_int) -> bool {
    get_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN) == Some(libc::AF_INET6)
}

pub fn local_port(fd: c_int) -> Option<u16> {
    // SAFETY: as above.
    address(|a, l| unsafe { libc::getsockname(fd, a, l) }).map(|a| a.port())
}

pub fn peer_port(fd: c_int) -> Option<u16> {
    peer_addr(fd).map(|a| a.port())
}

fn address(name: impl FnOnce(*mut libc::sockaddr, *mut socklen_t) -> c_int) -> Option<SocketAddr> {
    let mut ss = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    if name(ss.as_mut_ptr().cast(), &mut len) != 0 {
        return None;
    }
    sockaddr_ip(ss.as_ptr().cast(), len)
}

/// The kernel's ephemeral port range, read once (Linux's default if it cannot be read).
pub fn ephemeral_ports() -> socktune_core::policy::PortRange {
    static RANGE: once_cell::sync::OnceCell<(u16, u16)> = once_cell::sync::OnceCell::new();
    *RANGE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
        let mut ends = text
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(str::parse);
        match (ends.next(), ends.next()) {
            (Some(Ok(low)), Some(Ok(high))) => (low, high),
            _ => (32768, 60999),
        }
    })
}

/// The socket type without the SOCK_NONBLOCK and SOCK_CLOEXEC flags socket() also takes.
const SOCK_TYPE_MASK: c_int = 0xf;

pub fn is_tcp(domain: c_int, ty: c_int, protocol: c_int) -> bool {
    matches!(domain, libc::AF_INET | libc::AF_INET6)
        && ty & SOCK_TYPE_MASK == libc::SOCK_STREAM
        && (protocol == 0 || protocol == libc::IPPROTO_TCP)
}

/// What an fd we never saw created is: `None` if it is not a socket at all.
pub fn classify(fd: c_int) -> Option<Kind> {
    let domain = get_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let ty = get_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let protocol = get_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL)?;
    Some(if is_tcp(domain, ty, protocol) {
        Kind::Tcp
    } else {
        Kind::Other
    })
}

pub fn is_listening(fd: c_int) -> bool {
    get_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(1)
}

/// How the shim opens its own files: never inherited by the program's children, and never
/// through a symbolic link, which someone else could have planted where a privileged server
/// writes.
pub const OWN_FILE: c_int = libc::O_CLOEXEC | libc::O_NOFOLLOW;

/// The flags of a clone3 call's `struct clone_args` (its first field), or `None` if there are
/// none to read: copied by the kernel, so that a bad pointer fails here as the kernel fails it.
pub fn clone3_flags(args: usize, size: usize) -> Option<u64> {
    if args == 0 || size < size_of::<u64>() {
        return None;
    }
    let mut flags = 0u64;
    let local = libc::iovec {
        iov_base: (&mut flags as *mut u64).cast(),
        iov_len: size_of::<u64>(),
    };
    let remote = libc::iovec {
        iov_base: args as *mut libc::c_void,
        iov_len: size_of::<u64>(),
    };
    // SAFETY: reads 8 bytes of our own memory into `flags`; an unmapped address is an error.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == size_of::<u64>() as isize).then_some(flags)
}

/// First integer in a /proc file, read without std I/O (which would go through our hooks).
pub fn read_proc_int(path: &CStr) -> Option<i64> {
    // SAFETY: plain open/read/close on a NUL-terminated path into a stack buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let mut buf = [0u8; 32];
        let n = libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len());
        libc::syscall(libc::SYS_close, fd);
        let text = std::str::from_utf8(buf.get(..usize::try_from(n).ok()?)?).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

mod glibc {
    extern "C" {
        pub static environ: *const *const libc::c_char;
        /// The basename of argv\[0\], set by glibc before any constructor runs.
        pub static program_invocation_short_name: *const libc::c_char;
    }
}

/// The basename of the program's argv\[0\].
pub fn argv0_basename() -> Option<String> {
    // SAFETY: glibc sets it once at start to a NUL-terminated string (or leaves it null); the
    // stub's copy of it is never written again.
    let name = stub::start().map_or_else(
        || unsafe { glibc::program_invocation_short_name },
        |s| s.argv0,
    );
    if name.is_null() {
        return None;
    }
    // SAFETY: non-null, so NUL-terminated and never freed.
    let name = unsafe { CStr::from_ptr(name) };
    Some(name.to_string_lossy().into_owned())
}

/// The process has never started a second thread.
pub fn single_threaded() -> bool {
    // Looked up, not linked: glibc has it from 2.32 on; false before.
    // SAFETY: dlsym with a NUL-terminated name.
    let flag = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) };
    // SAFETY: glibc's flag, a byte it sets before main and clears at the first thread.
    !flag.is_null() && unsafe { *flag.cast::<libc::c_char>() } != 0
}

/// glibc's `environ`: the process's current environment.
pub fn environ() -> *const *const libc::c_char {
    // SAFETY: reading the pointer itself; what it points to is the caller's to read with care.
    unsafe { glibc::environ }
}

/// The process's environment entries (`NAME=value`) that start with `prefix`, read in place.
///
/// # Safety
/// Nothing may change the environment while the iterator is in use.
pub unsafe fn environ_entries(
    prefix: &'static [u8],
) -> impl Iterator<Item = &'static [u8]> + Clone {
    let env = stub::start().map_or_else(environ, |s| s.vars);
    (0..)
        // SAFETY: a non-null environ is NULL-terminated; the walk stops at that NULL.
        .map_while(move |i| (!env.is_null()).then(|| unsafe { *env.add(i) }))
        .take_while(|entry| !entry.is_null())
        .filter(move |&entry| {
            // SAFETY: stops at the first byte that differs, at the latest the entry's NUL.
            prefix
                .iter()
                .enumerate()
                .all(|(i, &b)| unsafe { *entry.add(i) } as u8 == b)
        })
        // SAFETY: each entry is a NUL-terminated string that lives as long as the environment.
        .map(|entry| unsafe { CStr::from_ptr(entry) }.to_bytes())
}

/// The fds a message carries by SCM_RIGHTS: those a recvmsg() that succeeded put into this
/// process, or a sendmsg() hands to another.
pub fn passed_fds(msg: &libc::msghdr, mut each: impl FnMut(c_int)) {
    if msg.msg_control.is_null() || msg.msg_controllen == 0 {
        return;
    }
    // SAFETY: the control buffer the program passed, of the length the kernel set (recvmsg) or
    // the program gave and the kernel accepted (sendmsg); the CMSG_* walk stays inside it.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(msg);
        while let Some(h) = header.as_ref() {
            if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(h);
                let bytes = h
                    .cmsg_len
                    .saturating_sub(data.offset_from(header.cast()) as usize);
                for i in 0..bytes / size_of::<c_int>() {
                    each(std::ptr::read_unaligned(data.cast::<c_int>().add(i)));
                }
            }
            header = libc::CMSG_NXTHDR(msg, header);
        }
    }
}
