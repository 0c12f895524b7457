//! Cork per response, with MSG_MORE. Every write of a response goes with MSG_MORE, so the
//! kernel sends its full segments and holds the partial last one; the response's boundary pushes
//! that tail with one setsockopt(TCP_NODELAY=1) (setting nodelay pushes pending frames even when
//! it is already on), and the fd is marked as holding data until then. A boundary is a read on
//! the fd, a wait (poll/select/epoll, or a blocking call) by the thread that wrote, shutdown,
//! close, or the program taking cork or nodelay over. The flusher pushes anything held longer
//! than `SOCKTUNE_CORK_FLUSH_MS`, for programs that write and then wait on something else.
//!
//! A write the program makes in one piece where that is the whole response (see
//! [`policy::holds_write`]) goes as written and costs no call; so does one that cannot carry
//! MSG_MORE (sendfile), which pushes what the response held before it by itself, and the write
//! that completes the length an HTTP/1 head declared on a connection that stays open
//! ([`framing`]): nothing of that response is left to wait for, so the next read's push would
//! only cost a call and a wait. A server's response that closes its connection rides on the FIN,
//! as a hand-tuned server's corked close does. On a port whose program was seen to close (or
//! shut down) right after such a response's last write, the shim sends that FIN itself with the
//! last write ([`FdState::FIN_SENT`]): the client has all of it at once, instead of after the
//! work a Perl or Python server does between its last write and its close (30 µs a connection
//! for plackup, a tenth of its requests/s). The first connection on a port is held until its
//! close, and shows it.
//!
//! On a connection learnt to send whole responses, a response's first write goes as written and
//! its head is not read: only pipelining needed its length, and the next write's first bytes
//! tell whether it begins a response of its own ([`policy::learned_whole`]).

use crate::fdtable::{self, Slot};
use crate::log::{debug, info};
use crate::settings::config;
use crate::{errno, flusher, guard, real, sys, track};
use libc::{c_int, c_void, msghdr, ssize_t};
use socktune_core::framing;
use socktune_core::policy::{self, CloseAction, ShutdownAction, ThreadBoundary};
use socktune_core::state::{FdState, Kind};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

/// How one write of a response goes out.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(Debug))]
pub enum WriteAs {
    /// As the program wrote it.
    #[default]
    Written,
    /// As written, and it pushes what the response held before it: the hold ends once it sent.
    Pushing,
    /// With MSG_MORE, held until the response's boundary ([`send_held`]).
    Held,
    /// Not at all: it comes after the FIN the shim sent ([`wrote_after_fin`]).
    Dropped,
}

/// Before a write-family call of `len` bytes on a connection we cork. `gathered`: the call hands
/// over several buffers at once; `can_hold`: it can carry MSG_MORE.
pub fn before_write(fd: c_int, slot: Slot, len: usize, gathered: bool, can_hold: bool) -> WriteAs {
    end_other_response(fd);
    let (before, _) = slot.update(FdState::wrote_in_response);
    let total = slot.add_response_bytes(len);
    if policy::learned_whole(before) && !slot.is_held() {
        slot.skip_head();
        debug!("fd {fd}: sent as written (this connection's responses leave in one write)");
        return WriteAs::Written;
    }
    if !before.has(FdState::IN_RESPONSE) {
        slot.mark_head_unread();
    }
    // A closing response's last write goes held, for the FIN to ride on it.
    let complete = slot.response_complete(total) && !before.has(FdState::CLOSING);
    let past_mss = || total >= policy::MIN_MSS && policy::past_one_segment(total, mss(fd, slot));
    let port_learned = !before.has(FdState::ENDED_RESPONSE) && WRITES_WHOLE.recalls(before.port());
    let held = slot.is_held();
    if complete
        || !policy::holds_write(
            before,
            gathered,
            can_hold && !past_mss(),
            port_learned,
            held,
        )
    {
        if complete {
            response_ended(slot); // the next write, pipelined or not, starts a new response
        }
        if complete && held {
            debug!("fd {fd}: the response is as long as its head said: it leaves now");
        } else {
            debug!(
                "fd {fd}: sent as written (a whole response in one write, or one that cannot wait)"
            );
        }
        return if held {
            WriteAs::Pushing
        } else {
            WriteAs::Written
        };
    }
    let now = flusher::now();
    LAST_HELD.set(fd);
    if slot.mark_held(now, guard::thread_token()) {
        // Nothing would bound the wait of a hold where the flusher cannot run and the thread is
        // no event loop: such a process's writes go as written.
        if BOUNDARY.get().needs_flusher() && !flusher::wake_by(now, config().cork_flush_ms) {
            slot.take_held();
            no_flusher();
            return WriteAs::Written;
        }
        cork_before_handshake_ack(fd, slot, before);
        debug!("fd {fd}: a new response, held until its boundary");
    }
    WriteAs::Held
}

