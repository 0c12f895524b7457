//! Keeping the settings for the whole process tree: which entries an exec'd program's
//! environment lacks. A program may clear or rebuild its environment after start (nginx rebuilds
//! it; daemons call clearenv), and without `LD_PRELOAD` and the `SOCKTUNE_*` variables its
//! children would run untuned. Plain Rust over byte strings, no allocation, so the exec hooks can
//! use it even in a vfork child.

/// What the new environment's `LD_PRELOAD` needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Preload {
    /// It already loads us.
    Present,
    /// There is none: add ours.
    Missing,
    /// Entry `i` preloads other libraries only: append ours to it.
    Without(usize),
}

/// The most `SOCKTUNE_*` entries carried into a child: one bit each in [`Patch::missing`].
pub const MAX_VARS: usize = u64::BITS as usize;

#[derive(Debug, PartialEq, Eq)]
pub struct Patch {
    pub preload: Preload,
    /// Bit `k` set: our variable `k` is absent from the new environment.
    pub missing: u64,
}

impl Patch {
    pub fn is_noop(&self) -> bool {
        self.preload == Preload::Present && self.missing == 0
    }
}

fn name(entry: &[u8]) -> &[u8] {
    entry.split(|&b| b == b'=').next().unwrap_or(entry)
}

fn value(entry: &[u8]) -> &[u8] {
    entry
        .iter()
        .position(|&b| b == b'=')
        .map_or(&[], |i| &entry[i + 1..])
}

/// The file name of a path.
pub fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// Compares the environment `env` (entries `NAME=value`) with our library's file name `lib` and
/// our own entries `ours` (at most [`MAX_VARS`]). A variable the program set itself is left as it is.
pub fn plan<'a>(env: impl Iterator<Item = &'a [u8]>, lib: &[u8], ours: &[&[u8]]) -> Patch {
    let mut missing: u64 = if ours.len() >= MAX_VARS {
        u64::MAX
    } else {
        (1u64 << ours.len()) - 1
    };
    let mut preload = Preload::Missing;
    for (i, entry) in env.enumerate() {
        let n = name(entry);
        if n == b"LD_PRELOAD" {
            let loads_us = value(entry)
                .split(|&b| b == b':' || b == b' ')
                .any(|p| basename(p) == lib);
            preload = if loads_us {
                Preload::Present
            } else {
                Preload::Without(i)
            };
        }
        for (k, o) in ours.iter().enumerate().take(MAX_VARS) {
            if name(o) == n {
                missing &= !(1u64 << k);
            }
        }
    }
    Patch { preload, missing }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(env: &[&str]) -> Patch {
        let ours: [&[u8]; 2] = [b"SOCKTUNE_CORK=1", b"SOCKTUNE_PORTS=80"];
        plan(env.iter().map(|e| e.as_bytes()), b"libsocktune.so", &ours)
    }

    #[test]
    fn intact_environment_needs_nothing() {
        let p = run(&[
            "PATH=/bin",
            "LD_PRELOAD=/opt/x/libsocktune.so",
            "SOCKTUNE_CORK=1",
            "SOCKTUNE_PORTS=80",
        ]);
        assert!(p.is_noop());
    }

    #[test]
    fn cleared_environment_gets_everything_back() {
        let p = run(&[]);
        assert_eq!(
            p,
            Patch {
                preload: Preload::Missing,
                missing: 0b11
            }
        );
    }

    #[test]
    fn another_preload_is_kept_and_extended() {
        let p = run(&["LD_PRELOAD=/usr/lib/libjemalloc.so", "SOCKTUNE_CORK=1"]);
        assert_eq!(p.preload, Preload::Without(0));
        assert_eq!(p.missing, 0b10);
    }

    #[test]
    fn the_programs_own_value_wins() {
        let p = run(&["SOCKTUNE_CORK=0", "LD_PRELOAD=a.so:/x/libsocktune.so"]);
        assert_eq!(p.preload, Preload::Present);
        assert_eq!(p.missing, 0b10, "SOCKTUNE_CORK=0 stays");
    }

    #[test]
    fn similar_names_do_not_match() {
        let p = run(&["LD_PRELOAD=/x/libsocktune.so.bak", "SOCKTUNE_CORKK=1"]);
        assert_eq!(p.preload, Preload::Without(0));
        assert_eq!(p.missing, 0b11);
    }
}
