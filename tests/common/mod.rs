//! Shared by the integration tests: skip or fail a test that needs root when not root
//! ([`needs_root!`]), find the built library, run a scenario through the namespace harness
//! (tests/harness/netns.py), and read its one-line `key=value` result.
//!
//! The tests install nothing: `bash scripts/setup.sh` installs every tool they use, and a
//! missing one fails its test with a message naming the tool and that script.
#![allow(dead_code)] // each test binary uses a different part of this module
#![allow(unused_imports, unused_macros)] // likewise needs_root!

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Server commands for the harness ({port}, {www}, {progs} are filled in there).
pub const HTTP11_SERVER_V4: &str =
    "python3 -m http.server -p HTTP/1.1 {port} --bind 127.0.0.1 -d {www}";
pub const HTTP11_SERVER_V6: &str = "python3 -m http.server -p HTTP/1.1 {port} --bind ::1 -d {www}";
pub const HTTP10_SERVER_V4: &str = "python3 -m http.server {port} --bind 127.0.0.1 -d {www}";

/// How long one harness run may take before the test kills it and fails.
const HARNESS_LIMIT: Duration = Duration::from_secs(150);

/// Why a test that runs programs through tests/harness/netns.py needs root.
pub const NETNS: &str = "runs its programs in a private network namespace made with unshare -n";

/// The first line of a test that needs root: `needs_root!(NETNS);` or `needs_root!("why")`.
/// As root the test runs. Not root, it is skipped: it returns at once, after writing
/// `SKIPPED <binary>::<test>: needs root (<why>)` straight to stderr, where cargo shows it
/// without `--nocapture`, and the binary lists its skipped tests after its `test result:` line.
/// Under CI (`CI` set, and not to "" / "0" / "false") a test is never skipped: not root, it
/// fails.
macro_rules! needs_root {
    ($why:expr) => {
        if $crate::common::skip_unless_root(
            {
                fn here() {}
                std::any::type_name_of_val(&here).trim_end_matches("::here")
            },
            $why,
        ) {
            return;
        }
    };
}
pub(crate) use needs_root;

/// True when `CI` asks for every test to run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The tests this binary skipped, listed once more when it exits.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// What [`needs_root!`] calls: false (run the test) as root; true (skip it) when not root and
/// not under CI, after saying so; panics when not root under CI.
pub fn skip_unless_root(test: &str, why: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return false;
    }
    assert!(
        !in_ci(),
        "{test} needs root ({why}); under CI (CI={}) every test must run: run them as root",
        std::env::var("CI").unwrap_or_default()
    );
    // Written to the stderr handle, not with eprintln!, which the test harness captures and
    // shows only for a failed test.
    let line = format!("SKIPPED {test}: needs root ({why})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // SAFETY: registers a plain function with no arguments, which runs at exit.
        unsafe { libc::atexit(list_skipped) };
    }
    skipped.push(test.to_string());
    true
}

/// At exit, after the harness's `test result:` line (which counts skipped tests as passed).
extern "C" fn list_skipped() {
    let Ok(skipped) = SKIPPED.try_lock() else {
        return;
    };
    let binary = skipped[0].split("::").next().unwrap_or_default();
    let names: Vec<&str> = skipped
        .iter()
        .filter_map(|t| t.split("::").nth(1))
        .collect();
    let text = format!(
        "SKIPPED in {binary}, not run: {} test(s) that need root ({}); run as root to run them \
         (under CI=true they fail instead of skipping)\n",
        names.len(),
        names.join(", ")
    );
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The library under test: `SOCKTUNE_LIB` if set; else this checkout's own, built here once per
/// test binary with the test binary's profile (`cargo test --release` gives
/// target/release/libsocktune.so). Integration tests do not link a cdylib, so cargo would not
/// build it for them, and a library left from an older build must never be what is tested.
pub fn lib() -> PathBuf {
    if let Some(p) = std::env::var_os("SOCKTUNE_LIB") {
        let path = PathBuf::from(p);
        assert!(
            path.is_file(),
            "SOCKTUNE_LIB={} is not a file",
            path.display()
        );
        return path;
    }
    built().join("libsocktune.so")
}

/// The shim's file name: the stub, libsocktune.so, loads it from its own directory.
pub const SHIM_NAME: &str = "libsocktune_shim.so";

/// The shim the stub at `stub` loads.
pub fn shim_beside(stub: &Path) -> PathBuf {
    stub.with_file_name(SHIM_NAME)
}

/// The launcher, target/<profile>/socktune, built beside the library (where `run` looks first).
pub fn launcher() -> PathBuf {
    built().join("socktune")
}

/// Builds the library and the launcher once per test binary, with the test binary's profile;
/// returns the profile's directory.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = cargo_build(&["-p", "socktune-preload", "-p", "socktune-cli"], None);
        for artefact in ["libsocktune.so", SHIM_NAME, "socktune"] {
            let path = profile_dir.join(artefact);
            assert!(
                path.is_file(),
                "cargo build did not produce {}",
                path.display()
            );
        }
        profile_dir
    })
}

