//! The settings, parsed once at load (see `lifecycle`), so later changes to the environment do
//! not matter: nginx, for one, clears it before forking its workers.
//!
//! They are the top level (the variables over the rules file's top level) and the rules of
//! `SOCKTUNE_CONFIG` that apply to this program; a socket follows one of them, by its rule
//! number in its state (see [`for_socket`]).

use crate::errno::KeepErrno;
use crate::{guard, log, sys};
use once_cell::sync::OnceCell;
use socktune_core::config::{self, Config, Level};
use socktune_core::rules::{self, Rules};
use std::net::IpAddr;

struct Settings {
    top: Config,
    rules: Rules,
}

static SETTINGS: OnceCell<Settings> = OnceCell::new();

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(load)
}

/// The top-level settings; a hook that runs before our constructor parses them inside the
/// program's call.
#[inline]
pub fn config() -> &'static Config {
    &settings().top
}

/// The settings a socket follows, by its rule number (`FdState::rule`): 0 for the top level.
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
    // Lossy, so that a value that is not UTF-8 is reported as invalid rather than ignored.
    let vars: Vec<(String, String)> = ours
        .map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (k, v) = text.split_once('=').unwrap_or((&text, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut parsed = config::parse(vars.iter().cloned());
    let mut rules = Rules::default();
    // Only a process given a rules file pays for reading one.
    if let Some(path) = parsed.config.rules_file.clone() {
        let loaded = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let names = program_names();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                rules::load(&path, &text, &vars, Some(&names))
            }
            Err(e) => rules::Loaded {
                top: parsed.config.clone(),
                rules: Rules::default(),
                problems: vec![rules::unreadable(&path, &e.to_string())],
            },
        };
        parsed.config = loaded.top;
        parsed.problems.extend(loaded.problems);
        rules = loaded.rules;
    }
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
        // nothing leaves its environment alone. Runs from the library's constructor (or a hook
        // called before it), before main() can have started threads that read the environment.
        if says_settings || !parsed.problems.is_empty() {
            std::env::set_var(config::REPORTED_VAR, &parsed.fingerprint);
        }
    }
    Settings { top: cfg, rules }
}

/// The names a rule's `program` glob is matched against: the basenames of /proc/self/exe
/// (`python3.11`) and of argv[0] (`python3`).
fn program_names() -> Vec<String> {
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let exe = exe.as_deref().and_then(|p| p.file_name());
    let mut names: Vec<String> = exe
        .map(|n| n.to_string_lossy().into_owned())
        .into_iter()
        .collect();
    names.extend(sys::argv0_basename());
    names
}

/// Unit tests choose the settings instead of reading the environment.
#[cfg(test)]
pub fn use_for_tests(cfg: Config) {
    let _ = SETTINGS.set(Settings {
        top: cfg,
        rules: Rules::default(),
    });
}