/// The first write of a response on a connection learnt to send whole responses, made where no
/// hold anywhere could be this thread's to end: it goes as written, and all it changes is the
/// fd's own entry, in a few atomics with no call, no allocation and errno untouched. The hook
/// makes it without [`guard::act`], whose thread-local, errno and unwind guard would cost more
/// than this (Redis under cork: 652 -> 337 instructions added a request, with
/// [`read_ends_unheld`]). `false`: [`before_write`] decides.
#[inline]
pub fn writes_learnt_whole(slot: Slot, state: FdState, len: usize) -> bool {
    let logs = crate::log::enabled(socktune_core::config::Level::Debug); // the guarded way says so
    if !state.corks() || !policy::learned_whole(state) || fdtable::held_count() != 0 || logs {
        return false;
    }
    slot.update(FdState::wrote_in_response);
    slot.add_response_bytes(len);
    slot.skip_head(); // the write after it, if any before a read, is then told by its first bytes
    true
}

/// After a write the kernel took, of which `accepted` is what it took of the first buffer
/// (`whole`: whether it took all of the write, asked only of a closing response's write): the first write of a response says what length its
/// HTTP/1 head declares ([`framing`]). Read only once the kernel has taken the bytes, so that a
/// program's bad buffer gets its EFAULT from the kernel, as without the shim, never a fault in
/// the shim. A first write that is the whole response leaves at once if it was held; a closing
/// one leaves with its FIN where the port's program closes right after.
pub fn after_write(fd: c_int, slot: Slot, accepted: &[u8], whole: impl FnOnce() -> bool) {
    if slot.take_head_unread() {
        read_head(fd, slot, accepted);
    } else if slot.head_skipped() {
        after_skipped_head(slot, accepted);
    }
    let state = slot.load();
    if state.has(FdState::CLOSING)
        && slot.response_complete(slot.response_bytes())
        && CLOSES_AT_END.recalls(state.port())
        && whole()
    {
        send_fin(fd, slot, state);
    }
}

fn read_head(fd: c_int, slot: Slot, accepted: &[u8]) {
    let Some(declared) = framing::declared(accepted) else {
        return;
    };
    let closing = declared.closes;
    if closing && slot.load().kind() != Kind::Server {
        return; // a client's HTTP/1.0 request: its connection stays open for the response
    }
    slot.set_response_end(declared.len);
    if closing {
        slot.set(FdState::CLOSING);
    } else if slot.response_complete(slot.response_bytes()) {
        if slot.take_held() {
            release(fd, slot, "the response is as long as its head said");
        } else {
            response_ended(slot);
        }
    }
}

/// A write of a response whose first write went whole without its head read: if it is the
/// second, and begins an HTTP message of its own, the program pipelines whole responses and the
/// new one's head is skipped too; any other second write splits the response, whose length then
/// stays unknown.
fn after_skipped_head(slot: Slot, accepted: &[u8]) {
    let state = slot.load();
    if !state.has(FdState::SPLIT) {
        return; // the first write itself
    }
    let begins = match state.kind() {
        Kind::Server => framing::begins_response(accepted),
        _ => framing::begins_request(accepted),
    };
    if begins {
        slot.update(FdState::began_next_message);
    } else {
        slot.set_response_end(0);
    }
}

/// The held, closing response is complete on a port whose program closes right after: the FIN
/// leaves with it now. Not where the socket may live on elsewhere (a shared one), where the
/// program asked for a reset (SO_LINGER), or where TCP_CORK holds it for a handshake's ACK.
fn send_fin(fd: c_int, slot: Slot, state: FdState) {
    if state.has(FdState::SHARED | FdState::LINGER | FdState::CORKED) || !slot.take_held() {
        return;
    }
    response_ended(slot);
    if sys::shutdown_write(fd) {
        slot.set(FdState::FIN_SENT);
        debug!("fd {fd}: the closing response is complete: it leaves with its FIN");
    } else if let Err(e) = push(fd, slot) {
        track::forget_if_gone(slot, e);
    }
}

/// Whether the connection holds a closing response, whole and with nothing past its end: what
/// its close (or shutdown) would say of the program, for [`CLOSES_AT_END`].
fn holds_whole_closing(slot: Slot, state: FdState) -> bool {
    state.has(FdState::CLOSING) && slot.response_exact()
}

