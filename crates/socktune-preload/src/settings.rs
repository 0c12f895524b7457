//! The settings, parsed once at load (see `lifecycle`), so later changes to the environment do
//! not matter: nginx, for one, clears it before forking its workers. A live change (`live`)
//! replaces them for what comes after it.

use crate::errno::KeepErrno;
use crate::{guard, log, sys};
use once_cell::sync::OnceCell;
use socktune_core::config::{self, Config, Level};
use std::sync::atomic::{AtomicPtr, Ordering::Acquire, Ordering::Release};

static CONFIG: OnceCell<Config> = OnceCell::new();
/// The settings of the latest live change, if any (leaked: changes are rare).
static LIVE: AtomicPtr<Config> = AtomicPtr::new(std::ptr::null_mut());

/// The settings in force; a hook that runs before our constructor parses them inside the
/// program's call.
#[inline]
pub fn config() -> &'static Config {
    let live = LIVE.load(Acquire);
    if live.is_null() {
        start_up()
    } else {
        // SAFETY: a non-null pointer is a leaked, never freed Config (see `replace`).
        unsafe { &*live }
    }
}

/// The settings the process started with.
pub fn start_up() -> &'static Config {
    CONFIG.get_or_init(load)
}

/// Puts `cfg` in force, for the sockets that start after this.
pub fn replace(cfg: &'static Config) {
    LIVE.store((cfg as *const Config).cast_mut(), Release);
}

fn load() -> Config {
    let _busy = guard::enter();
    let _keep = KeepErrno::now();
    // SAFETY: getauxval is always safe to call.
    if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
        return Config::default(); // setuid/setgid: a preload library must not act
    }
    // Most processes under a preload have nothing set for it: a raw scan of environ finds that
    // out without copying or allocating anything.
    // SAFETY: environ is glibc's NULL-terminated array of NUL-terminated strings; at load no
    // other thread of the program can be changing it.
    let ours = unsafe { sys::environ_entries(config::PREFIX.as_bytes()) };
    if ours.clone().next().is_none() {
        return Config::default();
    }
    let parsed = config::parse(ours.map(pair));
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
        }
        // Children with the same settings need not say the same again. A process that said
        // nothing leaves its environment alone. Runs from the library's constructor (or a hook
        // called before it), before main() can have started threads that read the environment.
        if says_settings || !parsed.problems.is_empty() {
            std::env::set_var(config::REPORTED_VAR, &parsed.fingerprint);
        }
    }
    cfg
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
    let _ = CONFIG.set(cfg);
}
