//! The `socktune` launcher, run as a user runs it: `run` becomes the command (pid, exit status,
//! signal dispositions) with the library loaded and tuning real traffic; bad values and missing
//! commands get the conventional exit codes; `env` output, sourced by sh, sets what `run` sets;
//! `doctor` on a static binary, a setuid one, a script and a version-manager shim; `report` on
//! stats files; `--help` and the man page cover every flag.
mod common;
use common::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// `program` without the settings of the environment the tests run in.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SOCKTUNE_")) {
        cmd.env_remove(k);
    }
    cmd
}

/// The launcher cargo built for these tests: target/<profile>/socktune, beside the library
/// `lib()` builds, which is where `run` looks first.
fn socktune() -> Command {
    clean(launcher())
}

/// `socktune ARGS...`
fn launch(args: &[&str]) -> Output {
    let mut cmd = socktune();
    cmd.args(args);
    run_bounded(&mut cmd, LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn run_becomes_the_command_with_the_library_loaded() {
    let mut cmd = socktune();
    cmd.args(["run", "--cork", "--ports", "80, 8080", "--", "sh", "-c"])
        .arg(r#"echo "$$"; echo "$LD_PRELOAD"; echo "$SOCKTUNE_CORK|$SOCKTUNE_PORTS"; exit 7"#)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(
        lines[0],
        pid.to_string(),
        "the command must keep socktune's pid"
    );
    assert_eq!(
        Path::new(lines[1]),
        lib().canonicalize().unwrap(),
        "found beside the binary"
    );
    assert_eq!(lines[2], "1|80, 8080");
    assert!(out.stderr.is_empty(), "{}", describe(&out));

    // The command's arguments pass on byte for byte, UTF-8 or not.
    let bytes = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff");
    let mut cmd = socktune();
    cmd.args(["run", "--", "printf", "%s"]).arg(bytes);
    let out = run_bounded(&mut cmd, LIMIT);
    assert_eq!(out.stdout, bytes.as_bytes(), "{}", describe(&out));
}

#[test]
fn run_passes_on_signals_and_dispositions() {
    // A signal that kills the command is socktune's own death.
    let out = launch(&["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGTERM),
        "{}",
        describe(&out)
    );

    // Started with SIGPIPE ignored and SIGUSR1 blocked (as systemd starts services, say), the
    // command must inherit both: Rust's runtime would ignore SIGPIPE and std's exec would reset
    // both if socktune let them.
    let status_of = |ignore_pipe: bool| {
        let mut cmd = socktune();
        cmd.args(["run", "--nodelay", "--", "cat", "/proc/self/status"]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if ignore_pipe {
                    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGUSR1);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                }
                Ok(())
            })
        };
        let out = run_bounded(&mut cmd, LIMIT);
        assert!(out.status.success(), "{}", describe(&out));
        let status = text(&out.stdout);
        let mask = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        (mask("SigIgn:"), mask("SigBlk:"))
    };
    let bit = |sig: i32| 1u64 << (sig - 1);
    let (ign, blk) = status_of(true);
    assert!(
        ign & bit(libc::SIGPIPE) != 0,
        "SIGPIPE must stay ignored: SigIgn {ign:x}"
    );
    assert!(
        blk & bit(libc::SIGUSR1) != 0,
        "SIGUSR1 must stay blocked: SigBlk {blk:x}"
    );
    let (ign, blk) = status_of(false);
    assert!(
        ign & bit(libc::SIGPIPE) == 0,
        "SIGPIPE must stay default: SigIgn {ign:x}"
    );
    assert!(
        blk & bit(libc::SIGUSR1) == 0,
        "nothing blocked: SigBlk {blk:x}"
    );
}

