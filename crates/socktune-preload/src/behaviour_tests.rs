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

fn accepted() -> Accepted {
    let serial = settings();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    setup::accepted(listener.as_raw_fd(), server.as_raw_fd());
    let slot = fdtable::lookup(server.as_raw_fd()).expect("accepted fd registered");
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
    assert_eq!(
        tcp_option(fd, libc::TCP_CORK),
        0,
        "nothing corked before a write"
    );
    let listener_state = fdtable::lookup(a.listener.as_raw_fd()).unwrap().load();
    assert_eq!(listener_state.kind(), Kind::Listener);
}

#[test]
fn a_response_is_corked_at_its_first_write_and_released_by_the_next_read() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let state = a.slot.load();
    cork::before_write(fd, a.slot, state, false);
    assert_eq!(tcp_option(fd, libc::TCP_CORK), 1);
    assert!(a.slot.is_held());
    cork::before_write(fd, a.slot, state, false); // the body: the same response
    assert!(a.slot.is_held() && tcp_option(fd, libc::TCP_CORK) == 1);
    cork::before_read(fd, a.slot);
    assert_eq!(tcp_option(fd, libc::TCP_CORK), 0);
    assert!(!a.slot.is_held());
}

#[test]
fn a_wait_releases_what_this_thread_corked() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    cork::before_write(fd, a.slot, a.slot.load(), false);
    assert_eq!(tcp_option(fd, libc::TCP_CORK), 1);
    let other_thread = std::thread::spawn(cork::before_wait);
    other_thread.join().unwrap();
    assert!(a.slot.is_held(), "another thread's wait leaves it held");
    cork::before_wait();
    assert_eq!(tcp_option(fd, libc::TCP_CORK), 0);
    assert!(!a.slot.is_held());
}

#[test]
fn the_flusher_job_releases_a_hold_older_than_the_flush_delay() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    let before = crate::flusher::now();
    cork::before_write(fd, a.slot, a.slot.load(), false);
    cork::release_aged(before + 1);
    assert_eq!(tcp_option(fd, libc::TCP_CORK), 1, "1 ms is younger than 5");
    cork::release_aged(crate::flusher::now() + 5);
    assert_eq!(tcp_option(fd, libc::TCP_CORK), 0);
    assert!(!a.slot.is_held());
}

#[test]
fn the_programs_own_nodelay_off_takes_cork_over_and_releases_the_hold() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    cork::before_write(fd, a.slot, a.slot.load(), false);
    own_options::program_sets(
        fd,
        a.slot,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        Some(0),
        None,
    );
    assert_eq!(
        tcp_option(fd, libc::TCP_CORK),
        0,
        "held data never waits on the program"
    );
    let state = a.slot.load();
    assert!(state.has(FdState::APP_NAGLE) && !state.corks());
    drop(a);
    // Nodelay on agrees with cork: the next fd keeps corking, and a gathered response goes as is.
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
    cork::before_write(fd, b.slot, state, true);
    assert_eq!(
        tcp_option(fd, libc::TCP_CORK),
        0,
        "gathered write under program nodelay"
    );
    cork::before_write(fd, b.slot, state, false);
    assert_eq!(
        tcp_option(fd, libc::TCP_CORK),
        1,
        "a response written in pieces is corked"
    );
}

#[test]
fn quickack_off_is_set_again_after_a_read() {
    let a = accepted();
    let fd = a.server.as_raw_fd();
    sys::set_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1).unwrap();
    assert_eq!(tcp_option(fd, libc::TCP_QUICKACK), 1);
    quickack::after_read(fd, a.slot);
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
    let connecting = setup::before_connect(fd, port).expect("a TCP client is planned");
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

#[test]
fn a_read_that_would_wait_sends_the_pending_ack_and_a_write_keeps_it_for_the_response() {
    use std::io::{Read, Write};
    let mut a = accepted();
    let fd = a.server.as_raw_fd();
    // Nodelay: the client's second write must not wait for the ACK the server delays (with
    // Nagle on it would, which is the stall this rule removes).
    a.client.set_nodelay(true).unwrap();
    a.client.write_all(b"header").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(a.server.read(&mut buf).unwrap(), 6);
    quickack::after_read(fd, a.slot);
    assert!(
        a.slot.load().has(FdState::ACK_PENDING),
        "read, not answered"
    );
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
    quickack::after_read(fd, a.slot);
    armed::before_write(fd, a.slot, a.slot.load());
    assert!(
        !a.slot.load().has(FdState::ACK_PENDING),
        "the response carries it"
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
