//! F4: a bad or unknown setting prints exactly one `socktune:` line on stderr naming the
//! variable (in a program that makes a socket call, where the settings are read), turns that
//! behaviour off, and changes nothing else: stdout and exit code stay as without the shim. The
//! shim never writes to stdout, even when logging at debug.
mod common;
use common::*;
use std::process::{Command, Output};
use std::time::Duration;

const BAD: [&str; 4] = [
    "SOCKTUNE_CORK=maybe",
    "SOCKTUNE_DEFER_ACCEPT=-3",
    "SOCKTUNE_PORTS=80-abc",
    "SOCKTUNE_CORKK=1",
];

/// A program that prints one line and exits 0, and one doing a loopback TCP exchange, exit 3.
fn programs() -> [(Vec<String>, i32); 2] {
    let exit3 = repo()
        .join("tests/progs/tcp_exit3.py")
        .display()
        .to_string();
    [
        (
            vec![python().into(), "-c".into(), "print('hello')".into()],
            0,
        ),
        (vec![python().into(), exit3], 3),
    ]
}

/// Runs `argv` with a clean environment, under the shim with `env` if given.
fn run(argv: &[String], env: Option<&[&str]>) -> Output {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_remove("LD_PRELOAD")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SOCKTUNE_")) {
        cmd.env_remove(k);
    }
    if let Some(env) = env {
        cmd.env("LD_PRELOAD", lib());
        cmd.envs(env.iter().map(|kv| kv.split_once('=').unwrap()));
    }
    run_bounded(&mut cmd, Duration::from_secs(60))
}

/// The variable a shim line is about: the first SOCKTUNE_* name in it (the line may go on to
/// suggest another, as in "unknown variable SOCKTUNE_CORKK (did you mean SOCKTUNE_CORK?)").
fn subject(line: &str) -> &str {
    let Some(start) = line.find("SOCKTUNE_") else {
        return "(none)";
    };
    let rest = &line[start..];
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    &rest[..end.unwrap_or(rest.len())]
}

