//! `socktune doctor`: what stands between a program and the gain. Each finding is one line,
//! tagged ok, note, warn or FAIL; a FAIL (socktune cannot act at all) makes the exit status 1.

use crate::launch::{find_lib, LIB_NAME};
use crate::{config, elf, flags, rules, Fail};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod process;
mod shim;

pub const HELP: &str = "\
usage: socktune doctor [--lib PATH] [CMD [ARGS...]]
       socktune doctor --pid PID

Checks, without sending any traffic:
  - the library: where it is found (as `socktune run` finds it, or --lib) and whether it loads
    (it runs /bin/true with it preloaded and SOCKTUNE_LOG=info);
  - SOCKTUNE_* variables already in the environment, with the library's own messages;
  - kernel support for each option, set on a scratch socket that is never connected:
    TCP_DEFER_ACCEPT, TCP_CORK, TCP_QUICKACK, TCP_FASTOPEN, TCP_FASTOPEN_CONNECT, TCP_NODELAY,
    SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT, TCP_SYNCNT,
    TCP_NOTSENT_LOWAT, SO_SNDBUF, SO_RCVBUF, IP_TOS, SO_MARK (needs CAP_NET_ADMIN),
    SO_PRIORITY, TCP_MAXSEG, and TCP_CONGESTION with the configured algorithm;
  - net.ipv4.tcp_fastopen (bit 1: client Fast Open, bit 2: server), net.core.somaxconn (the
    most --backlog can give), net.core.wmem_max and rmem_max (the most --sndbuf and --rcvbuf
    can give) and net.ipv4.tcp_allowed_congestion_control (what --congestion may name); all
    are per network namespace;
  - with Fast Open set, whether lo steers each connection to one CPU (RPS): without it a
    server's reply to a client on the same host can overtake its SYN-ACK and wait ~200 ms;
  - the rules of SOCKTUNE_CONFIG, as the library understands them;
  - CMD, if given: found on PATH, #! scripts followed to their interpreter (`#!/usr/bin/env X`
    to X on PATH), a version manager's shim (pyenv, rbenv, nodenv, goenv, jenv) to the
    program `TOOL which` names (what any other shell script execs, doctor cannot see), and
    the program the kernel finally runs: statically linked (no program interpreter, as Go
    builds: nothing can be preloaded), another C library's loader, a word size other than
    the library's, setuid/setgid or file capabilities (secure-execution mode: the loader
    ignores LD_PRELOAD and the library stays inert).

With --pid PID, looks into a running process instead (as its user or root):
  - whether the library is really loaded (/proc/PID/maps), and its version; if LD_PRELOAD
    names it but it is not mapped, the loader skipped it (a wrong path, another architecture,
    secure-execution mode) and the program runs untuned;
  - the SOCKTUNE_* settings it started with (/proc/PID/environ), parsed as the library parsed
    them at load, with the library's messages, the rules of its SOCKTUNE_CONFIG (the file as it
    is now) and the effective settings;
  - its counters, when SOCKTUNE_STATS_PROM is set (read from PATH.counters);
  - its TCP sockets; whether the program set TCP_NODELAY or TCP_CORK itself cannot be seen
    from outside the process.

For a program the preload cannot reach (static, secure-execution), doctor names what does:
systemd .socket options, per-route settings (ip route) and cgroup BPF sock_ops programs.

Each line is tagged ok, note, warn (an option will not work) or FAIL (socktune cannot work).

exit status: 0 when nothing blocks, 1 when a FAIL line was printed, 2 for a usage error.
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Ok,
    Note,
    Warn,
    Fail,
}

#[derive(Default)]
struct Findings {
    lines: Vec<(Tag, String)>,
}

impl Findings {
    fn add(&mut self, tag: Tag, text: impl Into<String>) {
        self.lines.push((tag, text.into()));
    }

    fn print(&self) {
        for (tag, text) in &self.lines {
            let tag = match tag {
                Tag::Ok => "ok",
                Tag::Note => "note",
                Tag::Warn => "warn",
                Tag::Fail => "FAIL",
            };
            println!("{tag:<5} {text}");
        }
    }

    fn blocked(&self) -> bool {
        self.lines.iter().any(|(t, _)| *t == Tag::Fail)
    }
}

