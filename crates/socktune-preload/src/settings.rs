//! The settings, parsed once at load (see `lifecycle`), so later changes to the environment do
//! not matter: nginx, for one, clears it before forking its workers.

use crate::errno::KeepErrno;
use crate::{guard, log};
use once_cell::sync::OnceCell;
use socktune_core::config::{self, Config};

static CONFIG: OnceCell<Config> = OnceCell::new();

/// The settings; a hook that runs before our constructor parses them inside the program's call.
#[inline]
pub fn config() -> &'static Config {
    CONFIG.get_or_init(load)
}

fn load() -> Config {
    let _busy = guard::enter();
    let _keep = KeepErrno::now();
    // SAFETY: getauxval is always safe to call.
    if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
        return Config::default(); // setuid/setgid: a preload library must not act
    }
    // Lossy, so that a value that is not UTF-8 is reported as invalid rather than ignored.
    let parsed = config::parse(std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            v.to_string_lossy().into_owned(),
        )
    }));
    let cfg = parsed.config;
    log::init(cfg.log, cfg.log_file.as_deref());
    if !parsed.reported {
        for problem in &parsed.problems {
            log::stderr(problem);
        }
        if !cfg.inert() {
            for line in cfg.to_string().lines() {
                log::info!("{line}");
            }
        }
        // Runs from the library's constructor (or a hook called before it), before main() can
        // have started threads that read the environment.
        std::env::set_var(config::REPORTED_VAR, &parsed.fingerprint);
    }
    cfg
}

/// Unit tests choose the settings instead of reading the environment.
#[cfg(test)]
pub fn use_for_tests(cfg: Config) {
    let _ = CONFIG.set(cfg);
}