/// Asserts `out` matches `plain` in stdout, exit code and stderr other than the shim's own lines
/// (`socktune: ...`, or `socktune[pid]: ...` when logging); returns the shim's lines.
fn same_but_stderr(argv: &[String], env: &[&str], plain: &Output, out: &Output) -> Vec<String> {
    let ctx = format!(
        "{argv:?} with {env:?}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&plain.stdout),
        "stdout changed: {ctx}"
    );
    assert_eq!(
        out.status.code(),
        plain.status.code(),
        "exit code changed: {ctx}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (ours, other): (Vec<&str>, Vec<&str>) =
        stderr.lines().partition(|l| l.starts_with("socktune"));
    let plain_err = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(
        other,
        plain_err.lines().collect::<Vec<_>>(),
        "other stderr changed: {ctx}"
    );
    ours.into_iter().map(String::from).collect()
}

#[test]
fn f4_bad_values_warn_once_and_change_nothing() {
    for (argv, code) in programs() {
        let makes_sockets = code == 3;
        let plain = run(&argv, None);
        assert_eq!(
            plain.status.code(),
            Some(code),
            "{argv:?} without the shim: {plain:?}"
        );
        // Each bad variable alone, then all of them together.
        let sets: Vec<Vec<&str>> = BAD.iter().map(|b| vec![*b]).chain([BAD.to_vec()]).collect();
        for env in sets {
            let ours = same_but_stderr(&argv, &env, &plain, &run(&argv, Some(&env)));
            eprintln!("{env:?}: {ours:?}");
            // The settings are read where socktune first acts, at a socket call: a program
            // that makes none hears nothing.
            let mut want: Vec<&str> = env
                .iter()
                .filter(|_| makes_sockets)
                .map(|kv| kv.split('=').next().unwrap())
                .collect();
            let mut got: Vec<&str> = ours.iter().map(|l| subject(l)).collect();
            want.sort();
            got.sort();
            assert!(
                got == want && ours.iter().all(|l| l.starts_with("socktune:")),
                "{argv:?} with {env:?}: want exactly one `socktune:` line per variable, naming it; got {ours:?}"
            );
        }
    }
}

#[test]
fn debug_logging_never_touches_stdout() {
    let env: Vec<&str> = ALL_BEHAVIOURS
        .iter()
        .copied()
        .chain(["SOCKTUNE_LOG=debug"])
        .collect();
    for (argv, _) in programs() {
        let plain = run(&argv, None);
        same_but_stderr(&argv, &env, &plain, &run(&argv, Some(&env)));
    }
}

/// The bad value must turn its behaviour off (checked where it would show), and say so once.
#[test]
fn bad_values_leave_behaviour_off() {
    needs_root!(NETNS);
    let runs = run_all(&[
        keepalive("cork=maybe", HTTP11_SERVER_V4, "127.0.0.1", 50)
            .server_env(&["SOCKTUNE_CORK=maybe"]),
        defer_probe("defer=-3").server_env(&["SOCKTUNE_DEFER_ACCEPT=-3"]),
    ]);
    let (cork, defer) = (&runs[0], &runs[1]);
    check_uncorked(cork, "SOCKTUNE_CORK=maybe must not cork");
    check(
        defer.num("srv_defer_readback") == 0.0,
        defer,
        "SOCKTUNE_DEFER_ACCEPT=-3 must not set TCP_DEFER_ACCEPT",
    );
    for r in &runs {
        check(
            r.num("srv_socktune_lines") == 1.0,
            r,
            "expected exactly one socktune: line from the server",
        );
    }
}

/// SOCKTUNE_LOG_FILE takes every log line: the program's stderr stays free of them, and the file
/// tells each response's hold and push.
#[test]
fn debug_log_file_takes_the_lines_off_stderr() {
    needs_root!(NETNS);
    let file = std::env::temp_dir().join(format!("socktune-log-{}.log", std::process::id()));
    let setting = format!("SOCKTUNE_LOG_FILE={}", file.display());
    let r = keepalive("log file", HTTP11_SERVER_V4, "127.0.0.1", 20)
        .server_env(&["SOCKTUNE_CORK=1", "SOCKTUNE_LOG=debug", &setting])
        .run();
    let log = std::fs::read_to_string(&file).unwrap_or_default();
    std::fs::remove_file(&file).ok();
    check_corked(&r, "SOCKTUNE_CORK=1 with a log file");
    check(
        !r.stderr.contains("socktune["),
        &r,
        "no log line may reach the program's stderr",
    );
    for line in [
        "effective settings",
        "a new response, held until its boundary",
        "the response is as long as its head said: it leaves now",
    ] {
        check(
            log.contains(line),
            &r,
            &format!("the log file lacks {line:?}:\n{log}"),
        );
    }
}

/// The environment a shimmed program sees: `SOCKTUNE__REPORTED` appears only where socktune said
/// something on stderr (so that its children need not say it again), never where it had nothing
/// to say. The settings are read at the first socket call, so the probe makes one, then asks a
/// child what it inherited.
#[test]
fn a_process_with_nothing_to_report_leaves_its_environment_alone() {
    let show_env = [
        python().to_string(),
        "-c".into(),
        "import socket, subprocess; socket.socket(); \
         subprocess.run(['/bin/sh', '-c', 'echo ${SOCKTUNE__REPORTED-absent}'])"
            .into(),
    ];
    let environment_seen = |env: &[&str]| {
        let out = run(&show_env, Some(env));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(environment_seen(&["SOCKTUNE_CORK=1"]), "absent");
    assert_eq!(environment_seen(&[]), "absent");
    assert_ne!(
        environment_seen(&["SOCKTUNE_CORKK=1"]),
        "absent",
        "a process that reported a problem marks its tree"
    );
}