pub fn doctor(args: Vec<String>) -> Result<i32, Fail> {
    let mut args = args.into_iter().peekable();
    let mut lib_arg = None;
    let mut pid = None;
    while let Some(a) = args.next_if(|a| a.starts_with('-')) {
        match a.as_str() {
            "-h" | "--help" => return Err(Fail::Help),
            "--" => break,
            "--lib" => {
                let p = args
                    .next()
                    .ok_or_else(|| Fail::Usage("--lib needs a PATH".into()))?;
                lib_arg = Some(PathBuf::from(p));
            }
            "--pid" => pid = Some(parse_pid(args.next())?),
            _ => match (a.strip_prefix("--lib="), a.strip_prefix("--pid=")) {
                (Some(p), _) => lib_arg = Some(PathBuf::from(p)),
                (_, Some(p)) => pid = Some(parse_pid(Some(p.to_string()))?),
                _ => return Err(Fail::Usage(format!("unknown flag {a}"))),
            },
        }
    }
    let cmd = args.next();
    let mut f = Findings::default();
    if let Some(pid) = pid {
        if cmd.is_some() || lib_arg.is_some() {
            return Err(Fail::Usage("--pid takes neither a CMD nor --lib".into()));
        }
        process::check_process(&mut f, pid);
        return Ok(verdict(&f));
    }
    let lib = check_library(&mut f, lib_arg.as_deref());
    let cfg = check_environment(&mut f, cmd.as_deref());
    check_kernel(&mut f, &cfg);
    check_sysctls(&mut f);
    if cfg.fastopen.is_some() || cfg.fastopen_connect {
        check_loopback_order(&mut f);
    }
    if let Some(cmd) = cmd {
        let lib_elf = lib.as_deref().and_then(|l| elf::read(l).ok().flatten());
        check_command(&mut f, &cmd, lib_elf.as_ref());
    }
    Ok(verdict(&f))
}

fn parse_pid(arg: Option<String>) -> Result<u32, Fail> {
    arg.as_deref()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Fail::Usage("--pid needs a process id".into()))
}

/// Prints the findings and the verdict; the exit status.
fn verdict(f: &Findings) -> i32 {
    f.print();
    if f.blocked() {
        println!("verdict: something blocks socktune (the FAIL lines above)");
        1
    } else {
        println!("verdict: nothing blocks socktune");
        0
    }
}

/// What reaches a program that LD_PRELOAD cannot: the kernel's own places for the same options.
fn offer_alternatives(f: &mut Findings) {
    for text in [
        "instead: for its listeners, systemd socket activation sets the options in the .socket unit: NoDelay=, DeferAcceptSec=, KeepAlive=, KeepAliveTimeSec=, KeepAliveIntervalSec=, KeepAliveProbes=, Backlog=, ReceiveBuffer=, SendBuffer= (it has no Fast Open option; net.ipv4.tcp_fastopen bit 0x400 turns it on for every listener)",
        "instead: per route, `ip route change ROUTE ... quickack 1` (no delayed ACKs), `initcwnd N`, `rto_min T`",
        "instead: a cgroup BPF sock_ops program (bpftool cgroup attach CGROUP sock_ops) sets keepalive, the congestion control, TCP_NODELAY and buffer sizes on every connection of the cgroup",
    ] {
        f.add(Tag::Note, text);
    }
}

