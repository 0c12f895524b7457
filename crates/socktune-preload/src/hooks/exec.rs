//! execve, execv, execvp, execvpe, posix_spawn and posix_spawnp: the new program gets our
//! `LD_PRELOAD` and `SOCKTUNE_*` entries back if the caller's environment lost them.
//!
//! The patched environment is built on the stack, without malloc, since execve may run in a
//! vfork child that shares the parent's heap.

use crate::inherit::{self, Preload};
use libc::{c_char, c_int, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t};
use once_cell::sync::OnceCell;
use redhook::{hook, real};
use std::ffi::{CStr, CString};

extern "C" {
    static environ: *const *const c_char;
}

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
}

static INHERITED: OnceCell<Inherited> = OnceCell::new();

/// Records this library's path and the `SOCKTUNE_*` entries; called once at load.
pub fn capture() {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr on one of our own functions fills `info` with our library's path.
    if unsafe { libc::dladdr(capture as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return;
    }
    // SAFETY: dladdr returned a NUL-terminated path that lives as long as the library.
    let lib_path = unsafe { CStr::from_ptr(info.dli_fname) }
        .to_bytes()
        .to_vec();
    let vars = std::env::vars_os()
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| k.starts_with(crate::config::PREFIX))
        })
        .filter_map(|(k, v)| {
            let mut entry = k.into_encoded_bytes();
            entry.push(b'=');
            entry.extend(v.into_encoded_bytes());
            CString::new(entry).ok()
        })
        .take(64)
        .collect();
    let Ok(preload) = CString::new([b"LD_PRELOAD=".as_slice(), &lib_path].concat()) else {
        return;
    };
    let _ = INHERITED.set(Inherited {
        lib_name: inherit::basename(&lib_path).to_vec(),
        preload,
        lib_path,
        vars,
    });
}

const MAX_ENTRIES: usize = 2048;
const MAX_PRELOAD: usize = 4096;

/// Calls `exec` with `envp`, or with a stack copy of it that has our entries back.
unsafe fn with_our_env(
    envp: *const *const c_char,
    exec: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    // The new program may hold the sockets too (on fd 1, CGI style), so a close here must push
    // what we corked rather than leave it to a FIN that never comes. No fork handler says so
    // after posix_spawn or vfork; in a vfork child this marks the parent's own table.
    crate::runtime::mark_connections_shared();
    let Some(inh) = INHERITED.get() else {
        return exec(envp);
    };
    let mut count = 0;
    while !envp.is_null() && !(*envp.add(count)).is_null() {
        count += 1;
    }
    let entries = || (0..count).map(|i| CStr::from_ptr(*envp.add(i)).to_bytes());
    let ours: [&[u8]; 64] =
        std::array::from_fn(|k| inh.vars.get(k).map_or(&[][..], |v| v.to_bytes()));
    let patch = inherit::plan(entries(), &inh.lib_name, &ours[..inh.vars.len()]);
    if patch.is_noop() || count + inh.vars.len() + 2 > MAX_ENTRIES {
        return exec(envp);
    }
    let mut out = [std::ptr::null::<c_char>(); MAX_ENTRIES];
    let mut merged = [0u8; MAX_PRELOAD];
    let mut n = 0;
    for i in 0..count {
        out[n] = *envp.add(i);
        n += 1;
    }
    match patch.preload {
        Preload::Present => {}
        Preload::Missing => {
            out[n] = inh.preload.as_ptr();
            n += 1;
        }
        Preload::Without(i) => {
            // "LD_PRELOAD=theirs" + ":" + our path + NUL
            let theirs = CStr::from_ptr(*envp.add(i)).to_bytes();
            let len = theirs.len() + 1 + inh.lib_path.len();
            if len < MAX_PRELOAD {
                merged[..theirs.len()].copy_from_slice(theirs);
                merged[theirs.len()] = b':';
                merged[theirs.len() + 1..len].copy_from_slice(&inh.lib_path);
                out[i] = merged.as_ptr().cast();
            }
        }
    }
    for (k, var) in inh.vars.iter().enumerate() {
        if patch.missing & (1u64 << k) != 0 {
            out[n] = var.as_ptr();
            n += 1;
        }
    }
    exec(out.as_ptr())
}

// Replaces execve(2).
hook! {
    unsafe fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => st_execve {
        with_our_env(envp, |e| real!(execve)(path, argv, e))
    }
}

// Replaces execvpe(3).
hook! {
    unsafe fn execvpe(file: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int => st_execvpe {
        with_our_env(envp, |e| real!(execvpe)(file, argv, e))
    }
}

// Replaces execv(3), which passes the current environment.
hook! {
    unsafe fn execv(path: *const c_char, argv: *const *const c_char) -> c_int => st_execv {
        with_our_env(environ, |e| real!(execve)(path, argv, e))
    }
}

// Replaces execvp(3), which passes the current environment.
hook! {
    unsafe fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int => st_execvp {
        with_our_env(environ, |e| real!(execvpe)(file, argv, e))
    }
}

// Replaces posix_spawn(3).
hook! {
    unsafe fn posix_spawn(pid: *mut pid_t, path: *const c_char, actions: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int => st_posix_spawn {
        with_our_env(envp.cast(), |e| real!(posix_spawn)(pid, path, actions, attr, argv, e.cast()))
    }
}

// Replaces posix_spawnp(3).
hook! {
    unsafe fn posix_spawnp(pid: *mut pid_t, file: *const c_char, actions: *const posix_spawn_file_actions_t, attr: *const posix_spawnattr_t, argv: *const *mut c_char, envp: *const *mut c_char) -> c_int => st_posix_spawnp {
        with_our_env(envp.cast(), |e| real!(posix_spawnp)(pid, file, actions, attr, argv, e.cast()))
    }
}