/// `cargo build ARGS` with the test binary's profile (release for `cargo test --release`), into
/// `target_dir` or the test binary's own target directory; returns the profile's directory.
pub fn cargo_build(args: &[&str], target_dir: Option<&Path>) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary has no grandparent");
    let profile = profile_dir.file_name().expect("a profile directory");
    let target_dir = target_dir
        .or(profile_dir.parent())
        .expect("a target directory");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    cargo
        .arg("build")
        .args(args)
        .arg("--manifest-path")
        .arg(repo().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if profile == "release" {
        cargo.arg("--release");
    }
    let out = run_bounded(&mut cargo, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "cargo build {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(profile)
}

/// The C `source` built with `cc -static` as `dir/NAME-static`: a program no preload reaches.
pub fn static_program(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let program = dir.join(format!("{name}-static"));
    let mut cc = Command::new("cc");
    cc.arg("-static").arg("-o").arg(&program).arg(&src);
    let out = run_bounded(&mut cc, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "cc -static failed; it needs glibc's static libc.a (apt-get install -y libc6-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    program
}

/// A fresh, empty directory for one test's files, named after the test and this process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("socktune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The real Python interpreter behind `python3`, so that a program under test is one process
/// (a wrapper script, such as a pyenv shim, would carry the shim into its helper processes).
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): run: bash scripts/setup.sh"));
        String::from_utf8(out.stdout)
            .expect("utf-8 path")
            .trim()
            .to_string()
    })
}

/// Runs a command with stdin closed and output captured; kills it and panics past `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} is not installed (not found on PATH); run: bash scripts/setup.sh",
                    cmd.get_program().to_string_lossy()
                )
            } else {
                e.to_string()
            };
            panic!("cannot start {cmd:?}: {hint}")
        });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            pipe.read_to_end(&mut buf).ok();
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// One harness run: a server (optional) and a client in a private network namespace.
pub struct Scenario {
    name: String,
    args: Vec<String>,
    /// The library to load instead of [`lib()`].
    library: Option<PathBuf>,
}

impl Scenario {
    /// `client` is a command line such as "python3 {progs}/ka_client.py 127.0.0.1 {port} 100 /f100".
    pub fn new(name: &str, client: &str) -> Self {
        Scenario {
            name: name.into(),
            args: vec!["--client".into(), client.into()],
            library: None,
        }
    }

    /// Loads this build of the library instead of [`lib()`].
    pub fn library(mut self, path: &Path) -> Self {
        self.library = Some(path.to_path_buf());
        self
    }

    fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn server(self, cmd: &str) -> Self {
        self.arg("--server").arg(cmd)
    }

    /// Loads the shim into the server with these `SOCKTUNE_*=value` settings (may be empty).
    pub fn server_env(self, env: &[&str]) -> Self {
        env.iter()
            .fold(self.arg("--srv-shim"), |s, kv| s.arg("--srv-env").arg(kv))
    }

    /// Loads the shim into the client with these settings (may be empty).
    pub fn client_env(self, env: &[&str]) -> Self {
        env.iter()
            .fold(self.arg("--cli-shim"), |s, kv| s.arg("--cli-env").arg(kv))
    }

