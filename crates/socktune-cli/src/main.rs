//! `socktune`: the launcher. `run` preloads libsocktune.so into a command and becomes it;
//! `env` prints the same settings; `doctor` says what would stop them working; `report` reads
//! the per-connection stats the library records.
//!
//! No Rust runtime start-up (`no_main`): it would set SIGPIPE to ignored before `main`, and the
//! command `run` execs must inherit the signal dispositions socktune itself was started with.
#![cfg_attr(not(test), no_main)]
// Unit-test builds have the harness's main instead, so the dispatch code goes unused there.
#![cfg_attr(test, allow(dead_code))]

// The library's own parser, so a bad flag value gets exactly the library's message.
use socktune_core::{config, rules};

// The files made from the settings table, checked (or rewritten) by their tests.
#[cfg(test)]
mod completions;
mod ctl;
mod doctor;
mod elf;
mod flags;
#[cfg(test)]
mod generated;
mod help;
mod launch;
#[cfg(test)]
mod man;
mod report;
mod stats;
mod svg;

use std::ffi::OsString;

/// Why a subcommand stopped instead of finishing.
#[derive(Debug)]
pub enum Fail {
    /// `-h`/`--help`: print the subcommand's help on stdout, exit 0.
    Help,
    /// A usage error or a bad value (exit 2).
    Usage(String),
    /// Any other failure, with its exit status and message.
    Exit(i32, String),
}

const USAGE_STATUS: i32 = 2;

/// Every first argument the launcher takes, as its error messages list them.
const COMMANDS: &str = "run, env, doctor, report, ctl, help, --version";

/// `socktune 0.1.0`, what `--version` prints.
fn version() -> String {
    format!("socktune {}", env!("CARGO_PKG_VERSION"))
}

fn subcommand_help(name: &str) -> Option<String> {
    Some(match name {
        "run" => launch::run_help(),
        "env" => launch::env_help(),
        "doctor" => doctor::HELP.to_string(),
        "report" => report::HELP.to_string(),
        "ctl" => ctl::HELP.to_string(),
        _ => return None,
    })
}

fn dispatch(name: &str, args: Vec<OsString>) -> Result<i32, Fail> {
    if name == "run" {
        return launch::run(args).map(|()| 0);
    }
    // Only run passes arguments on (a command's may be any bytes); the others read text.
    let args = utf8(args)?;
    match name {
        "env" => launch::env(args).map(|()| 0),
        "doctor" => doctor::doctor(args),
        "ctl" => ctl::ctl(args),
        _ => report::report(args).map(|()| 0),
    }
}

pub fn utf8(args: Vec<OsString>) -> Result<Vec<String>, Fail> {
    args.into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Fail::Usage(format!("{:?} is not UTF-8 text", a)))
        })
        .collect()
}

/// An error's text without Rust's " (os error N)" suffix, as C tools print it.
pub fn describe(err: &std::io::Error) -> String {
    let text = err.to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

fn real_main() -> i32 {
    // args_os: std::env::args() would panic on a command argument that is not UTF-8.
    let mut args = std::env::args_os().skip(1);
    let Some(name) = args.next() else {
        eprint!("{}", help::MAIN);
        return USAGE_STATUS;
    };
    let name = name.to_string_lossy().into_owned();
    let rest: Vec<OsString> = args.collect();
    if matches!(name.as_str(), "-V" | "--version") {
        println!("{}", version());
        return 0;
    }
    if !matches!(name.as_str(), "-h" | "--help" | "help") && subcommand_help(&name).is_none() {
        eprintln!("socktune: unknown command {name:?}; commands: {COMMANDS} (see socktune --help)");
        return USAGE_STATUS;
    }
    if matches!(name.as_str(), "-h" | "--help" | "help") {
        match rest.first().map(|c| subcommand_help(&c.to_string_lossy())) {
            Some(Some(text)) => print!("{text}"),
            Some(None) => {
                eprintln!(
                    "socktune: no help for {:?}; commands: {COMMANDS}",
                    rest[0].to_string_lossy()
                );
                return USAGE_STATUS;
            }
            None => print!("{}", help::MAIN),
        }
        return 0;
    }
    match dispatch(&name, rest) {
        Ok(status) => status,
        Err(Fail::Help) => {
            print!("{}", subcommand_help(&name).unwrap_or_default());
            0
        }
        Err(Fail::Usage(msg)) => {
            for line in msg.lines() {
                if line.starts_with("socktune") {
                    eprintln!("{line}");
                } else {
                    eprintln!("socktune {name}: {line}");
                }
            }
            // The library's message ends with what it would do; the launcher does nothing.
            let stopped = if name == "run" {
                "the command was not started; "
            } else {
                ""
            };
            eprintln!("socktune {name}: {stopped}see `socktune {name} --help`");
            USAGE_STATUS
        }
        Err(Fail::Exit(status, msg)) => {
            eprintln!("{msg}");
            status
        }
    }
}

/// The C entry point (see the module note on `no_main`). std still finds the arguments itself.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // A panic must not unwind out of an extern "C" function (that aborts); exit 101 as a Rust
    // main would, its message already printed by the panic hook.
    let status = std::panic::catch_unwind(real_main).unwrap_or(101);
    // Flush stdout before exit(3) skips Rust's own flush at the end of a `main` it did not run.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_list_names_every_command_of_the_help() {
        let usage = help::MAIN
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("socktune "));
        let named: Vec<&str> = usage
            .map(|l| l.split_whitespace().next().unwrap_or_default())
            .collect();
        assert!(named.len() >= 6, "{named:?}");
        for command in named {
            let listed = COMMANDS
                .split(", ")
                .any(|c| command.split('|').any(|f| f == c));
            assert!(listed, "{command} is missing from {COMMANDS:?}");
        }
    }
}