/// A write after the FIN that the shim sent: the program wrote past the length its response
/// declared. The kernel would refuse it (EPIPE, SIGPIPE), where without the shim it would have
/// been sent after a response the client had read whole: it is taken and dropped, and this
/// port's responses wait for their close again.
pub fn wrote_after_fin(fd: c_int, state: FdState) {
    CLOSES_AT_END.remember(state.port(), false);
    info!(
        "fd {fd}: the program wrote past the end of its closing response, after the FIN left with it: port {}'s responses keep their FIN for the close from now on",
        state.port()
    );
}

thread_local! {
    /// The connection this thread last held a write on (-1: none).
    static LAST_HELD: Cell<c_int> = const { Cell::new(-1) };
    /// Whether this thread's holds wake the flusher ([`ThreadBoundary`]).
    static BOUNDARY: Cell<ThreadBoundary> = const { Cell::new(ThreadBoundary::Unknown) };
}

/// Says once per process that the flusher thread could not be started.
fn no_flusher() {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, SeqCst) {
        info!(
            "the flusher thread cannot be started (RLIMIT_NPROC?): writes go as written, except in event loops"
        );
    }
}

/// The thread waits for events (poll, select, epoll): see [`ThreadBoundary`].
#[inline(always)]
pub fn thread_waits_for_events() {
    BOUNDARY.with(|b| b.set(b.get().after_wait()));
}

/// A hold of this thread ended at its own boundary: was that later than the flusher would have
/// pushed it?
fn note_boundary(slot: Slot) {
    let boundary = BOUNDARY.get();
    let (since, by) = slot.hold_stamp();
    if boundary.needs_flusher() || by != guard::thread_token() {
        return;
    }
    let after = boundary.after_release(flusher::now().wrapping_sub(since), config().cork_flush_ms);
    if after != boundary {
        debug!("this thread's boundary came late: the flusher bounds its holds from now on");
        BOUNDARY.set(after);
    }
}

/// A thread that writes to another connection has finished the response it held on the last
/// one: an event loop answering a batch of requests (nginx's ~60 per epoll_wait), or an FTP
/// server that sends its 150 reply on the control connection and then the file on the data
/// connection, while the client waits for that reply. A read on another connection is no such
/// sign: a proxy reads its backend between a response's header and its body.
fn end_other_response(fd: c_int) {
    let last = LAST_HELD.replace(-1);
    if last < 0 || last == fd {
        return;
    }
    let Some(slot) = fdtable::lookup(last) else {
        return;
    };
    if slot.held_by() == Some(guard::thread_token()) && slot.take_held() {
        release(last, slot, "the thread writes another connection");
    }
}

/// A Fast Open connection's first response may be written while the connection still waits for
/// the handshake's ACK, whose arrival would push a partial segment MSG_MORE holds: that response
/// is held by TCP_CORK instead (two calls, on that response only). The TCP_INFO that tells also
/// gives the MSS (`tcpi_snd_mss` is what TCP_MAXSEG reads), so [`mss`] needs no call of its own.
fn cork_before_handshake_ack(fd: c_int, slot: Slot, state: FdState) {
    let first = !state.has(FdState::ENDED_RESPONSE);
    if !first || !state.has(FdState::APPLIED_FASTOPEN) {
        return;
    }
    let Some(info) = sys::tcp_info(fd) else {
        return;
    };
    if slot.mss() == 0 {
        slot.set_mss(info.tcpi_snd_mss);
    }
    if info.tcpi_state == sys::TCP_SYN_RECV
        && sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_CORK, 1).is_ok()
    {
        slot.set(FdState::CORKED);
        debug!("fd {fd}: handshake pending: the response is corked");
    }
}

/// Sends what the fd holds: uncorks a [`FdState::CORKED`] response, pushes a MSG_MORE one.
fn push(fd: c_int, slot: Slot) -> Result<(), c_int> {
    if slot.load().has(FdState::CORKED) {
        slot.unset(FdState::CORKED);
        sys::uncork(fd)
    } else {
        sys::push(fd)
    }
}

/// The connection's MSS, read once, when a response first needs it.
fn mss(fd: c_int, slot: Slot) -> u32 {
    match slot.mss() {
        0 => {
            let mss = sys::get_int(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG)
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0);
            slot.set_mss(mss);
            mss
        }
        mss => mss,
    }
}

