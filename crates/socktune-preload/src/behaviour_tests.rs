//! The behaviours, in-process, over real loopback TCP connections: no root, no namespace and no
//! preloading. Each test calls the steps a hook would call and reads the result back from the
//! kernel (getsockopt) and from the fd's state. The hooks are not exported in test builds, so
//! the test harness's own calls reach libc.
//!
//! Every test shares one set of settings (the settings are process-wide), and they run one at a
//! time, since the flusher's job releases every thread's holds.

use crate::fdtable::{self, Slot};
use crate::{armed, cork, own_options, quickack, settings, setup, stats, sys};
use socktune_core::config;
use socktune_core::state::{FdState, Kind};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

fn stats_path() -> PathBuf {
    std::env::temp_dir().join(format!("socktune-unit-{}.jsonl", std::process::id()))
}

/// Sets the settings up once, and holds the other tests off.
fn settings() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let vars = [
            ("SOCKTUNE_CORK", "1".to_string()),
            ("SOCKTUNE_QUICKACK", "0".to_string()),
            ("SOCKTUNE_CORK_FLUSH_MS", "5".to_string()),
            ("SOCKTUNE_STATS", stats_path().display().to_string()),
        ];
        let parsed = config::parse(vars.map(|(k, v)| (k.to_string(), v)));
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        settings::use_for_tests(parsed.config);
        stats::init();
    });
    serial
}

fn tcp_option(fd: i32, name: i32) -> i32 {
    sys::get_int(fd, libc::IPPROTO_TCP, name).expect("getsockopt")
}

/// A listener the shim has seen listen, a client, and the accepted end with its plan.
struct Accepted {
    _serial: MutexGuard<'static, ()>,
    listener: TcpListener,
    client: TcpStream,
    server: TcpStream,
    slot: Slot,
}

/// A connection to `listener`, accepted as the shim sees it: its client end, its accepted end
/// and the accepted end's slot.
fn connection_to(listener: &TcpListener) -> (TcpStream, TcpStream, Slot) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    setup::accepted(listener.as_raw_fd(), server.as_raw_fd());
    let slot = fdtable::lookup(server.as_raw_fd()).expect("accepted fd registered");
    (client, server, slot)
}

fn accepted() -> Accepted {
    let serial = settings();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (client, server, slot) = connection_to(&listener);
    cork::forget_ports();
    Accepted {
        _serial: serial,
        listener,
        client,
        server,
        slot,
    }
}

#[test]
fn an_accepted_socket_gets_the_listeners_plan() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let state = a.slot.load();
    assert_eq!(state.kind(), Kind::Server);
    assert!(state.corks() && state.reapplies_quickack() && state.has(FdState::RECORDED));
    assert_eq!(tcp_option(fd, libc::TCP_NODELAY), 1, "cork sets nodelay");
    assert_eq!(unsent(fd), 0, "nothing held before a write");
    let listener_state = fdtable::lookup(a.listener.as_raw_fd()).unwrap().load();
    assert_eq!(listener_state.kind(), Kind::Listener);
}

/// Bytes the kernel holds back on `fd`: written, not yet sent.
fn unsent(fd: i32) -> i32 {
    let mut n: i32 = -1;
    // SAFETY: SIOCOUTQNSD writes one int.
    unsafe { libc::ioctl(fd, libc::SIOCOUTQNSD, &mut n) };
    n
}

/// One write of a response, made as the write hook makes it.
fn write_part(a: &Accepted, data: &[u8], gathered: bool) -> cork::WriteAs {
    write_to(a.server.as_raw_fd(), a.slot, data, gathered)
}

fn write_to(fd: i32, slot: Slot, data: &[u8], gathered: bool) -> cork::WriteAs {
    let how = cork::before_write(fd, slot, data.len(), gathered, true);
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let n = if how == cork::WriteAs::Held {
        // SAFETY: all-zero is an empty msghdr; it then names our one buffer.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = (&iov as *const libc::iovec).cast_mut();
        msg.msg_iovlen = 1;
        // SAFETY: the message describes `data`, which outlives the call.
        unsafe { cork::send_held(fd, slot, msg, 0) }.expect("a TCP socket takes it")
    } else {
        // SAFETY: writes `data` to our own socket.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if how == cork::WriteAs::Pushing {
            cork::after_pushing_write(fd, slot, n);
        }
        n
    };
    assert_eq!(n, data.len() as isize);
    cork::after_write(fd, slot, data, || true);
    how
}