fn check_library(f: &mut Findings, given: Option<&Path>) -> Option<PathBuf> {
    let lib = match find_lib(given) {
        Ok(lib) => lib,
        Err(Fail::Exit(_, msg) | Fail::Usage(msg)) => {
            f.add(
                Tag::Fail,
                format!("library: {}", msg.trim_start_matches("socktune: ")),
            );
            return None;
        }
        Err(Fail::Help) => unreachable!("find_lib never asks for help"),
    };
    // A run that is not inert makes the library print its settings at info level, once the
    // stub has loaded the shim: at an exec under SOCKTUNE_INHERIT=always, as here, or a socket.
    let probe = Command::new("/bin/sh")
        .args(["-c", "exec /bin/true"])
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| {
            k != "LD_PRELOAD" && !k.as_bytes().starts_with(config::PREFIX.as_bytes())
        }))
        .env("LD_PRELOAD", &lib)
        .env("SOCKTUNE_LOG", "info")
        .env("SOCKTUNE_NODELAY", "1")
        .env("SOCKTUNE_INHERIT", "always")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output();
    match probe {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() && err.contains("socktune: effective settings") {
                f.add(
                    Tag::Ok,
                    format!("library: {} loads (/bin/sh ran with it)", lib.display()),
                );
            } else {
                let why = err.lines().next().unwrap_or("no output").to_string();
                f.add(
                    Tag::Fail,
                    format!("library: {} does not load: {why}", lib.display()),
                );
            }
        }
        Err(e) => f.add(
            Tag::Warn,
            format!(
                "library: found {}, but /bin/true could not be run to load it: {}",
                lib.display(),
                crate::describe(&e)
            ),
        ),
    }
    Some(lib)
}

/// Reports on the `SOCKTUNE_*` variables of the environment and the rules file they name, for
/// `cmd` if given; returns the settings they make.
fn check_environment(f: &mut Findings, cmd: Option<&str>) -> config::Config {
    let vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .filter(|(k, _)| k.starts_with(config::PREFIX) && k != config::REPORTED_VAR)
        .collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    if !names.is_empty() {
        f.add(
            Tag::Note,
            format!(
                "environment: sets {} (kept by socktune run)",
                names.join(" ")
            ),
        );
    }
    let parsed = config::parse(vars.iter().cloned());
    let cfg = match &parsed.config.rules_file {
        Some(path) => check_rules(f, path, &vars, cmd).unwrap_or(parsed.config.clone()),
        None => parsed.config.clone(),
    };
    f.add(
        Tag::Note,
        match cfg.inherit {
            config::Inherit::Chosen => {
                "children: one the program execs with an environment of \
                its own choosing gets that environment, untuned (SOCKTUNE_INHERIT=always puts \
                the settings back)"
            }
            config::Inherit::Always => {
                "children: LD_PRELOAD and SOCKTUNE_* are put back into \
                an environment the program chose for a child it execs, unless the process \
                changed its user or group (SOCKTUNE_INHERIT=always)"
            }
        }
        .to_string(),
    );
    for problem in parsed.problems {
        f.add(
            Tag::Warn,
            format!("environment: {}", problem.trim_start_matches("socktune: ")),
        );
    }
    cfg
}

/// Prints the rules of `path` as the library reads them, with its problems; for `cmd`, which
/// rules are its own. Returns the top level, the variables over the file's.
fn check_rules(
    f: &mut Findings,
    path: &str,
    vars: &[(String, String)],
    cmd: Option<&str>,
) -> Option<config::Config> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let line = rules::unreadable(path, &crate::describe(&e));
            f.add(
                Tag::Warn,
                format!("rules: {}", line.trim_start_matches("socktune: ")),
            );
            return None;
        }
    };
    let loaded = rules::load(path, &text, vars, None);
    for problem in &loaded.problems {
        f.add(
            Tag::Warn,
            format!("rules: {}", problem.trim_start_matches("socktune: ")),
        );
    }
    let program = cmd.map(|c| {
        Path::new(c)
            .file_name()
            .map_or(c.into(), |n| n.to_string_lossy())
    });
    f.add(
        Tag::Note,
        format!(
            "rules: {path}: {} rules, tried in order; a socket that matches none gets the top level",
            loaded.rules.0.len()
        ),
    );
    for rule in &loaded.rules.0 {
        let theirs = match (&program, &rule.program) {
            (Some(name), Some(glob)) if !rules::glob_matches(glob, name) => {
                format!(" (not for {name})")
            }
            _ => String::new(),
        };
        f.add(Tag::Note, format!("rules: {}{theirs}", rule.describe()));
    }
    Some(loaded.top)
}

/// An option set on a scratch socket: its name, level, number and value, and the settings that
/// need it, as the variable (without the prefix) and the value asking for it ("" for a switch).
struct Probe {
    option: &'static str,
    level: libc::c_int,
    id: libc::c_int,
    value: libc::c_int,
    needed_by: &'static [(&'static str, &'static str)],
}