    /// `net.ipv4.tcp_fastopen=3` (client and server) in the namespace.
    pub fn tfo(self) -> Self {
        self.tfo_bits(3)
    }

    /// `net.ipv4.tcp_fastopen=bits` in the namespace (1 client, 2 server).
    pub fn tfo_bits(self, bits: u32) -> Self {
        self.arg(&format!("--tfo={bits}"))
    }

    /// Runs the scenario; panics with the harness's stderr unless the client exited 0.
    pub fn run(&self) -> Results {
        let lib = self.library.clone().unwrap_or_else(lib);
        let mut cmd = Command::new(python());
        cmd.arg(repo().join("tests/harness/netns.py"))
            .arg("--lib")
            .arg(&lib)
            .args(&self.args);
        if std::env::var_os("SOCKTUNE_TEST_TRACE").is_some() {
            cmd.arg("--trace"); // packet list on stderr, shown when the test fails
        }
        let results = Results::parse(&self.name, &run_bounded(&mut cmd, HARNESS_LIMIT));
        assert_eq!(
            results.get("client_rc"),
            "0",
            "[{}] client failed\n{results}",
            self.name
        );
        results
    }
}

/// Runs `tests/harness/<script> --lib <lib> <args>` (a harness that checks for the tools it
/// needs, then enters its own namespace), killing it past `limit`, and reads its result line.
pub fn run_harness(script: &str, args: &[String], limit: Duration) -> Results {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/harness").join(script))
        .arg("--lib")
        .arg(lib())
        .args(args);
    Results::parse(script, &run_bounded(&mut cmd, limit))
}