#[test]
fn a_response_is_held_from_its_first_write_and_pushed_by_the_next_read() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    assert_eq!(write_part(&a, b"header ", false), cork::WriteAs::Held);
    assert!(a.slot.is_held());
    write_part(&a, b"body", false); // the same response
    assert_eq!(unsent(fd), 11, "the whole response waits for its boundary");
    cork::before_read(fd, a.slot, a.slot.load());
    assert_eq!(unsent(fd), 0);
    assert!(!a.slot.is_held());
    assert!(!a.slot.load().has(FdState::ONE_WRITE), "a split response");
    assert_eq!(tcp_option(fd, libc::TCP_NODELAY), 1);
}

#[test]
fn the_write_that_completes_an_http_response_s_declared_length_leaves_at_once() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
    assert_eq!(write_part(&a, head, false), cork::WriteAs::Held);
    assert_eq!(unsent(fd), head.len() as i32, "the head waits for its body");
    assert_eq!(write_part(&a, b"body", false), cork::WriteAs::Pushing);
    assert_eq!(
        unsent(fd),
        0,
        "the last byte declared pushes the whole response"
    );
    assert!(!a.slot.is_held());
    // The next response, written before any read (pipelined), is measured on its own.
    assert_eq!(write_part(&a, head, false), cork::WriteAs::Held);
    assert_eq!(write_part(&a, b"bo", false), cork::WriteAs::Held);
    assert!(unsent(fd) > 0, "two bytes short of its length");
    assert_eq!(write_part(&a, b"dy", false), cork::WriteAs::Pushing);
    assert_eq!(unsent(fd), 0);
    // Without a length the head gives, or on a connection that closes after it (for the FIN
    // to ride), the response waits for its boundary as before.
    for head in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n",
    ] {
        cork::before_read(fd, a.slot, a.slot.load());
        write_part(&a, head, false);
        write_part(&a, b"body", false);
        assert!(unsent(fd) > 0, "held until its boundary");
        cork::before_read(fd, a.slot, a.slot.load());
        assert_eq!(unsent(fd), 0);
    }
    // A whole response in one held write leaves once the kernel has taken it (its head is read
    // only then, so that a bad buffer gets the kernel's EFAULT).
    let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    assert_eq!(write_part(&a, whole, false), cork::WriteAs::Held);
    assert_eq!(unsent(fd), 0, "the whole response left after the write");
    assert!(!a.slot.is_held());
}

/// A server's response that closes its connection rides on the FIN. On the first connection of a
/// port it is held until the program's close; once the port's program was seen to close right
/// after such a response, the next one leaves with its FIN at its last write, so that its client
/// has it whole without waiting for the program's close. A write past the end unlearns it.
#[test]
fn a_closing_response_leaves_with_its_fin_once_its_program_is_seen_to_close_after_it() {
    let a = accepted();
    let head = b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n";
    let respond = |fd: i32, slot: Slot| {
        write_to(fd, slot, head, false);
        assert!(unsent(fd) > 0, "the head waits for its body");
        write_to(fd, slot, b"body", false);
    };
    let next = || {
        let client = TcpStream::connect(a.listener.local_addr().unwrap()).unwrap();
        let (server, _) = a.listener.accept().unwrap();
        setup::accepted(a.listener.as_raw_fd(), server.as_raw_fd());
        let slot = fdtable::lookup(server.as_raw_fd()).unwrap();
        (client, server, slot)
    };
    let fd = a.server.as_raw_fd();
    respond(fd, a.slot);
    assert!(
        unsent(fd) > 0,
        "the port's first closing response waits for the close"
    );
    assert!(!a.slot.load().has(FdState::FIN_SENT));
    cork::before_close(fd, a.slot, a.slot.load());
    a.slot.clear();

    let (mut client, server, slot) = next();
    let fd = server.as_raw_fd();
    respond(fd, slot);
    assert_eq!(unsent(fd), 0, "the response left at its last write");
    assert!(slot.load().has(FdState::FIN_SENT) && !slot.is_held());
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    client
        .read_to_end(&mut got)
        .expect("the FIN came with the response");
    assert_eq!(got, [&head[..], b"body"].concat());
    // The program writes past the end it declared: the next response waits for its close.
    cork::wrote_after_fin(fd, slot.load());
    slot.clear();
    let (_client, server, slot) = next();
    let fd = server.as_raw_fd();
    respond(fd, slot);
    assert!(unsent(fd) > 0 && !slot.load().has(FdState::FIN_SENT));
    slot.take_held();
    slot.clear();
}