const PROBES: &[Probe] = &[
    Probe {
        option: "TCP_DEFER_ACCEPT",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_DEFER_ACCEPT,
        value: 5,
        needed_by: &[("DEFER_ACCEPT", "")],
    },
    Probe {
        option: "TCP_CORK",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_CORK,
        value: 1,
        needed_by: &[("CORK", "")],
    },
    Probe {
        option: "TCP_QUICKACK",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_QUICKACK,
        value: 0,
        needed_by: &[("QUICKACK", "off")],
    },
    Probe {
        option: "TCP_FASTOPEN",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_FASTOPEN,
        value: 16,
        needed_by: &[("FASTOPEN", "")],
    },
    Probe {
        option: "TCP_FASTOPEN_CONNECT",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_FASTOPEN_CONNECT,
        value: 1,
        needed_by: &[("FASTOPEN_CONNECT", "")],
    },
    Probe {
        option: "TCP_NODELAY",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_NODELAY,
        value: 1,
        needed_by: &[("NODELAY", ""), ("CORK", "")],
    },
    Probe {
        option: "SO_KEEPALIVE",
        level: libc::SOL_SOCKET,
        id: libc::SO_KEEPALIVE,
        value: 1,
        needed_by: KEEPALIVE,
    },
    Probe {
        option: "TCP_KEEPIDLE",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_KEEPIDLE,
        value: 30,
        needed_by: KEEPALIVE,
    },
    Probe {
        option: "TCP_KEEPINTVL",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_KEEPINTVL,
        value: 5,
        needed_by: KEEPALIVE,
    },
    Probe {
        option: "TCP_KEEPCNT",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_KEEPCNT,
        value: 3,
        needed_by: KEEPALIVE,
    },
    Probe {
        option: "TCP_USER_TIMEOUT",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_USER_TIMEOUT,
        value: 20000,
        needed_by: &[("USER_TIMEOUT", "MS")],
    },
    Probe {
        option: "TCP_SYNCNT",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_SYNCNT,
        value: 2,
        needed_by: &[("SYNCNT", "N")],
    },
    Probe {
        option: "TCP_NOTSENT_LOWAT",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_NOTSENT_LOWAT,
        value: 16384,
        needed_by: &[("NOTSENT_LOWAT", "BYTES")],
    },
    Probe {
        option: "SO_SNDBUF",
        level: libc::SOL_SOCKET,
        id: libc::SO_SNDBUF,
        value: 65536,
        needed_by: &[("SNDBUF", "BYTES")],
    },
    Probe {
        option: "SO_RCVBUF",
        level: libc::SOL_SOCKET,
        id: libc::SO_RCVBUF,
        value: 65536,
        needed_by: &[("RCVBUF", "BYTES")],
    },
    Probe {
        option: "IP_TOS",
        level: libc::IPPROTO_IP,
        id: libc::IP_TOS,
        value: 0x10,
        needed_by: &[("TOS", "BYTE")],
    },
    Probe {
        option: "SO_MARK",
        level: libc::SOL_SOCKET,
        id: libc::SO_MARK,
        value: 1,
        needed_by: &[("MARK", "N")],
    },
    Probe {
        option: "SO_PRIORITY",
        level: libc::SOL_SOCKET,
        id: libc::SO_PRIORITY,
        value: 1,
        needed_by: &[("PRIORITY", "N")],
    },
    Probe {
        option: "TCP_MAXSEG",
        level: libc::IPPROTO_TCP,
        id: libc::TCP_MAXSEG,
        value: 1200,
        needed_by: &[("MAXSEG", "BYTES")],
    },
];

const KEEPALIVE: &[(&str, &str)] = &[("KEEPALIVE", "IDLE")];

/// `--nodelay and --cork`, `--quickack off`.
fn flags_asking(needed_by: &[(&str, &str)]) -> String {
    let asking: Vec<String> = needed_by
        .iter()
        .map(|&(name, value)| {
            let flag = flags::flag(name);
            if value.is_empty() {
                flag
            } else {
                format!("{flag} {value}")
            }
        })
        .collect();
    asking.join(" and ")
}

