//! `socktune doctor --pid` on running servers on a free loopback port (no namespace, no root):
//! one with the library loaded, after it served requests (loaded, version, settings, counters);
//! one started without it (not loaded); one whose LD_PRELOAD names a missing file (skipped);
//! a static program (what reaches it instead).
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// python3 -m http.server on a free loopback port, with `env` added to a clean environment;
/// killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Server {
        // The kernel's pick, given up at once for the server to bind.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(python());
        cmd.args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(std::env::temp_dir())
        .env_remove("LD_PRELOAD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SOCKTUNE_")) {
            cmd.env_remove(k);
        }
        let server = Server {
            child: cmd
                .spawn()
                .expect("python3 starts: run bash scripts/setup.sh"),
            port,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < LIMIT,
                "http.server never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// One HTTP/1.0 request, read to the server's close.
    fn get(&self) {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).unwrap();
        assert!(reply.starts_with(b"HTTP/1.0 200"), "{reply:?}");
    }

    fn doctor(&self) -> (Option<i32>, String) {
        doctor_pid(self.child.id())
    }
}

/// `socktune doctor --pid PID`: the exit status and the output.
fn doctor_pid(pid: u32) -> (Option<i32>, String) {
    let out = run_bounded(
        Command::new(launcher())
            .args(["doctor", "--pid", &pid.to_string()])
            .env_remove("LD_PRELOAD"),
        LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn assert_has(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.contains(line), "want {line:?} in:\n{out}");
    }
}

#[test]
fn doctor_pid_sees_the_library_its_settings_and_counters() {
    let lib = lib();
    let dir = scratch("doctor-pid");
    let prom = dir.join("server.prom");
    let server = Server::start(&[
        ("LD_PRELOAD", lib.to_str().unwrap()),
        ("SOCKTUNE_CORK", "1"),
        ("SOCKTUNE_STATS_PROM", prom.to_str().unwrap()),
    ]);
    for _ in 0..3 {
        server.get();
    }
    // The server records a connection when it closes it, just after the client saw the end.
    // Four: the three requests and the connection that found it listening.
    let start = Instant::now();
    let (code, out) = loop {
        let (code, out) = server.doctor();
        if out.contains("socktune_connections_total{role=\"server\"} 4") || start.elapsed() > LIMIT
        {
            break (code, out);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "{out}");
    let loaded = format!(
        "ok    library: loaded from {} (socktune {})",
        lib.display(),
        env!("CARGO_PKG_VERSION")
    );
    let settings = format!(
        "note  settings: SOCKTUNE_CORK=1 SOCKTUNE_STATS_PROM={} (from /proc/",
        prom.display()
    );
    let counters = format!("ok    counters: {}.counters", prom.display());
    let listening = format!("TCP (listening on port {})", server.port);
    assert_has(
        &out,
        &[
            &loaded,
            &settings,
            "the environment the process started with",
            "note  settings: cork              on",
            &counters,
            "note  counters: socktune_connections_total{role=\"server\"} 4",
            "note  counters: socktune_responses_total{role=\"server\"} 3",
            &listening,
            "cannot be seen from outside",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn doctor_pid_says_not_loaded_without_the_library() {
    let server = Server::start(&[]);
    let (code, out) = server.doctor();
    assert_eq!(code, Some(1), "{out}");
    assert_has(
        &out,
        &[
            "FAIL  library: not loaded (not in /proc/",
            "no SOCKTUNE_* variable",
        ],
    );
}

#[test]
fn doctor_pid_says_skipped_for_a_missing_preload() {
    let missing = "/nonexistent/socktune-test/libsocktune.so";
    let server = Server::start(&[("LD_PRELOAD", missing), ("SOCKTUNE_CORK", "1")]);
    let (code, out) = server.doctor();
    assert_eq!(code, Some(1), "{out}");
    let skipped = format!("FAIL  library: skipped: LD_PRELOAD names {missing}, but it is not in");
    let why = format!("({missing}: No such file or directory)");
    assert_has(&out, &[&skipped, &why, "SOCKTUNE_CORK=1"]);
}

#[test]
fn doctor_pid_names_the_alternatives_for_a_static_program() {
    let dir = scratch("doctor-pid-static");
    let program = static_program(
        &dir,
        "wait",
        "#include <unistd.h>\nint main(void) { pause(); }\n",
    );
    let mut child = Command::new(&program).spawn().unwrap();
    let (code, out) = doctor_pid(child.id());
    child.kill().ok();
    child.wait().ok();
    assert_eq!(code, Some(1), "{out}");
    let static_line = format!("FAIL  {}: statically linked", program.display());
    assert_has(
        &out,
        &[
            &static_line,
            "nor can LD_PRELOAD load it into this program",
            "note  instead: for its listeners, systemd socket activation sets the options in the .socket unit: NoDelay=, DeferAcceptSec=",
            "`ip route change ROUTE ... quickack 1`",
            "cgroup BPF sock_ops program",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn doctor_pid_refuses_a_bad_pid() {
    for args in [&["--pid"][..], &["--pid", "x"], &["--pid", "1", "true"]] {
        let out = run_bounded(Command::new(launcher()).arg("doctor").args(args), LIMIT);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}