/// After a [`WriteAs::Pushing`] write that sent `n` bytes: the kernel pushed what MSG_MORE held;
/// a response corked before the handshake's ACK is uncorked.
pub fn after_pushing_write(fd: c_int, slot: Slot, n: ssize_t) {
    if n > 0 && slot.take_held() && slot.load().has(FdState::CORKED) {
        let _ = push(fd, slot);
    }
}

/// A control message that every IPv4 and IPv6 datagram socket refuses before it queues anything
/// (a TTL of 0, a hop limit of 256) and TCP ignores (it reads SOL_SOCKET messages only).
#[repr(C)]
struct Refused {
    hdr: libc::cmsghdr,
    value: c_int,
    _pad: c_int,
}

const CMSG_LEN_INT: usize = std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<c_int>();

static TCP_ONLY: [Refused; 2] = [
    Refused {
        hdr: libc::cmsghdr {
            cmsg_len: CMSG_LEN_INT as _,
            cmsg_level: libc::IPPROTO_IP,
            cmsg_type: libc::IP_TTL,
        },
        value: 0,
        _pad: 0,
    },
    Refused {
        hdr: libc::cmsghdr {
            cmsg_len: CMSG_LEN_INT as _,
            cmsg_level: libc::IPPROTO_IPV6,
            cmsg_type: libc::IPV6_HOPLIMIT,
        },
        value: 256,
        _pad: 0,
    },
];

/// Makes the program's write, given as `msg` (with no control data of its own), with MSG_MORE.
/// The table's word that the fd is a TCP connection may be stale (a socket closed by a raw
/// syscall, its number taken by one we never saw made), and MSG_MORE on a UDP socket would hold
/// the datagram and join the next one to it; so the call carries [`TCP_ONLY`]. `None`: the fd
/// refused the call without sending anything, it is not tracked any more, and the caller makes
/// the program's own call instead, which then returns and sets errno as it would have.
///
/// # Safety
/// `msg` is the program's valid message (or built from its valid buffers).
pub unsafe fn send_held(fd: c_int, slot: Slot, mut msg: msghdr, flags: c_int) -> Option<ssize_t> {
    let saved = errno::get();
    msg.msg_control = TCP_ONLY.as_ptr() as *mut c_void;
    msg.msg_controllen = std::mem::size_of_val(&TCP_ONLY) as _;
    // SAFETY: the caller's message, with our static control data, which the kernel only reads.
    let r = unsafe { real::sendmsg(fd, &msg, flags | libc::MSG_MORE) };
    if r >= 0 {
        return Some(r);
    }
    match errno::get() {
        // A stream socket fails only when it sent nothing.
        libc::ENOTSOCK | libc::EINVAL | libc::EOPNOTSUPP => {
            slot.clear();
            errno::set(saved);
            None
        }
        _ => Some(r),
    }
}

fn response_ended(slot: Slot) {
    let (before, after) = slot.update(FdState::response_ended);
    slot.response_bytes_ended();
    if before.has(FdState::IN_RESPONSE) {
        WRITES_WHOLE.remember(after.port(), after.has(FdState::ONE_WRITE));
    }
}

/// What the last connection on a port showed of one habit (port << 1 | shown), in a small table
/// indexed by port: a new connection on a listener, or to a server, starts from it.
struct PortMemo([AtomicU32; 64]);

impl PortMemo {
    const fn new() -> PortMemo {
        PortMemo([const { AtomicU32::new(0) }; 64])
    }

    fn entry(&self, port: u16) -> &AtomicU32 {
        &self.0[usize::from(port) % self.0.len()]
    }

    fn remember(&self, port: u16, shown: bool) {
        let word = u32::from(port) << 1 | u32::from(shown);
        if self.entry(port).load(SeqCst) != word {
            self.entry(port).store(word, SeqCst);
        }
    }

    fn recalls(&self, port: u16) -> bool {
        self.entry(port).load(SeqCst) == u32::from(port) << 1 | 1
    }
}

/// The last response that ended on the port left in one write.
static WRITES_WHOLE: PortMemo = PortMemo::new();
/// The program closed, or shut down, a connection on the port that still held the whole of a
/// closing response and nothing past its end (no read, wait or other write came between), and
/// has written nothing past the end of one since: it closes right after such a response.
static CLOSES_AT_END: PortMemo = PortMemo::new();

/// Tests reuse ports that the kernel hands out again: each starts with nothing learned.
#[cfg(test)]
pub fn forget_ports() {
    for memo in [&WRITES_WHOLE, &CLOSES_AT_END] {
        memo.0.iter().for_each(|p| p.store(0, SeqCst));
    }
}

