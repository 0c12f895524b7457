//! The settings, parsed once at load (see `lifecycle`), so later changes to the environment do
//! not matter: nginx, for one, clears it before forking its workers.
//!
//! They are the top level (the variables over the rules file's top level) and the rules of
//! `SOCKTUNE_CONFIG` that apply to this program; a socket follows one of them, by its rule
//! number (see [`for_socket`]). A live change (`live`) is laid over the variables, and the
//! settings it gives (the file read again) are in force for the sockets that start after it.

use crate::errno::KeepErrno;
use crate::{guard, log, sys};
use once_cell::sync::OnceCell;
use socktune_core::config::{self, Config, Level};
use socktune_core::rules::{self, Rules};
use std::net::IpAddr;
use std::sync::atomic::{AtomicPtr, Ordering::Acquire, Ordering::Release};

struct Settings {
    top: Config,
    rules: Rules,
}

/// The `SOCKTUNE_*` variables the process started with (its own report mark left out), which
/// a live change is laid over.
static START_VARS: OnceCell<Vec<(String, String)>> = OnceCell::new();

static SETTINGS: OnceCell<Settings> = OnceCell::new();
/// The settings of the latest live change, if any (leaked: changes are rare).
static LIVE: AtomicPtr<Settings> = AtomicPtr::new(std::ptr::null_mut());

fn start_up_settings() -> &'static Settings {
    SETTINGS.get_or_init(load)
}

/// The settings in force: a live change's, or else those the process started with; a hook that
/// runs before our constructor parses them inside the program's call.
#[inline]
fn settings() -> &'static Settings {
    let live = LIVE.load(Acquire);
    if live.is_null() {
        start_up_settings()
    } else {
        // SAFETY: a non-null pointer is a leaked, never freed Settings (see `replace`).
        unsafe { &*live }
    }
}

/// The top-level settings in force.
#[inline]
pub fn config() -> &'static Config {
    &settings().top
}

/// The top-level settings the process started with.
pub fn start_up() -> &'static Config {
    &start_up_settings().top
}

/// The `SOCKTUNE_*` variables at start-up, read once at load (nginx clears the environment
/// before forking its workers).
pub fn start_vars() -> &'static [(String, String)] {
    let _ = start_up_settings();
    START_VARS.get().map_or(&[][..], Vec::as_slice)
}

/// Puts in force what `vars` (the start-up variables with a live change laid over them) give,
/// the rules file included, for the sockets that start after this; `None` returns to the
/// start-up settings. Returns the new top level.
pub fn replace(vars: Option<&[(String, String)]>) -> &'static Config {
    let Some(vars) = vars else {
        LIVE.store(std::ptr::null_mut(), Release);
        return start_up();
    };
    let (parsed, rules) = build(vars);
    let live: &'static Settings = Box::leak(Box::new(Settings {
        top: parsed.config,
        rules,
    }));
    LIVE.store((live as *const Settings).cast_mut(), Release);
    &live.top
}

/// The settings a socket follows, by its rule number (`Slot::rule`): 0 for the top level.
#[inline]
pub fn for_socket(rule: u8) -> &'static Config {
    let s = settings();
    s.rules.config(rule).unwrap_or(&s.top)
}

/// The rule number for a socket of one side (server: listening or accepted) at `port` (local
/// for a server, remote for a client), and its peer where known.
pub fn rule_for(server: bool, port: u16, peer: Option<IpAddr>) -> u8 {
    settings().rules.pick(server, port, peer)
}

/// Some rule matches by peer, so an accepted socket needs its peer's address.
pub fn rules_by_peer() -> bool {
    settings().rules.by_peer()
}

fn load() -> Settings {
    let _busy = guard::enter();
    let _keep = KeepErrno::now();
    let inert = || Settings {
        top: Config::default(),
        rules: Rules::default(),
    };
    // SAFETY: getauxval is always safe to call.
    if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
        return inert(); // setuid/setgid: a preload library must not act
    }
    // Most processes under a preload have nothing set for it: a raw scan of environ finds that
    // out without copying or allocating anything.
    // SAFETY: environ is glibc's NULL-terminated array of NUL-terminated strings; at load no
    // other thread of the program can be changing it.
    let ours = unsafe { sys::environ_entries(config::PREFIX.as_bytes()) };
    if ours.clone().next().is_none() {
        return inert();
    }
    let mut vars: Vec<(String, String)> = ours.map(pair).collect();
    let (parsed, rules) = build(&vars);
    let cfg = parsed.config;
    log::init(cfg.log, cfg.log_file.as_deref());
    if !parsed.reported {
        for problem in &parsed.problems {
            log::stderr(problem);
        }
        let says_settings = !cfg.inert() && log::enabled(Level::Info);
        if says_settings {
            for line in cfg.to_string().lines() {
                log::info!("{line}");
            }
            for rule in &rules.0 {
                log::info!("  rule at {}", rule.describe());
            }
        }
        // Children with the same settings need not say the same again. A process that said
        // nothing leaves its environment alone. Preloaded on its own, the shim runs this from
        // its constructor (or a hook called before it), before main() can have started threads
        // that read the environment; loaded by the stub at a later call, only while the
        // process has one thread.
        let may_set_env = crate::stub::start().is_none() || sys::single_threaded();
        if (says_settings || !parsed.problems.is_empty()) && may_set_env {
            std::env::set_var(config::REPORTED_VAR, &parsed.fingerprint);
        }
    }
    vars.retain(|(k, _)| k != config::REPORTED_VAR);
    let _ = START_VARS.set(vars);
    Settings { top: cfg, rules }
}

/// The settings `vars` give: the variables over the rules file's top level, and its rules.
fn build(vars: &[(String, String)]) -> (config::Parsed, Rules) {
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| e.to_string());
    rules::with_file(vars, read, program_names)
}

/// The names a rule's `program` glob is matched against: the basenames of /proc/self/exe
/// (`python3.11`) and of argv\[0\] (`python3`). Taken once: a program may rewrite its argv later
/// (nginx names its processes `nginx: worker process`), and a live change must pick the rules
/// the process started with.
fn program_names() -> Vec<String> {
    static NAMES: OnceCell<Vec<String>> = OnceCell::new();
    NAMES
        .get_or_init(|| {
            let exe = std::fs::read_link("/proc/self/exe").ok();
            let exe = exe.as_deref().and_then(|p| p.file_name());
            let mut names: Vec<String> = exe
                .map(|n| n.to_string_lossy().into_owned())
                .into_iter()
                .collect();
            names.extend(sys::argv0_basename());
            names
        })
        .clone()
}

/// An environment entry as a (name, value) pair. Lossy, so that a value that is not UTF-8 is
/// reported as invalid rather than ignored.
pub fn pair(entry: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(entry);
    let (k, v) = text.split_once('=').unwrap_or((&text, ""));
    (k.to_owned(), v.to_owned())
}

/// Unit tests choose the settings instead of reading the environment.
#[cfg(test)]
pub fn use_for_tests(cfg: Config) {
    let _ = SETTINGS.set(Settings {
        top: cfg,
        rules: Rules::default(),
    });
}