fn check_kernel(f: &mut Findings, cfg: &config::Config) {
    // SAFETY: plain socket(2); the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        f.add(
            Tag::Warn,
            format!(
                "kernel: no TCP socket to probe the options with: {}",
                crate::describe(&e)
            ),
        );
        return;
    }
    let mut accepted = Vec::new();
    for probe in PROBES {
        let (name, flag) = (probe.option, flags_asking(probe.needed_by));
        // SAFETY: setsockopt with a c_int value of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                probe.level,
                probe.id,
                (&probe.value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let err = std::io::Error::last_os_error();
        if rc == 0 {
            accepted.push(name);
        } else if probe.id == libc::TCP_FASTOPEN_CONNECT
            && err.raw_os_error() == Some(libc::EOPNOTSUPP)
        {
            f.add(
                Tag::Warn,
                format!("kernel: {name} refused because net.ipv4.tcp_fastopen lacks the client bit (1): {flag} does nothing"),
            );
        } else if probe.id == libc::SO_MARK && err.raw_os_error() == Some(libc::EPERM) {
            f.add(
                Tag::Warn,
                format!("kernel: {name} needs CAP_NET_ADMIN, which this process lacks: {flag} works only for a program that has it"),
            );
        } else {
            f.add(
                Tag::Warn,
                format!(
                    "kernel: {name} refused ({}): {flag} does nothing",
                    crate::describe(&err)
                ),
            );
        }
    }
    if let Some(algo) = &cfg.opts.congestion {
        check_congestion(f, fd, algo);
    }
    // SAFETY: closes the fd opened above.
    unsafe { libc::close(fd) };
    if !accepted.is_empty() {
        f.add(Tag::Ok, format!("kernel: accepts {}", accepted.join(", ")));
    }
}

/// Whether the kernel lets this process set congestion control `algo`, as SOCKTUNE_CONGESTION
/// asks.
fn check_congestion(f: &mut Findings, fd: libc::c_int, algo: &str) {
    // SAFETY: setsockopt with a byte string of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            algo.as_ptr().cast(),
            algo.len() as libc::socklen_t,
        )
    };
    let flag = flags::flag("CONGESTION");
    if rc == 0 {
        f.add(Tag::Ok, format!("kernel: TCP_CONGESTION {algo} accepted"));
    } else {
        let err = std::io::Error::last_os_error();
        f.add(
            Tag::Warn,
            format!(
                "kernel: TCP_CONGESTION {algo} refused ({}): not in \
                 net.ipv4.tcp_allowed_congestion_control, or not loaded; {flag} {algo} does nothing",
                crate::describe(&err)
            ),
        );
    }
}