#[test]
fn a_write_on_another_connection_ends_the_response_this_thread_held() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    // A second connection on the same listener, as an FTP data connection or an event loop's
    // next client.
    let (_client, other, other_slot) = connection_to(&a.listener);
    assert_eq!(
        write_part(&a, b"150 Here it comes\r\n", false),
        cork::WriteAs::Held
    );
    assert!(unsent(fd) > 0, "held while the thread writes nothing else");
    cork::before_write(other.as_raw_fd(), other_slot, 4, false, true);
    assert_eq!(
        unsent(fd),
        0,
        "the first connection's reply left as the thread moved on"
    );
    assert!(!a.slot.is_held());
    other_slot.take_held();
    other_slot.clear();
}

#[test]
fn a_connection_whose_responses_leave_in_one_write_is_not_held() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    assert_eq!(write_part(&a, b"whole", false), cork::WriteAs::Held);
    cork::before_read(fd, a.slot, a.slot.load());
    assert!(a.slot.load().has(FdState::ONE_WRITE), "learned: one write");
    assert_eq!(write_part(&a, b"whole", false), cork::WriteAs::Written);
    assert!(!a.slot.is_held() && unsent(fd) == 0, "sent as written");
    cork::before_read(fd, a.slot, a.slot.load());
    write_part(&a, b"header", false);
    assert_eq!(
        write_part(&a, b"body", false),
        cork::WriteAs::Written,
        "it splits after all, but its header left already: the body goes too"
    );
    cork::before_read(fd, a.slot, a.slot.load());
    assert!(!a.slot.load().has(FdState::ONE_WRITE));
    assert_eq!(
        write_part(&a, b"header", false),
        cork::WriteAs::Held,
        "unlearned: the next response is held from its first write"
    );
    cork::before_read(fd, a.slot, a.slot.load());
}

#[test]
fn pipelined_whole_responses_on_a_connection_learnt_whole_keep_it_learnt() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    assert_eq!(write_part(&a, whole, false), cork::WriteAs::Held);
    cork::before_read(fd, a.slot, a.slot.load());
    assert!(a.slot.load().has(FdState::ONE_WRITE), "learned: one write");
    // Three requests came in one read: three whole responses before the next read.
    for _ in 0..3 {
        assert_eq!(write_part(&a, whole, false), cork::WriteAs::Written);
    }
    assert_eq!(unsent(fd), 0);
    cork::before_read(fd, a.slot, a.slot.load());
    assert!(
        a.slot.load().has(FdState::ONE_WRITE),
        "each write began a response of its own: still learned"
    );
    // A response split into head and body, then a pipelined whole one: it split after all.
    write_part(&a, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", false);
    write_part(&a, b"body", false);
    write_part(&a, whole, false);
    cork::before_read(fd, a.slot, a.slot.load());
    assert!(!a.slot.load().has(FdState::ONE_WRITE), "unlearned");
    assert_eq!(write_part(&a, whole, false), cork::WriteAs::Held);
    assert_eq!(
        unsent(fd),
        0,
        "the held whole response left after the write"
    );
}

/// What a connection's entry says of its current response.
fn response_of(slot: Slot) -> (FdState, u32, bool) {
    (slot.load(), slot.response_bytes(), slot.head_skipped())
}