/// Pushes what our MSG_MORE writes hold on the fd, whose hold the caller has claimed: the
/// response leaves now.
fn release(fd: c_int, slot: Slot, why: &str) {
    note_boundary(slot);
    response_ended(slot);
    match push(fd, slot) {
        Ok(()) => debug!("fd {fd}: response pushed ({why})"),
        Err(e) => track::forget_if_gone(slot, e),
    }
}

/// Pushes what the fd holds, if it holds anything.
fn flush(fd: c_int, slot: Slot, why: &str) {
    if slot.take_held() {
        release(fd, slot, why);
    }
}

/// Before a read-family call on a connection that holds nothing: the response before it ended,
/// in atomics on the fd's own entry, made without [`guard::act`] as in [`writes_learnt_whole`].
/// `false`: it holds something, and [`before_read`] pushes it.
#[inline]
pub fn read_ends_unheld(slot: Slot, state: FdState) -> bool {
    if !state.corks() {
        return true;
    }
    if slot.is_held() {
        return false;
    }
    if state.has(FdState::IN_RESPONSE) {
        response_ended(slot);
    }
    true
}

/// Before a read-family call: the program turns to read, so the response is complete.
pub fn before_read(fd: c_int, slot: Slot, state: FdState) {
    if slot.take_held() {
        release(fd, slot, "the program reads");
    } else if state.has(FdState::IN_RESPONSE) {
        response_ended(slot);
    }
}

/// The program sets TCP_CORK or TCP_NODELAY itself: our held data must never wait on its choice.
pub fn program_takes_over(fd: c_int, slot: Slot) {
    flush(fd, slot, "the program takes over cork and nodelay");
}

/// Before poll/select/epoll: the thread is about to wait, so what it corked is complete.
pub fn before_wait() {
    let me = guard::thread_token();
    fdtable::take_held_where(
        |_, by| by == me,
        |fd, slot| release(fd, slot, "the thread waits for events"),
    );
}

/// Before close() (or an implicit close by dup2/close_range). Nothing is logged on the close
/// path: the program may be closing stderr itself.
pub fn before_close(fd: c_int, slot: Slot, state: FdState) {
    if !slot.take_held() {
        return;
    }
    if holds_whole_closing(slot, state) {
        CLOSES_AT_END.remember(state.port(), true);
    }
    match policy::close_action(state, sys::unread_bytes(fd)) {
        CloseAction::PushFirst => {
            let _ = push(fd, slot);
        }
        // The close would send the held data with the FIN; a write-side shutdown sends the
        // same segment now, so that the connection's record counts it.
        CloseAction::RideFin if state.has(FdState::RECORDED) => {
            sys::shutdown_write(fd);
        }
        CloseAction::RideFin => {}
    }
}

/// Before shutdown(): a FIN rides on corked data by itself, except where
/// [`policy::shutdown_action`] says to push first or keep holding.
pub fn before_shutdown(fd: c_int, slot: Slot, how: c_int) {
    if !slot.is_held() {
        return;
    }
    // Only a connection accepted with Fast Open can still be waiting for the handshake's ACK.
    let pending = slot.load().has(FdState::APPLIED_FASTOPEN) && sys::handshake_pending(fd);
    match policy::shutdown_action(how == libc::SHUT_RD, pending) {
        ShutdownAction::PushFirst => flush(fd, slot, "read-side shutdown"),
        ShutdownAction::RideFin => {
            let state = slot.load();
            if slot.take_held() {
                if holds_whole_closing(slot, state) {
                    CLOSES_AT_END.remember(state.port(), true);
                }
                debug!("fd {fd}: response leaves with the FIN (shutdown)");
            }
        }
        ShutdownAction::KeepHeld => {
            debug!("fd {fd}: handshake pending; the response stays held until the next boundary")
        }
    }
}

/// The flusher's job: pushes holds older than `SOCKTUNE_CORK_FLUSH_MS`; returns when the
/// oldest hold left comes of age.
pub fn release_aged(now: u32) -> Option<u32> {
    let after = config().cork_flush_ms;
    let oldest_left = std::cell::Cell::new(None::<u32>);
    fdtable::take_held_where(
        |since, _| {
            if now.wrapping_sub(since) >= after {
                return true;
            }
            let due = Some(since.wrapping_add(after));
            oldest_left.set(flusher::earliest(oldest_left.get(), due));
            false
        },
        |fd, slot| {
            // The fd may have been closed since it was claimed: a failed push is harmless,
            // and the table is left alone, since the number may already name a new socket.
            if push(fd, slot).is_ok() {
                debug!("fd {fd}: response pushed (no boundary within {after} ms)");
            }
        },
    );
    oldest_left.get()
}