fn sysctl_text(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

fn sysctl(name: &str) -> Option<u64> {
    sysctl_text(name)?.parse().ok()
}

fn check_sysctls(f: &mut Findings) {
    match sysctl("net.ipv4.tcp_fastopen") {
        Some(v) => {
            let on = |bit| if v & bit != 0 { "on" } else { "off" };
            let text = format!(
                "net.ipv4.tcp_fastopen = {v}: client Fast Open {}, server Fast Open {}",
                on(1),
                on(2)
            );
            let missing: Vec<String> = [(1, "FASTOPEN_CONNECT"), (2, "FASTOPEN")]
                .iter()
                .filter(|(bit, _)| v & bit == 0)
                .map(|&(bit, name)| format!("{} needs bit {bit}", flags::flag(name)))
                .collect();
            if missing.is_empty() {
                f.add(Tag::Ok, text);
            } else {
                f.add(
                    Tag::Warn,
                    format!(
                        "{text}; {} (sysctl -w net.ipv4.tcp_fastopen={}, per network namespace)",
                        missing.join(", "),
                        v | 3
                    ),
                );
            }
        }
        None => f.add(Tag::Warn, "net.ipv4.tcp_fastopen: cannot be read"),
    }
    match sysctl("net.core.somaxconn") {
        Some(v) => f.add(
            Tag::Note,
            format!(
                "net.core.somaxconn = {v}: the kernel clamps {} to it",
                flags::flag("BACKLOG")
            ),
        ),
        None => f.add(Tag::Warn, "net.core.somaxconn: cannot be read"),
    }
    for (name, setting) in [
        ("net.core.wmem_max", "SNDBUF"),
        ("net.core.rmem_max", "RCVBUF"),
    ] {
        match sysctl(name) {
            Some(v) => f.add(
                Tag::Note,
                format!(
                    "{name} = {v}: the kernel clamps {} to it",
                    flags::flag(setting)
                ),
            ),
            None => f.add(Tag::Warn, format!("{name}: cannot be read")),
        }
    }
    let allowed = "net.ipv4.tcp_allowed_congestion_control";
    match (
        sysctl_text(allowed),
        sysctl_text("net.ipv4.tcp_available_congestion_control"),
    ) {
        (Some(names), available) => f.add(
            Tag::Note,
            format!(
                "{allowed} = {names}: what {} may name (with CAP_NET_ADMIN, any loaded one: {})",
                flags::flag("CONGESTION"),
                available.unwrap_or_else(|| "unknown".into())
            ),
        ),
        (None, _) => f.add(Tag::Warn, format!("{allowed}: cannot be read")),
    }
}

/// Plain loopback queues a packet on the sending CPU, so a Fast Open server's reply can overtake
/// its SYN-ACK; the client drops it and waits about 200 ms for the retransmission (bench/README.md).
fn check_loopback_order(f: &mut Findings) {
    const RPS: &str = "/sys/class/net/lo/queues/rx-0/rps_cpus";
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(mask) = std::fs::read_to_string(RPS) else {
        return;
    };
    if cpus > 1 && mask.trim().chars().all(|c| matches!(c, '0' | ',')) {
        f.add(
            Tag::Note,
            format!(
                "loopback: {RPS} is {}, so with {cpus} CPUs a Fast Open server's reply can reach a \
                 client on this host before its SYN-ACK, be dropped and come again ~200 ms later (the \
                 kernel's, without socktune too); writing {:x} there keeps each connection in order",
                mask.trim(),
                (1u64 << cpus.min(63)) - 1
            ),
        );
    }
}

/// Where execvp would find `cmd`: as given if it holds a slash, else the first executable file
/// on PATH.
fn resolve(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Some(PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| {
        let exec = CString::new(p.as_os_str().as_bytes()).ok();
        // SAFETY: access(2) with a NUL-terminated path.
        p.is_file() && exec.is_some_and(|c| unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
    })
}

/// What a file's first line says: `#!interp [arg]`, as the kernel reads it.
fn shebang(path: &Path) -> Option<(String, Option<String>)> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|&b| b == b'\n').next()?).into_owned();
    let line = line.trim();
    let (interp, arg) = match line.split_once([' ', '\t']) {
        Some((i, a)) => (
            i.to_string(),
            Some(a.trim().to_string()).filter(|a| !a.is_empty()),
        ),
        None => (line.to_string(), None),
    };
    Some((interp, arg))
}

/// Whether `interp` is a shell: what its script runs next is the script's business.
fn is_shell(interp: &Path) -> bool {
    let name = interp.file_name().and_then(|n| n.to_str());
    name.is_some_and(|n| matches!(n, "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash"))
}