#[test]
fn the_unguarded_steps_of_a_connection_learnt_whole_leave_what_the_guarded_ones_leave() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let whole = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    write_part(&a, whole, false);
    cork::before_read(fd, a.slot, a.slot.load());
    let learnt = a.slot.load();
    assert!(learnt.has(FdState::ONE_WRITE), "learned: one write");
    // The guarded way, as a hook made it until the unguarded one.
    assert_eq!(write_part(&a, whole, false), cork::WriteAs::Written);
    let written = response_of(a.slot);
    cork::before_read(fd, a.slot, a.slot.load());
    let read = response_of(a.slot);
    assert_eq!(read.0, learnt);
    // The unguarded way.
    assert!(cork::writes_learnt_whole(
        a.slot,
        a.slot.load(),
        whole.len()
    ));
    assert_eq!(response_of(a.slot), written);
    assert!(cork::read_ends_unheld(a.slot, a.slot.load()));
    assert_eq!(response_of(a.slot), read);
    // A hold on another connection may be this thread's to end: the guarded way decides.
    cork::forget_ports(); // its first response is held
    let (_client, other, other_slot) = connection_to(&a.listener);
    assert_eq!(
        write_to(other.as_raw_fd(), other_slot, b"held", false),
        cork::WriteAs::Held
    );
    assert!(!cork::writes_learnt_whole(
        a.slot,
        a.slot.load(),
        whole.len()
    ));
    assert_eq!(response_of(a.slot), read, "declined, it changed nothing");
    other_slot.take_held();
    other_slot.clear();
    // A split response unlearns it, the next one is held, and the guarded read pushes it.
    write_part(&a, b"HTTP/1.1 200 OK\r\n", false);
    write_part(&a, b"Content-Length: 0\r\n\r\n", false);
    cork::before_read(fd, a.slot, a.slot.load());
    assert_eq!(
        write_part(&a, b"HTTP/1.1 200 OK\r\n", false),
        cork::WriteAs::Held
    );
    assert!(!cork::read_ends_unheld(a.slot, a.slot.load()));
    assert!(
        a.slot.is_held(),
        "declined, it left the hold to the guarded read"
    );
    cork::before_read(fd, a.slot, a.slot.load());
    assert_eq!(unsent(fd), 0);
}

#[test]
fn a_new_connection_starts_from_what_its_listener_s_last_response_showed() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    write_part(&a, b"whole", false);
    cork::before_read(fd, a.slot, a.slot.load());
    // The next connection the same listener accepts.
    let (_client, next, slot) = connection_to(&a.listener);
    let how = cork::before_write(next.as_raw_fd(), slot, 5, false, true);
    assert_eq!(
        how,
        cork::WriteAs::Written,
        "its first response is not held"
    );
    slot.clear();
}

#[test]
fn a_write_that_cannot_carry_msg_more_pushes_the_held_header() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    write_part(&a, b"header", false);
    assert_eq!(
        cork::before_write(fd, a.slot, 4, false, false),
        cork::WriteAs::Pushing
    );
    // SAFETY: writes to our own socket.
    let n = unsafe { libc::write(fd, b"file".as_ptr().cast(), 4) };
    cork::after_pushing_write(fd, a.slot, n);
    assert!(!a.slot.is_held() && unsent(fd) == 0);
}

#[test]
fn a_response_past_one_segment_leaves_as_its_writes_return() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let mss = tcp_option(fd, libc::TCP_MAXSEG) as usize;
    write_part(&a, b"header", false);
    let body = vec![b'x'; mss];
    assert_eq!(write_part(&a, &body, false), cork::WriteAs::Pushing);
    assert!(
        !a.slot.is_held() && unsent(fd) == 0,
        "no tail waits for the boundary"
    );
    assert_eq!(
        write_part(&a, b"trailer", false),
        cork::WriteAs::Written,
        "the rest of a long response goes as written"
    );
}

#[test]
fn a_stale_entry_on_a_datagram_socket_never_holds_a_datagram() {
    let a = accepted();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(udp.local_addr().unwrap()).unwrap();
    let fd = udp.as_raw_fd();
    let slot = fdtable::lookup_or_make(fd).unwrap();
    slot.reset(a.slot.load()); // the table still says: a TCP connection
    let data = b"dgram";
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: as in write_part.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = (&iov as *const libc::iovec).cast_mut();
    msg.msg_iovlen = 1;
    crate::errno::set(4242);
    // SAFETY: the message describes `data`.
    let r = unsafe { cork::send_held(fd, slot, msg, 0) };
    assert_eq!(r, None, "refused, nothing sent");
    assert_eq!(crate::errno::get(), 4242, "errno as the program left it");
    assert_eq!(slot.load(), FdState::default(), "no longer tracked");
    udp.send(b"next").unwrap();
    let mut buf = [0u8; 16];
    let n = udp.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"next", "no datagram was held back");
}

#[test]
fn a_wait_releases_what_this_thread_held() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    write_part(&a, b"held", false);
    let other_thread = std::thread::spawn(cork::before_wait);
    other_thread.join().unwrap();
    assert!(a.slot.is_held(), "another thread's wait leaves it held");
    assert_eq!(unsent(fd), 4);
    cork::before_wait();
    assert_eq!(unsent(fd), 0);
    assert!(!a.slot.is_held());
}

#[test]
fn the_flusher_job_pushes_a_hold_older_than_the_flush_delay() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let before = crate::flusher::now();
    write_part(&a, b"held", false);
    cork::release_aged(before + 1);
    assert_eq!(unsent(fd), 4, "1 ms is younger than 5");
    cork::release_aged(crate::flusher::now() + 5);
    assert_eq!(unsent(fd), 0);
    assert!(!a.slot.is_held());
}

