//! execve, execv, execvp, execvpe, posix_spawn and posix_spawnp: the new program gets our
//! `LD_PRELOAD` and `SOCKTUNE_*` entries back if the caller's environment lost them, and an exec
//! records the connections it carries over.

use crate::exec_env::{self, EnvBuffers};
use crate::guard::act;
use crate::{lifecycle, real, sys};
use libc::{c_char, c_int, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t};

/// The environment to exec with: `envp`, or the patched copy in `buffers`. `replaces_us`: an
/// exec, not a spawn.
unsafe fn our_env(
    call: &str,
    replaces_us: bool,
    envp: *const *const c_char,
    buffers: &mut EnvBuffers,
) -> *const *const c_char {
    let patched = act(call, || {
        lifecycle::before_exec(replaces_us);
        // SAFETY: the program passes exec an environment array, or null.
        unsafe { exec_env::patch(envp, buffers) }
    });
    if patched {
        buffers.entries()
    } else {
        envp
    }
}

/// Replaces execve(2).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let mut buffers = EnvBuffers::new();
    unsafe { real::execve(path, argv, our_env("execve", true, envp, &mut buffers)) }
}

/// Replaces execvpe(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let mut buffers = EnvBuffers::new();
    unsafe { real::execvpe(file, argv, our_env("execvpe", true, envp, &mut buffers)) }
}

/// Replaces execv(3), which passes the current environment.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    let mut buffers = EnvBuffers::new();
    unsafe {
        real::execve(
            path,
            argv,
            our_env("execv", true, sys::environ(), &mut buffers),
        )
    }
}

/// Replaces execvp(3), which passes the current environment.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    let mut buffers = EnvBuffers::new();
    unsafe {
        real::execvpe(
            file,
            argv,
            our_env("execvp", true, sys::environ(), &mut buffers),
        )
    }
}

/// Replaces posix_spawn(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let mut buffers = EnvBuffers::new();
    let env = unsafe { our_env("posix_spawn", false, envp.cast(), &mut buffers) };
    unsafe { real::posix_spawn(pid, path, actions, attr, argv, env.cast()) }
}

/// Replaces posix_spawnp(3).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    let mut buffers = EnvBuffers::new();
    let env = unsafe { our_env("posix_spawnp", false, envp.cast(), &mut buffers) };
    unsafe { real::posix_spawnp(pid, file, actions, attr, argv, env.cast()) }
}