/// Follows `cmd` through #! scripts to the program the kernel runs, and checks that program.
fn check_command(f: &mut Findings, cmd: &str, lib: Option<&elf::Elf>) {
    let Some(mut path) = resolve(cmd) else {
        f.add(Tag::Fail, format!("{cmd}: command not found on PATH"));
        return;
    };
    // The kernel follows at most a few interpreters; a loop ends here too.
    for _ in 0..5 {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                f.add(
                    Tag::Fail,
                    format!("{}: {}", path.display(), crate::describe(&e)),
                );
                return;
            }
        };
        if let Some((interp, arg)) = shebang(&path) {
            let via_env = Path::new(&interp).file_name().is_some_and(|n| n == "env");
            // `#!/usr/bin/env [-S] prog ...` runs prog from PATH.
            let target = arg.as_deref().filter(|_| via_env).and_then(|a| {
                a.split_whitespace()
                    .find(|w| !w.starts_with('-'))
                    .map(str::to_string)
            });
            let next = match &target {
                Some(prog) => resolve(prog),
                None => Some(PathBuf::from(&interp)),
            };
            let Some(next) = next else {
                f.add(
                    Tag::Fail,
                    format!(
                        "{}: its interpreter {} is not on PATH",
                        path.display(),
                        target.unwrap_or(interp)
                    ),
                );
                return;
            };
            let shim = is_shell(&next).then(|| shim::resolve(&path)).flatten();
            if let Some(shim) = shim {
                f.add(
                    Tag::Note,
                    format!(
                        "{}: a {} shim; the program it runs is {} ({})",
                        path.display(),
                        shim.tool,
                        shim.program.display(),
                        shim.asked
                    ),
                );
                path = shim.program;
                continue;
            }
            let text = if is_shell(&next) {
                format!(
                    "{}: a shell script run by {}, which is what doctor checks next; a shell \
                     script may exec another program (a pyenv or rbenv shim execs the real \
                     interpreter), which doctor cannot see: it inherits LD_PRELOAD and \
                     SOCKTUNE_*, so run `socktune doctor` on that program too",
                    path.display(),
                    next.display()
                )
            } else {
                format!(
                    "{}: a #! script run by {}; the library loads into the interpreter and \
                     into the programs it starts (they inherit LD_PRELOAD and SOCKTUNE_*)",
                    path.display(),
                    next.display()
                )
            };
            f.add(Tag::Note, text);
            path = next;
            continue;
        }
        match elf::read(&path) {
            Ok(Some(program)) => {
                let secure = check_secure(f, &path, &meta);
                if !check_elf(f, &path, &program, lib, secure) || secure {
                    offer_alternatives(f);
                }
            }
            Ok(None) => {
                f.add(
                    Tag::Note,
                    format!(
                        "{}: neither ELF nor #! script; execvp runs it with /bin/sh",
                        path.display()
                    ),
                );
                path = PathBuf::from("/bin/sh");
                continue;
            }
            Err(e) => f.add(
                Tag::Fail,
                format!(
                    "{}: cannot be read: {}",
                    path.display(),
                    crate::describe(&e)
                ),
            ),
        }
        return;
    }
    f.add(
        Tag::Fail,
        format!("{}: too many nested interpreters", path.display()),
    );
}

/// `secure`: already reported as running in secure-execution mode, where nothing applies.
/// False when the loader cannot preload the library into it.
fn check_elf(
    f: &mut Findings,
    path: &Path,
    program: &elf::Elf,
    lib: Option<&elf::Elf>,
    secure: bool,
) -> bool {
    let p = path.display();
    let Some(interp) = &program.interp else {
        let kind = if program.dynamic {
            "static-pie"
        } else {
            "statically linked"
        };
        f.add(
            Tag::Fail,
            format!(
                "{p}: {kind} (no program interpreter): the dynamic loader never runs, so \
                 LD_PRELOAD cannot load {LIB_NAME} (Go programs are built this way)"
            ),
        );
        return false;
    };
    if interp.contains("musl") {
        f.add(
            Tag::Fail,
            format!("{p}: uses musl's loader {interp}; {LIB_NAME} is built for glibc"),
        );
        return false;
    } else if let Some(lib) = lib.filter(|l| (l.bits, l.machine) != (program.bits, program.machine))
    {
        f.add(
            Tag::Fail,
            format!(
                "{p}: {}-bit, machine {}; the library is {}-bit, machine {}: the loader skips it",
                program.bits, program.machine, lib.bits, lib.machine
            ),
        );
        return false;
    } else if secure {
        f.add(
            Tag::Note,
            format!("{p}: dynamically linked (loader {interp})"),
        );
    } else {
        f.add(
            Tag::Ok,
            format!("{p}: dynamically linked (loader {interp}): LD_PRELOAD applies"),
        );
    }
    true
}