#[test]
fn the_programs_own_nodelay_off_takes_cork_over_and_releases_the_hold() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let again = |slot, name, value| own_options::sets_again(slot, libc::IPPROTO_TCP, name, value);
    write_part(&a, b"held", false);
    assert!(!again(a.slot, libc::TCP_NODELAY, Some(0)), "its first time");
    own_options::program_sets(
        fd,
        a.slot,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        Some(0),
        None,
    );
    assert_eq!(unsent(fd), 0, "held data never waits on the program");
    let state = a.slot.load();
    assert!(state.has(FdState::APP_NAGLE) && !state.corks());
    assert!(again(a.slot, libc::TCP_NODELAY, Some(0)) && again(a.slot, libc::TCP_CORK, Some(1)));
    assert!(
        !again(a.slot, libc::TCP_NODELAY, Some(1)),
        "nodelay on is a choice of its own"
    );
    // A write that began holding as the program took over: its next call pushes it.
    a.slot.mark_held(crate::flusher::now(), 1);
    assert!(!again(a.slot, libc::TCP_CORK, Some(0)));
    a.slot.take_held();
    drop(a);
    // Nodelay on agrees with cork: the next fd keeps holding, and a gathered response goes as is.
    let b = accepted();
    let fd = b.server.as_raw_fd();
    own_options::program_sets(
        fd,
        b.slot,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        Some(1),
        None,
    );
    let state = b.slot.load();
    assert!(state.corks() && state.has(FdState::APP_NODELAY));
    assert!(again(b.slot, libc::TCP_NODELAY, Some(1)));
    assert_eq!(
        write_part(&b, b"whole", true),
        cork::WriteAs::Written,
        "gathered write under program nodelay"
    );
    cork::before_read(fd, b.slot, b.slot.load());
    b.slot.unset(FdState::ONE_WRITE);
    assert_eq!(
        write_part(&b, b"header", false),
        cork::WriteAs::Held,
        "a response written in pieces is held"
    );
}

#[test]
fn quickack_off_is_set_again_after_a_read() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1).unwrap();
    assert_eq!(tcp_option(fd, libc::TCP_QUICKACK), 1);
    quickack::after_read(fd, a.slot, false);
    assert_eq!(tcp_option(fd, libc::TCP_QUICKACK), 0);
}

#[test]
fn a_quickack_off_client_is_armed_until_it_reads_or_writes() {
    let _serial = settings();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // SAFETY: a plain socket() call; the fd is owned by the TcpStream below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    crate::track::created(fd, libc::AF_INET, libc::SOCK_STREAM, 0);
    let connecting =
        setup::before_connect(fd, listener.local_addr().unwrap()).expect("a TCP client is planned");
    assert_eq!(
        tcp_option(fd, libc::TCP_QUICKACK),
        0,
        "delayed ACKs before connect"
    );
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: connects our own socket to a sockaddr_in of the right size.
    let r = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let slot = fdtable::lookup(fd).unwrap();
    armed::after_connect(fd, connecting, r, crate::errno::get());
    let state = slot.load();
    assert_eq!(state.kind(), Kind::Client);
    assert!(
        state.has(FdState::ARMED),
        "the last handshake ACK waits for the first write"
    );
    let before = fdtable::armed_count();
    armed::before_read(fd, slot, state);
    assert!(!slot.load().has(FdState::ARMED), "a read first kicks it");
    assert_eq!(fdtable::armed_count(), before - 1);
    assert_eq!(
        tcp_option(fd, libc::TCP_QUICKACK),
        0,
        "delayed ACKs again after the kick"
    );
    slot.clear();
    // SAFETY: closes our own fd.
    unsafe { libc::close(fd) };
}

#[test]
fn a_connection_is_recorded_at_its_end_with_its_responses_and_behaviours() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    for _ in 0..3 {
        stats::wrote(a.slot);
        stats::wrote(a.slot); // header and body: one response
        stats::read(a.slot);
    }
    assert_eq!(a.slot.responses(), 3);
    let server_port = a.server.local_addr().unwrap().port();
    stats::ended(fd, a.slot, a.slot.load(), socktune_core::record::End::Close);
    assert!(!a.slot.load().has(FdState::RECORDED), "recorded once");
    stats::tick(u32::MAX / 2); // the flusher's job writes what waited long enough
    let text = std::fs::read_to_string(stats_path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"local_port\":{server_port},")))
        .unwrap_or_else(|| panic!("no record for port {server_port} in:\n{text}"));
    for field in [
        "\"role\":\"server\"",
        "\"responses\":3",
        "\"behaviours\":[\"cork\",\"quickack-off\",\"nodelay\"]",
        "\"end\":\"close\"",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
}

