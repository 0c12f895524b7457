//! The environment an exec'd program gets. By default the one the program chose; under
//! `SOCKTUNE_INHERIT=always`, with our `LD_PRELOAD` and `SOCKTUNE_*` entries back if it lost
//! them (the plan is `socktune_core::inherit`'s), unless the process changed user or group
//! since it started: what socktune was told then is not for another user's programs.
//!
//! The patched environment is built in buffers on the hook's stack, without malloc, since execve
//! may run in a vfork child that shares the parent's heap.

use crate::sys;
use libc::c_char;
use once_cell::sync::OnceCell;
use socktune_core::config::PREFIX;
use socktune_core::inherit::{self, Preload, MAX_VARS};
use std::ffi::{CStr, CString};

/// What the process started with, captured at load.
struct Inherited {
    /// Our library's file name, e.g. `libsocktune.so`.
    lib_name: Vec<u8>,
    /// `LD_PRELOAD=<path of this library>`.
    preload: CString,
    /// Our library's path, to append to another LD_PRELOAD.
    lib_path: Vec<u8>,
    /// `SOCKTUNE_*=...` entries.
    vars: Vec<CString>,
    /// The real and effective user and group ids at load.
    credentials: [u32; 4],
}

/// The ids now, or, under the stub, those it read at load.
fn credentials_at_load() -> [u32; 4] {
    crate::stub::start().map_or_else(credentials, |s| s.credentials)
}

fn credentials() -> [u32; 4] {
    // SAFETY: these calls have no preconditions and cannot fail.
    unsafe {
        [
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        ]
    }
}

static INHERITED: OnceCell<Inherited> = OnceCell::new();

/// Records this library's path and the `SOCKTUNE_*` entries; called once at load under
/// `SOCKTUNE_INHERIT=always`, so that [`patch`] has something to put back only then.
pub fn capture() {
    let Some(path) = preloaded_path() else {
        return;
    };
    // SAFETY: a NUL-terminated path that lives as long as the library.
    let lib_path = unsafe { CStr::from_ptr(path) }.to_bytes().to_vec();
    // SAFETY: called from the constructor, before the program can change its environment.
    let vars = unsafe { sys::environ_entries(PREFIX.as_bytes()) }
        .filter_map(|entry| CString::new(entry).ok())
        .take(MAX_VARS)
        .collect();
    let Ok(preload) = CString::new([b"LD_PRELOAD=".as_slice(), &lib_path].concat()) else {
        return;
    };
    let _ = INHERITED.set(Inherited {
        lib_name: inherit::basename(&lib_path).to_vec(),
        preload,
        lib_path,
        vars,
        credentials: credentials_at_load(),
    });
}

/// The path of the library `LD_PRELOAD` names: the stub's, or ours where we were preloaded.
fn preloaded_path() -> Option<*const c_char> {
    if let Some(start) = crate::stub::start() {
        return (!start.lib_path.is_null()).then_some(start.lib_path);
    }
    // SAFETY: Dl_info is plain data; all zeroes is a valid value for dladdr to overwrite.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr on one of our own functions fills `info` with our library's path.
    let found = unsafe { libc::dladdr(capture as *const libc::c_void, &mut info) } != 0;
    (found && !info.dli_fname.is_null()).then_some(info.dli_fname)
}

const MAX_ENTRIES: usize = 2048;
const MAX_PRELOAD: usize = 4096;

/// Room for a patched environment, on the exec hook's stack.
pub struct EnvBuffers {
    entries: [*const c_char; MAX_ENTRIES],
    merged_preload: [u8; MAX_PRELOAD],
}

impl EnvBuffers {
    pub fn new() -> EnvBuffers {
        EnvBuffers {
            entries: [std::ptr::null(); MAX_ENTRIES],
            merged_preload: [0; MAX_PRELOAD],
        }
    }

    pub fn entries(&self) -> *const *const c_char {
        self.entries.as_ptr()
    }
}

/// Fills `out` with `envp` plus our missing entries; false if they are not to be put back,
/// `envp` needs nothing, or there is no room: then the exec gets `envp` as it is.
///
/// # Safety
/// `envp` is null or a NULL-terminated array of NUL-terminated strings, as exec takes.
pub unsafe fn patch(envp: *const *const c_char, out: &mut EnvBuffers) -> bool {
    let Some(inh) = INHERITED.get() else {
        return false;
    };
    if credentials() != inh.credentials {
        return false;
    }
    let mut count = 0;
    // SAFETY: the caller's envp is NULL-terminated.
    while !envp.is_null() && unsafe { !(*envp.add(count)).is_null() } {
        count += 1;
    }
    // SAFETY: entries below `count` are valid C strings.
    let entry = |i: usize| unsafe { CStr::from_ptr(*envp.add(i)) }.to_bytes();
    let ours: [&[u8]; MAX_VARS] =
        std::array::from_fn(|k| inh.vars.get(k).map_or(&[][..], |v| v.to_bytes()));
    let patch = inherit::plan(
        (0..count).map(entry),
        &inh.lib_name,
        &ours[..inh.vars.len()],
    );
    if patch.is_noop() || count + inh.vars.len() + 2 > MAX_ENTRIES {
        return false;
    }
    let mut n = 0;
    for i in 0..count {
        // SAFETY: as above.
        out.entries[n] = unsafe { *envp.add(i) };
        n += 1;
    }
    match patch.preload {
        Preload::Present => {}
        Preload::Missing => {
            out.entries[n] = inh.preload.as_ptr();
            n += 1;
        }
        Preload::Without(i) => {
            // "LD_PRELOAD=theirs" + ":" + our path + NUL
            let theirs = entry(i);
            let len = theirs.len() + 1 + inh.lib_path.len();
            if len < MAX_PRELOAD {
                let merged = &mut out.merged_preload;
                merged[..theirs.len()].copy_from_slice(theirs);
                merged[theirs.len()] = b':';
                merged[theirs.len() + 1..len].copy_from_slice(&inh.lib_path);
                merged[len] = 0;
                out.entries[i] = merged.as_ptr().cast();
            }
        }
    }
    for (k, var) in inh.vars.iter().enumerate() {
        if patch.missing & (1u64 << k) != 0 {
            out.entries[n] = var.as_ptr();
            n += 1;
        }
    }
    out.entries[n] = std::ptr::null();
    true
}