/// Runs scenarios at once (each has its own namespace, so fixed ports do not clash).
pub fn run_all(scenarios: &[Scenario]) -> Vec<Results> {
    thread::scope(|s| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|sc| s.spawn(move || sc.run()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The harness's result line, with its stderr kept for failure messages.
pub struct Results {
    pub name: String,
    map: HashMap<String, String>,
    line: String,
    pub stderr: String,
}

impl Results {
    /// Reads a harness's last stdout line; panics with its stderr unless it exited 0.
    pub fn parse(name: &str, out: &Output) -> Results {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stdout.lines().last().unwrap_or("").to_string();
        assert!(
            out.status.success() && !line.is_empty(),
            "[{name}] harness failed ({}); a namespace problem means these tests need root \
             (`unshare -n`):\n{stderr}",
            out.status
        );
        let fields = line.split_whitespace().filter_map(|t| t.split_once('='));
        Results {
            name: name.into(),
            map: fields
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            line,
            stderr,
        }
    }

    pub fn get(&self, key: &str) -> &str {
        self.map
            .get(key)
            .unwrap_or_else(|| panic!("[{}] no `{key}` in the result\n{self}", self.name))
    }

    pub fn num(&self, key: &str) -> f64 {
        let v = self.get(key);
        v.parse()
            .unwrap_or_else(|_| panic!("[{}] `{key}={v}` is not a number\n{self}", self.name))
    }
}

impl std::fmt::Display for Results {
    /// The result line, then the harness's stderr (server/client stderr, optional packet trace).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "result: {}\n--- harness stderr ---\n{}",
            self.line, self.stderr
        )
    }
}

/// Asserts `cond`, printing the run's result and stderr when it does not hold.
#[track_caller]
pub fn check(cond: bool, r: &Results, what: &str) {
    assert!(cond, "[{}] {what}\n{r}", r.name);
}

/// A keep-alive run without cork: Nagle and delayed ACKs cost about 5 packets per request.
#[track_caller]
pub fn check_uncorked(r: &Results, what: &str) {
    check(
        r.num("packets_per_request") >= 4.0,
        r,
        &format!("{what}: expected >= 4 packets per request"),
    );
}

/// A keep-alive run with cork per response: one segment per response, at most 2.2 packets per
/// request (request, response, and the odd ACK).
#[track_caller]
pub fn check_corked(r: &Results, what: &str) {
    check(
        r.num("packets_per_request") <= 2.2,
        r,
        &format!("{what}: expected <= 2.2 packets per request"),
    );
}

/// Every behaviour on at once (for checks that non-TCP traffic and stdout stay untouched).
pub const ALL_BEHAVIOURS: &[&str] = &[
    "SOCKTUNE_CORK=1",
    "SOCKTUNE_QUICKACK=0",
    "SOCKTUNE_FASTOPEN=256",
    "SOCKTUNE_FASTOPEN_CONNECT=1",
    "SOCKTUNE_DEFER_ACCEPT=5",
    "SOCKTUNE_NODELAY=1",
    "SOCKTUNE_BACKLOG=64",
    "SOCKTUNE_ROLE=both",
];

/// Keep-alive: `requests` GETs of the 100-byte file over one connection to `server` at `host`.
pub fn keepalive(name: &str, server: &str, host: &str, requests: u32) -> Scenario {
    let client = format!("python3 {{progs}}/ka_client.py {host} {{port}} {requests} /f100");
    Scenario::new(name, &client).server(server)
}

/// Defer-accept probe: a client that waits 0.5 s before sending, and a server that reports its
/// listener's TCP_DEFER_ACCEPT read-back and the bytes readable right after accept().
pub fn defer_probe(name: &str) -> Scenario {
    Scenario::new(name, "python3 {progs}/pause_client.py 127.0.0.1 {port} 0.5")
        .server("python3 {progs}/defer_server.py 127.0.0.1 {port}")
}

/// Asserts that neither program printed a `socktune:` line (none is due for a valid setting).
#[track_caller]
pub fn check_quiet(r: &Results) {
    let lines = r.num("srv_socktune_lines") + r.num("cli_socktune_lines");
    check(
        lines == 0.0,
        r,
        "a valid configuration should print no socktune: line",
    );
}

/// Compiles tests/progs/`name`.c (a check program that prints "0 failed" when every check
/// passed), runs it in a private network namespace without and then with `library` and every
/// behaviour on; returns the second run's stdout.
pub fn without_then_with_shim(name: &str, library: &Path) -> String {
    let bin = std::env::temp_dir().join(format!("socktune-{name}-{}", std::process::id()));
    let src = repo().join(format!("tests/progs/{name}.c"));
    let cc = run_bounded(
        Command::new("cc").arg("-O1").arg("-o").arg(&bin).arg(&src),
        Duration::from_secs(60),
    );
    assert!(
        cc.status.success(),
        "cc failed (is gcc installed?):\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let env = ALL_BEHAVIOURS
        .join(" ")
        .replace("SOCKTUNE_DEFER_ACCEPT=5", "SOCKTUNE_DEFER_ACCEPT=1");
    let mut stdout = String::new();
    for shim in [None, Some(library)] {
        let preload = shim
            .map(|l| format!("LD_PRELOAD={} {env}", l.display()))
            .unwrap_or_default();
        let script = format!("ip link set lo up && env {preload} {}", bin.display());
        let out = run_bounded(
            Command::new("unshare").args(["-n", "sh", "-c", &script]),
            Duration::from_secs(60),
        );
        let which = if preload.is_empty() {
            "without socktune (needs root for unshare -n)"
        } else {
            "under socktune"
        };
        stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("{name} {which}:\n{stdout}");
        assert!(
            out.status.success() && stdout.contains("\n0 failed"),
            "{name} failed {which}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(&bin).ok();
    stdout
}

/// A SOCKTUNE_STATS file summed up by tests/progs/stats_summary.py (its keys are listed there).
pub struct Summary(pub HashMap<String, String>);

impl Summary {
    pub fn read(stats: &Path, prom: Option<&Path>) -> Summary {
        let mut cmd = Command::new(python());
        cmd.arg(repo().join("tests/progs/stats_summary.py"))
            .arg(stats)
            .args(prom);
        let out = run_bounded(&mut cmd, Duration::from_secs(30));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "stats_summary.py failed on {}:\n{}",
            stats.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Summary(
            text.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("(absent)", String::as_str)
    }

    pub fn num(&self, key: &str) -> f64 {
        self.get(key).parse().unwrap_or(f64::NAN)
    }
}