/// The client writes "header" and the server reads it under quickack-off: its ACK is pending.
fn read_unanswered(a: &mut Accepted) -> [u8; 64] {
    use std::io::{Read, Write};
    a.client.write_all(b"header").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(a.server.read(&mut buf).unwrap(), 6);
    quickack::after_read(a.server.as_raw_fd(), a.slot, false);
    assert!(
        a.slot.load().has(FdState::ACK_PENDING),
        "read, not answered"
    );
    buf
}

#[test]
fn a_read_that_would_wait_sends_the_pending_ack_and_a_write_keeps_it_for_the_response() {
    use std::io::{Read, Write};
    let mut a = accepted();
    let fd = a.server.as_raw_fd();
    // Nodelay: the client's second write must not wait for the ACK the server delays (with
    // Nagle on it would, which is the stall this rule removes).
    a.client.set_nodelay(true).unwrap();
    let mut buf = read_unanswered(&mut a);
    a.client.write_all(b"body").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    armed::before_read(fd, a.slot, a.slot.load());
    assert!(
        a.slot.load().has(FdState::ACK_PENDING),
        "data already there: the read does not wait, the ACK may still ride"
    );
    assert_eq!(a.server.read(&mut buf).unwrap(), 4);
    armed::before_read(fd, a.slot, a.slot.load());
    assert!(
        !a.slot.load().has(FdState::ACK_PENDING),
        "a blocking read with nothing there: the ACK leaves first"
    );
    assert_eq!(
        tcp_option(fd, libc::TCP_QUICKACK),
        0,
        "delayed ACKs after it"
    );
    quickack::after_read(fd, a.slot, false);
    armed::before_write(fd, a.slot, a.slot.load());
    assert!(
        !a.slot.load().has(FdState::ACK_PENDING),
        "the response carries it"
    );
}

#[test]
fn a_head_whose_rest_is_coming_is_acknowledged_once() {
    let mut a = accepted();
    let fd = a.server.as_raw_fd();
    read_unanswered(&mut a);
    quickack::after_read(fd, a.slot, true);
    assert!(
        !a.slot.load().has(FdState::ACK_PENDING),
        "the head's ACK left at once: a wait for the body has none to send"
    );
    assert!(
        !quickack::pending_here(),
        "nothing left for this thread's waits to acknowledge"
    );
    assert_eq!(
        tcp_option(fd, libc::TCP_QUICKACK),
        0,
        "delayed ACKs after it"
    );
}

#[test]
fn a_server_that_writes_first_turns_defer_accept_off_its_listener() {
    let a = accepted();
    let lfd = a.listener.as_raw_fd();
    let port = a.listener.local_addr().unwrap().port();
    sys::set_int(lfd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, 5).unwrap();
    let lslot = fdtable::lookup(lfd).unwrap();
    lslot.reset(FdState::new(
        Kind::Listener,
        FdState::APPLIED_DEFER_ACCEPT,
        port,
    ));
    let watched = FdState::accepted_from(lslot.load());
    assert!(watched.has(FdState::DEFER_WATCH));
    // A connection that was read first keeps defer-accept on.
    a.slot.reset(watched);
    armed::before_read(a.server.as_raw_fd(), a.slot, watched);
    armed::before_write(a.server.as_raw_fd(), a.slot, a.slot.load());
    assert!(
        tcp_option(lfd, libc::TCP_DEFER_ACCEPT) > 0,
        "client spoke first"
    );
    // One written first turns it off, and says so in its record.
    a.slot.reset(watched);
    armed::before_write(a.server.as_raw_fd(), a.slot, watched);
    assert_eq!(tcp_option(lfd, libc::TCP_DEFER_ACCEPT), 0);
    assert!(!lslot.load().has(FdState::APPLIED_DEFER_ACCEPT));
    assert!(a.slot.load().has(FdState::DEFER_HEALED));
    assert!(!FdState::accepted_from(lslot.load()).has(FdState::DEFER_WATCH));
    lslot.clear(); // the fd numbers are reused by the next test
    a.slot.clear();
}