#[test]
fn run_refuses_bad_values_and_reports_missing_commands() {
    let ran = "echo ran";
    let dir = scratch("launcher-rules");
    let rules = dir.join("bad.toml");
    std::fs::write(
        &rules,
        "nodelay = true\n\n[[rule]]\nports = \"80\"\ntos = 1234\n",
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let missing = dir.join("missing.toml");
    let missing = missing.to_str().unwrap();
    let bad_rule = format!("{rules}:5: tos=\"1234\" is not valid (accepted: a byte from 0 to 255)");
    let unreadable = format!("SOCKTUNE_CONFIG=\"{missing}\" cannot be read");
    for (args, needle) in [
        (&["--config", rules][..], bad_rule.as_str()),
        (&["--config", missing], unreadable.as_str()),
        (
            &["--ab", "150"][..],
            r#"SOCKTUNE_AB="150" is not valid (accepted: a whole percent"#,
        ),
        (
            &["--quickack", "sometimes"],
            r#"SOCKTUNE_QUICKACK="sometimes" is not valid"#,
        ),
        (
            &["--ports", "80-abc"],
            r#"SOCKTUNE_PORTS="80-abc" is not valid"#,
        ),
        (
            &["--role", "server", "--cork=perhaps"],
            r#"SOCKTUNE_CORK="perhaps" is not valid"#,
        ),
        (&["--corkk"], "unknown flag --corkk"),
        (&["--defer-accept"], "--defer-accept needs a value"),
        // Followed by `-- sh -c ...`: the `--` ends the flags, it is no value.
        (&["--fastopen"], "--fastopen needs a value (QLEN)"),
    ] {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        if args != ["--defer-accept"] {
            all.extend_from_slice(&["--", "sh", "-c", ran]);
        }
        let out = launch(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", describe(&out));
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: want {needle:?}\n{}",
            describe(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: the command must not start"
        );
    }
    let out = launch(&["run", "--cork"]);
    assert_eq!(out.status.code(), Some(2), "no command: {}", describe(&out));

    let out = launch(&["run", "--cork", "--", "socktune-no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert!(text(&out.stderr).contains("socktune-no-such-command: command not found"));

    let dir = scratch("launcher-noexec");
    let file = dir.join("data.txt");
    std::fs::write(&file, "not a program\n").unwrap();
    let out = launch(&["run", "--", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        describe(&out)
    );

    let out = launch(&[
        "run",
        "--lib",
        dir.join("libnone.so").to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    std::fs::remove_dir_all(&dir).ok();
}

/// `LD_PRELOAD` and `SOCKTUNE_*` lines of `env` output, sorted.
fn tuning_vars(env_output: &str) -> Vec<String> {
    let mut vars: Vec<String> = env_output
        .lines()
        .filter(|l| l.starts_with("LD_PRELOAD=") || l.starts_with("SOCKTUNE_"))
        .map(str::to_string)
        .collect();
    vars.sort();
    vars
}

#[test]
fn env_output_sourced_by_sh_sets_what_run_sets() {
    let dir = scratch("launcher-env");
    let stats = dir.join("it's stats.jsonl");
    let flags = [
        "--cork",
        "--quickack",
        "off",
        "--ports",
        "80, 8080",
        "--stats",
        stats.to_str().unwrap(),
        "--ab",
        "50",
        "--log-file",
        "relative.log",
    ];
    let mut run = socktune();
    run.current_dir(&dir)
        .arg("run")
        .args(flags)
        .args(["--", "env"]);
    let by_run = run_bounded(&mut run, LIMIT);
    assert!(by_run.status.success(), "{}", describe(&by_run));

    let exports = socktune()
        .current_dir(&dir)
        .arg("env")
        .args(flags)
        .output()
        .unwrap();
    assert!(exports.status.success(), "{}", describe(&exports));
    let mut sh = clean("sh");
    sh.current_dir(&dir)
        .args(["-c", "eval \"$1\"; env", "sh", &text(&exports.stdout)]);
    let by_sh = run_bounded(&mut sh, LIMIT);
    assert!(by_sh.status.success(), "{}", describe(&by_sh));

    let want = tuning_vars(&text(&by_run.stdout));
    eprintln!("{}", want.join("\n"));
    assert_eq!(
        tuning_vars(&text(&by_sh.stdout)),
        want,
        "exports:\n{}",
        text(&exports.stdout)
    );
    let stats_line = format!("SOCKTUNE_STATS={}", stats.display());
    let log_line = format!("SOCKTUNE_LOG_FILE={}", dir.join("relative.log").display());
    for line in [
        "SOCKTUNE_CORK=1",
        "SOCKTUNE_QUICKACK=off",
        "SOCKTUNE_PORTS=80, 8080",
        &stats_line,
        &log_line,
    ] {
        assert!(
            want.iter().any(|w| w == line),
            "missing {line:?} in {want:?}"
        );
    }

    // The same variables as systemd and docker lines.
    let docker = launch(&[
        "env",
        "--format",
        "docker",
        "--lib",
        "/usr/local/lib/libsocktune.so",
        "--cork",
        "--ab",
        "50",
    ]);
    assert_eq!(
        text(&docker.stdout),
        "LD_PRELOAD=/usr/local/lib/libsocktune.so\nSOCKTUNE_CORK=1\nSOCKTUNE_AB=50\n"
    );
    let systemd = launch(&[
        "env",
        "--format=systemd",
        "--lib",
        "/usr/local/lib/libsocktune.so",
        "--ports",
        "80, 443",
    ]);
    assert_eq!(
        text(&systemd.stdout),
        "Environment=LD_PRELOAD=/usr/local/lib/libsocktune.so\nEnvironment=\"SOCKTUNE_PORTS=80, 443\"\n"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A program's own preload stays, after the library; a copy of the library from elsewhere goes,
/// since two copies would interpose every call twice. `env` for sh yields the same value.
#[test]
fn run_and_env_keep_the_programs_own_preload_after_the_library() {
    let dir = scratch("launcher-preload");
    let own = dir.join("libown.so");
    std::fs::write(dir.join("own.c"), "int socktune_test_own_preload;\n").unwrap();
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&own)
        .arg(dir.join("own.c"))
        .status()
        .unwrap();
    assert!(cc.success(), "cc failed");
    let stale = dir.join("old/libsocktune.so");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::copy(lib(), &stale).unwrap();
    let lib = lib().canonicalize().unwrap();
    let existing = format!("{} {}", own.display(), stale.display());
    let want = format!("{}:{}", lib.display(), own.display());

    let mut run = socktune();
    run.env("LD_PRELOAD", &existing)
        .args(["run", "--lib", lib.to_str().unwrap(), "--", "sh", "-c"])
        .arg(r#"echo "$LD_PRELOAD"; cat "/proc/$$/maps""#);
    let out = run_bounded(&mut run, LIMIT);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let (preload, maps) = stdout.split_once('\n').unwrap();
    assert_eq!(preload, want);
    for loaded in [&lib, &own] {
        assert!(
            maps.contains(loaded.to_str().unwrap()),
            "{} not mapped",
            loaded.display()
        );
    }
    assert!(
        !maps.contains(stale.to_str().unwrap()),
        "the stale copy was loaded"
    );

    let mut sh = clean("sh");
    sh.env("LD_PRELOAD", &existing)
        .args(["-c", r#"eval "$("$0" env --lib "$1")"; echo "$LD_PRELOAD""#])
        .arg(launcher())
        .arg(&lib);
    let out = run_bounded(&mut sh, LIMIT);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(text(&out.stdout), format!("{want}\n"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `socktune doctor ARGS` run in a private network namespace whose tcp_fastopen is `tfo`.
fn doctor(tfo: u32, args: &[&str]) -> (Option<i32>, String) {
    lib();
    let set_tfo = "echo $1 > /proc/sys/net/ipv4/tcp_fastopen && shift && exec \"$@\"";
    let mut unshare = clean("unshare");
    unshare
        .args(["-n", "sh", "-c", set_tfo, "sh"])
        .arg(tfo.to_string())
        .arg(launcher())
        .arg("doctor")
        .args(args);
    let out = run_bounded(&mut unshare, LIMIT);
    let report = describe(&out);
    assert!(
        !text(&out.stderr).contains("unshare:"),
        "doctor runs in a private network namespace (needs root):\n{report}"
    );
    eprintln!("{report}");
    (out.status.code(), text(&out.stdout))
}

#[test]
fn doctor_reports_the_library_the_kernel_and_the_sysctls() {
    needs_root!("runs socktune doctor in a private network namespace, to set tcp_fastopen there");
    let (code, out) = doctor(3, &[]);
    assert_eq!(code, Some(0), "{out}");
    let found = lib().canonicalize().unwrap();
    assert!(
        out.contains(&format!("ok    library: {} loads", found.display())),
        "{out}"
    );
    assert!(
        out.contains("ok    kernel: accepts TCP_DEFER_ACCEPT, TCP_CORK, TCP_QUICKACK, TCP_FASTOPEN, TCP_FASTOPEN_CONNECT, TCP_NODELAY"),
        "{out}"
    );
    assert!(
        out.contains("ok    net.ipv4.tcp_fastopen = 3: client Fast Open on, server Fast Open on"),
        "{out}"
    );
    assert!(out.contains("net.core.somaxconn = "), "{out}");
    assert!(out.contains("verdict: nothing blocks socktune"), "{out}");
    assert!(
        out.contains("note  children: one the program execs with an environment of its own"),
        "doctor says which inheritance mode is on:\n{out}"
    );

    // With the sysctl at 0 the kernel itself refuses client Fast Open: a warning, not a block.
    let (code, out) = doctor(0, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warn  net.ipv4.tcp_fastopen = 0: client Fast Open off, server Fast Open off"),
        "{out}"
    );
    assert!(
        out.contains(
            "TCP_FASTOPEN_CONNECT refused because net.ipv4.tcp_fastopen lacks the client bit"
        ),
        "{out}"
    );
}

/// With Fast Open set and an unsteered lo, doctor says how to keep loopback connections in
/// order; once lo has RPS on every CPU, or with no Fast Open set, it says nothing of it.
#[test]
fn doctor_notes_an_unsteered_loopback_under_fast_open() {
    needs_root!(
        "runs socktune doctor in private network and mount namespaces, to set lo's RPS there"
    );
    lib();
    let doctor_with = |rps_cpus: &str, env: &[&str]| {
        let steer =
            "mount -t sysfs sysfs /sys && echo $1 > /sys/class/net/lo/queues/rx-0/rps_cpus \
                     && shift && exec \"$@\"";
        let mut unshare = clean("unshare");
        unshare
            .args(["-n", "-m", "sh", "-c", steer, "sh", rps_cpus, "env"])
            .args(env)
            .arg(launcher())
            .arg("doctor");
        let out = run_bounded(&mut unshare, LIMIT);
        assert!(out.status.success(), "{}", describe(&out));
        text(&out.stdout)
    };
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(32);
    let every_cpu = format!("{:x}", (1u64 << cpus) - 1);
    let note = "note  loopback: /sys/class/net/lo/queues/rx-0/rps_cpus is 0";
    let out = doctor_with("0", &["SOCKTUNE_FASTOPEN=256"]);
    assert_eq!(out.contains(note), cpus > 1, "{out}");
    if cpus > 1 {
        assert!(
            out.contains(&format!(
                "writing {every_cpu} there keeps each connection in order"
            )),
            "{out}"
        );
    }
    let out = doctor_with("0", &["SOCKTUNE_FASTOPEN_CONNECT=1"]);
    assert_eq!(out.contains(note), cpus > 1, "{out}");
    let out = doctor_with(&every_cpu, &["SOCKTUNE_FASTOPEN=256"]);
    assert!(!out.contains("note  loopback:"), "{out}");
    let out = doctor_with("0", &["SOCKTUNE_CORK=1"]);
    assert!(!out.contains("note  loopback:"), "{out}");
}

#[test]
fn doctor_sees_what_blocks_a_command() {
    needs_root!("runs socktune doctor in a private network namespace, on a setuid file");
    let dir = scratch("launcher-doctor");
    // A static binary: no program interpreter, so the loader never runs.
    let static_bin = static_program(&dir, "hello", "int main(void) { return 0; }\n");
    // Runs doctor on `program`: the exit status and the lines its output must hold.
    let expect = |program: &str, status: i32, lines: &[&str]| {
        let (code, out) = doctor(3, &[program]);
        assert_eq!(code, Some(status), "{out}");
        for line in lines {
            assert!(out.contains(line), "want {line:?} in:\n{out}");
        }
    };
    let static_bin = static_bin.display().to_string();
    expect(
        &static_bin,
        1,
        &[
            &format!("FAIL  {static_bin}: statically linked"),
            "note  instead: for its listeners, systemd socket activation",
        ],
    );

    // A setuid copy of a dynamic program, owned by nobody: secure-execution mode for root.
    let suid = dir.join("true-setuid");
    std::fs::copy("/bin/true", &suid).unwrap();
    std::os::unix::fs::chown(&suid, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let suid = suid.display().to_string();
    let setuid_line = format!("FAIL  {suid}: setuid (owner 65534");
    expect(&suid, 1, &[&setuid_line, "secure-execution mode"]);

    // A shell script that is no shim is followed to the ELF that runs it, with the caveat that
    // it may exec a program doctor cannot see.
    let script = dir.join("tool");
    std::fs::write(&script, "#!/usr/bin/env sh\nexec true\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = script.display().to_string();
    let script_line = format!("note  {script}: a shell script run by ");
    expect(
        &script,
        0,
        &[
            &script_line,
            "which doctor cannot see",
            "dynamically linked (loader ",
            ": LD_PRELOAD applies",
        ],
    );

    let missing = "socktune-no-such-command";
    expect(
        missing,
        1,
        &["FAIL  socktune-no-such-command: command not found"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A version manager's shim, made here in the shape pyenv and rbenv write: doctor asks its tool
/// `which` program it runs and checks that program, ending with that program's verdict.
#[test]
fn doctor_follows_a_version_manager_shim() {
    needs_root!("runs socktune doctor in a private network namespace");
    let dir = scratch("launcher-shim");
    let tool = dir.join("libexec/fakeenv");
    let shim = dir.join("shims/tool");
    for dir in [tool.parent().unwrap(), shim.parent().unwrap()] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let answer = "#!/bin/sh\n[ \"$1 $2\" = \"which tool\" ] && exec echo /bin/true\nexit 1\n";
    std::fs::write(&tool, answer).unwrap();
    let exec_line = format!("exec \"{}\" exec \"$program\" \"$@\"", tool.display());
    let shim_text = format!("#!/usr/bin/env bash\nset -e\nprogram=\"${{0##*/}}\"\n{exec_line}\n");
    std::fs::write(&shim, shim_text).unwrap();
    for script in [&tool, &shim] {
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (code, out) = doctor(3, &[shim.to_str().unwrap()]);
    let (true_code, true_out) = doctor(3, &["/bin/true"]);
    std::fs::remove_dir_all(&dir).ok();
    let resolved = format!(
        "note  {}: a fakeenv shim; the program it runs is /bin/true (fakeenv which tool)",
        shim.display()
    );
    assert!(out.contains(&resolved), "want {resolved:?} in:\n{out}");
    assert!(out.contains("ok    /bin/true: dynamically linked"), "{out}");
    assert!(!out.contains("which doctor cannot see"), "{out}");
    assert_eq!(
        (code, out.lines().last()),
        (true_code, true_out.lines().last())
    );

    if Path::new("/root/.pyenv").exists() {
        let (_, out) = doctor(3, &["python3"]);
        eprintln!("socktune doctor python3 (pyenv here):\n{out}");
    }
}

fn fixture(name: &str) -> String {
    repo()
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn report_tells_the_arms_apart_in_a_fixture() {
    let dir = scratch("launcher-report");
    let svg = dir.join("chart.svg");
    let out = launch(&[
        "report",
        &fixture("stats-ab.jsonl"),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{}", describe(&out));
    // 6 connections per arm of 20 responses: A 5.14 packets per response, 2 data segments per
    // response; B 2.18 and 1 (worked out by hand from the fixture).
    assert_eq!(
        fields(&stdout, "server A")[2..6],
        ["6", "102.83", "5.14", "2.00"],
        "{stdout}"
    );
    assert_eq!(
        fields(&stdout, "server B")[2..6],
        ["6", "43.67", "2.18", "1.00"],
        "{stdout}"
    );
    assert!(
        stdout.contains("server: B - A = -2.96 packets per response"),
        "{stdout}"
    );
    assert!(stdout.contains("significant"), "{stdout}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"),
        "{chart}"
    );
    assert!(
        chart.contains(">server A<") && chart.contains(">server B<"),
        "{chart}"
    );

    // Without an A/B split there is one group and nothing to compare.
    let plain = dir.join("plain.jsonl");
    let lines: String = std::fs::read_to_string(fixture("stats-ab.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"arm\":\"B\""))
        .map(|l| l.replace("\"arm\":\"B\"", "\"arm\":null") + "\n")
        .collect();
    std::fs::write(&plain, lines + "{\"type\":\"conn\",\"role\":\"ser\n").unwrap();
    let out = launch(&["report", plain.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fields(&stdout, "server -")[4], "2.18", "{stdout}");
    assert!(!stdout.contains("B - A"), "{stdout}");
    assert!(
        stdout.contains("note: 1 lines were not valid records"),
        "{stdout}"
    );

    let out = launch(&["report", dir.join("missing.jsonl").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(launch(&["report"]).status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// The cells of the report row that starts with `label` ("server A"), label words included.
fn fields(report: &str, label: &str) -> Vec<String> {
    let row = report
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_default();
    row.split_whitespace().map(str::to_string).collect()
}

#[test]
fn help_and_man_page_cover_every_flag() {
    let help = |args: &[&str]| {
        let out = launch(args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        text(&out.stdout)
    };
    let man = std::fs::read_to_string(repo().join("docs/socktune.1"))
        .unwrap()
        .replace("\\-", "-");
    let main_help = help(&["--help"]);
    for cmd in ["run", "env", "doctor", "report"] {
        assert!(
            main_help.contains(&format!("socktune {cmd}")),
            "{main_help}"
        );
        assert_eq!(help(&[cmd, "--help"]), help(&["help", cmd]));
    }
    // One per SOCKTUNE_* variable (the launcher makes its flags from the library's settings
    // table), each on a line of its own: "  --cork[=BOOL]   sets SOCKTUNE_CORK".
    let run_help = help(&["run", "--help"]);
    let flags: Vec<&str> = run_help
        .lines()
        .filter_map(|l| l.strip_prefix("  --"))
        .map(|l| &l[..l.find(['[', ' ']).unwrap_or(l.len())])
        .collect();
    assert!(flags.len() >= 19 && flags.contains(&"lib"), "{run_help}");
    for line in run_help
        .lines()
        .filter(|l| l.starts_with("  --") && !l.contains("--lib"))
    {
        let flag = line.split(['[', ' ']).find(|w| !w.is_empty()).unwrap();
        let var = format!(
            "sets SOCKTUNE_{}",
            flag[2..].to_uppercase().replace('-', "_")
        );
        assert!(line.ends_with(&var), "{line:?} should end with {var:?}");
    }
    let flags: Vec<String> = flags.iter().map(|f| format!("--{f}")).collect();
    let docs = [
        ("env --help", help(&["env", "--help"])),
        ("docs/socktune.1", man.clone()),
    ];
    for (doc, text) in &docs {
        for flag in &flags {
            assert!(mentions(text, flag), "{doc} lacks {flag}");
        }
    }
    for (cmd, flag) in [
        ("env", "--format"),
        ("doctor", "--lib"),
        ("doctor", "--pid"),
        ("report", "--svg"),
    ] {
        assert!(
            mentions(&help(&[cmd, "--help"]), flag),
            "{cmd} --help lacks {flag}"
        );
        assert!(mentions(&man, flag), "the man page lacks {flag}");
    }
}

#[test]
fn version_and_unknown_commands() {
    let want = format!("socktune {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = launch(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", describe(&out));
        assert_eq!(text(&out.stdout), want, "{flag}");
    }
    let out = launch(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("commands: run, env, doctor, report, ctl, help, --version"),
        "{}",
        describe(&out)
    );
}

#[test]
fn report_names_a_file_without_records() {
    let dir = scratch("launcher-report-empty");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let says = format!("{empty} holds no connection records");

    let out = launch(&["report", empty]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains(&says), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "no report: {}", describe(&out));

    let out = launch(&["report", &fixture("stats-ab.jsonl"), empty]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains(&format!("note: {says}")),
        "{}",
        describe(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `text` names `flag` itself, not just a longer flag it begins (--cork in --cork-role).
fn mentions(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        !text[i + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// http.server under the launcher in the namespace harness, which loads no shim itself (no
/// --srv-shim): only `socktune run` can make the responses leave as one segment each. Two runs
/// at once: `--cork`, counted by the kernel; and `--cork --ab 50 --stats`, whose records
/// `socktune report` must split into an untuned arm A and a corked arm B.
#[test]
fn run_tunes_a_real_server_and_report_tells_the_arms_apart() {
    needs_root!(NETNS);
    lib();
    let bin = launcher().display().to_string();
    let dir = scratch("launcher-ab");
    let stats = dir.join("ab.jsonl");
    // Arm A stalls 44 ms per request: 20 connections of 15 keep about 6 s of them.
    let (requests, conns) = (15, 20);
    let ab_client =
        format!("python3 {{progs}}/ka_client.py 127.0.0.1 {{port}} {requests} /f100 {conns}");
    let ab_server = format!(
        "{bin} run --cork --ab 50 --stats {} -- {HTTP11_SERVER_V4}",
        stats.display()
    );
    let runs = run_all(&[
        keepalive(
            "run --cork",
            &format!("{bin} run --cork -- {HTTP11_SERVER_V4}"),
            "127.0.0.1",
            100,
        ),
        Scenario::new("run --cork --ab 50 --stats", &ab_client).server(&ab_server),
    ]);
    let cork = &runs[0];
    eprintln!(
        "socktune run --cork: {} packets/request",
        cork.get("packets_per_request")
    );
    check_corked(cork, "socktune run --cork -- python3 -m http.server");
    check_quiet(cork);

    let out = launch(&["report", stats.to_str().unwrap()]);
    let report = text(&out.stdout);
    eprintln!("{report}");
    check(out.status.success(), &runs[1], &describe(&out));
    let (a, b) = (fields(&report, "server A"), fields(&report, "server B"));
    let num = |row: &[String], i: usize| row.get(i).and_then(|v| v.parse::<f64>().ok());
    let total = num(&a, 2).unwrap_or(0.0) + num(&b, 2).unwrap_or(0.0);
    check(
        total == f64::from(conns),
        &runs[1],
        &format!("{conns} connections in the arms:\n{report}"),
    );
    check(
        num(&a, 4).is_some_and(|p| p >= 4.0),
        &runs[1],
        &format!("arm A: >= 4 packets per response\n{report}"),
    );
    check(
        num(&b, 4).is_some_and(|p| p <= 2.6),
        &runs[1],
        &format!("arm B: <= 2.6 packets per response\n{report}"),
    );
    check(
        num(&b, 5) == Some(1.0),
        &runs[1],
        &format!("arm B: one data segment per response\n{report}"),
    );
    check(
        report.contains("server: B - A = ") && report.contains("): significant"),
        &runs[1],
        &format!("the difference must be significant\n{report}"),
    );
    std::fs::remove_dir_all(&dir).ok();
}