/// Secure-execution mode (AT_SECURE) starts when exec changes the real user or group into
/// another effective one, or file capabilities raise privileges: the loader then ignores
/// LD_PRELOAD, and the library stays inert even if loaded. True when that is certain.
fn check_secure(f: &mut Findings, path: &Path, meta: &std::fs::Metadata) -> bool {
    let p = path.display();
    let mut secure = false;
    let mode = meta.permissions().mode();
    let (suid, sgid) = (mode & 0o4000 != 0, mode & 0o2000 != 0 && mode & 0o010 != 0);
    if suid || sgid {
        let bits = match (suid, sgid) {
            (true, true) => "setuid and setgid",
            (true, false) => "setuid",
            _ => "setgid",
        };
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let changes = (suid && meta.uid() != uid) || (sgid && meta.gid() != gid);
        if nosuid_mount(path) {
            f.add(
                Tag::Note,
                format!("{p}: {bits}, but its filesystem is mounted nosuid, so it runs as you"),
            );
        } else if changes {
            secure = true;
            f.add(
                Tag::Fail,
                format!(
                    "{p}: {bits} (owner {}, group {}): it runs in secure-execution mode, where \
                     the loader ignores LD_PRELOAD and the library does nothing",
                    meta.uid(),
                    meta.gid()
                ),
            );
        } else {
            f.add(
                Tag::Warn,
                format!("{p}: {bits} to your own user/group, so it works for you, but for no other user"),
            );
        }
    }
    if has_file_capabilities(path) {
        f.add(
            Tag::Warn,
            format!("{p}: has file capabilities; where they raise privileges it runs in secure-execution mode and the preload is ignored"),
        );
    }
    secure
}

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

fn nosuid_mount(path: &Path) -> bool {
    let Some(c) = c_path(path) else { return false };
    // SAFETY: statvfs is plain data; all zeroes is a valid value for statvfs() to overwrite.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs with a NUL-terminated path and a zeroed struct of the right type.
    unsafe { libc::statvfs(c.as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_NOSUID != 0 }
}

fn has_file_capabilities(path: &Path) -> bool {
    let Some(c) = c_path(path) else { return false };
    // SAFETY: getxattr with a size of 0 only asks for the value's length.
    unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        ) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel and sysctl lines name flags from the settings table (or doctor's own --lib).
    #[test]
    fn findings_name_only_flags_of_the_table() {
        let mut f = Findings::default();
        let mut cfg = config::Config::default();
        cfg.opts.congestion = Some("reno".into());
        check_kernel(&mut f, &cfg);
        check_sysctls(&mut f);
        let mut texts: Vec<String> = f.lines.into_iter().map(|(_, text)| text).collect();
        texts.extend(PROBES.iter().map(|p| flags_asking(p.needed_by)));
        texts.push(HELP.into());
        let known: Vec<String> = config::SETTINGS
            .iter()
            .map(|s| flags::flag(s.name))
            .collect();
        for text in &texts {
            for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
                if word.starts_with("--") && !["--lib", "--pid"].contains(&word) {
                    assert!(known.contains(&word.to_string()), "{word} in {text:?}");
                }
            }
        }
    }

    #[test]
    fn shebang_lines() {
        let dir = std::env::temp_dir().join(format!("socktune-shebang-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s");
        std::fs::write(&script, "#!/usr/bin/env -S python3 -u\nprint()\n").unwrap();
        assert_eq!(
            shebang(&script),
            Some(("/usr/bin/env".into(), Some("-S python3 -u".into())))
        );
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(shebang(&script), Some(("/bin/sh".into(), None)));
        std::fs::write(&script, "echo hi\n").unwrap();
        assert_eq!(shebang(&script), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A script run by `env sh` behind another script, execing no version manager. Doctor
    /// follows both to the shell and says that the shell may exec what it cannot see.
    #[test]
    fn a_chain_of_scripts_ends_at_the_shell_with_a_caveat() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("socktune-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shim = dir.join("shim");
        let outer = dir.join("outer");
        std::fs::write(&shim, "#!/usr/bin/env sh\nexec true\n").unwrap();
        std::fs::write(&outer, format!("#!{}\n", shim.display())).unwrap();
        for script in [&shim, &outer] {
            std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut f = Findings::default();
        check_command(&mut f, outer.to_str().unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
        let texts: Vec<&str> = f.lines.iter().map(|(_, t)| t.as_str()).collect();
        let sh = resolve("sh").unwrap();
        let shell_note = format!("{}: a shell script run by {}", shim.display(), sh.display());
        assert!(texts[0].starts_with(&format!("{}: a #! script run by", outer.display())));
        assert!(texts[1].starts_with(&shell_note), "{texts:?}");
        assert!(texts[1].contains("which doctor cannot see"), "{texts:?}");
        assert!(texts[2].starts_with(&sh.display().to_string()), "{texts:?}");
    }
}
