//! vfork, syscall, clone and _Fork: new processes that no fork handler announces (x86-64).
//!
//! A vfork child runs in our memory until it execs: the vfork trampoline marks this thread, then
//! jumps to libc's vfork with no frame of ours left, since the child returns on our stack and
//! overwrites what lies below it. A child with memory of its own (vsftpd starts each session with
//! `syscall(SYS_clone, ...)`) finds itself by the wiped fork mark (`guard::adopt`); these hooks
//! tell its parent that the connections are shared now.

use crate::guard::{self, act};
use crate::{lifecycle, real, sys};
use libc::{c_int, c_long, c_void, pid_t};
use socktune_core::policy::{self, NewTask};
use std::arch::naked_asm;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

include!("../../asm/ask_then_jump.rs");

/// Replaces vfork(2).
#[cfg_attr(not(test), no_mangle)]
#[unsafe(naked)]
pub unsafe extern "C" fn vfork() -> pid_t {
    naked_asm!(
        "sub rsp, 8", // keeps the call's stack aligned
        "call {before}",
        "add rsp, 8",
        "jmp rax",
        before = sym before_vfork,
    )
}

/// Replaces __vfork, glibc's other name for vfork.
#[cfg_attr(not(test), no_mangle)]
#[unsafe(naked)]
pub unsafe extern "C" fn __vfork() -> pid_t {
    naked_asm!("jmp {vfork}", vfork = sym vfork)
}

/// Replaces syscall(2). clone and vfork go by [`route`], fork and clone3 by [`through`]; every
/// other number jumps to libc's syscall at once, its arguments untouched. The number is compared
/// as the kernel reads it, in its low 32 bits.
#[cfg_attr(not(test), no_mangle)]
#[unsafe(naked)]
pub unsafe extern "C" fn syscall() -> c_long {
    naked_asm!(
        "cmp edi, {clone}",
        "je 3f",
        "cmp edi, {vfork}",
        "je 3f",
        "cmp edi, {fork}",
        "je {through}",
        "cmp edi, {clone3}",
        "je {through}",
        "mov r11, qword ptr [rip + {real}]",
        "test r11, r11",
        "jz {through}",
        "jmp r11",
        // The child may share our memory and stack: decide first, and leave no frame behind.
        "3:",
        ask_then_jump!(""),
        clone = const libc::SYS_clone,
        vfork = const libc::SYS_vfork,
        fork = const libc::SYS_fork,
        clone3 = const libc::SYS_clone3,
        real = sym REAL_SYSCALL,
        through = sym through,
        ask = sym route,
    )
}

/// Replaces clone(2)'s libc wrapper. Its child runs `f` on a stack of its own and never comes
/// back here, so this one may keep a frame.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn clone(
    f: *mut c_void,
    stack: *mut c_void,
    flags: c_int,
    arg: *mut c_void,
    ptid: *mut pid_t,
    tls: *mut c_void,
    ctid: *mut pid_t,
) -> c_int {
    let task = policy::new_task(u64::from(flags as u32));
    before(task);
    let r = unsafe { real::clone(f, stack, flags, arg, ptid, tls, ctid) };
    after(task, r.into());
    r
}

/// Replaces _Fork (glibc 2.34), a fork that runs no fork handler.
#[allow(non_snake_case)]
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn _Fork() -> pid_t {
    let r = unsafe { real::_Fork() };
    after(NewTask::Process, r.into());
    r
}

/// libc's syscall once found, for the trampoline's straight jump.
static REAL_SYSCALL: AtomicUsize = AtomicUsize::new(0);

fn real_syscall() -> usize {
    let mut a = REAL_SYSCALL.load(SeqCst);
    if a == 0 {
        a = address(&real::SYSCALL);
        REAL_SYSCALL.store(a, SeqCst);
    }
    a
}

fn address(symbol: &real::Symbol) -> usize {
    symbol
        .addr()
        .map_or(missing as *const () as usize, |a| a as usize)
}

/// What a jump to a function this libc lacks answers: -1, ENOSYS.
extern "C" fn missing() -> c_long {
    crate::errno::set(libc::ENOSYS);
    -1
}

/// Notes the vfork; answers where libc's is.
extern "C" fn before_vfork() -> usize {
    guard::before_vfork();
    address(&real::VFORK)
}

/// For syscall's clone and vfork: a child that will share our memory is noted, and the call
/// jumps on to libc. A clone that makes a process goes to [`through`]: its child has its own
/// copy of the stack, so a frame of ours harms nothing.
extern "C" fn route(nr: c_long, flags: c_long) -> usize {
    let task = if nr as c_int == libc::SYS_vfork as c_int {
        NewTask::Vfork
    } else {
        policy::new_task(flags as u64)
    };
    if task == NewTask::Process {
        return through as *const () as usize;
    }
    before(task);
    real_syscall()
}

/// A syscall() that may make a process (or any, before libc's is found), called from here.
unsafe extern "C" fn through(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let task = match c_long::from(nr as c_int) {
        libc::SYS_fork => Some(NewTask::Process),
        libc::SYS_clone => Some(policy::new_task(a1 as u64)),
        // A pointer the kernel cannot read either: no child, EFAULT.
        libc::SYS_clone3 => act("syscall", || {
            sys::clone3_flags(a1 as usize, a2 as usize).map(policy::new_task)
        }),
        _ => None,
    };
    if let Some(task) = task {
        before(task);
    }
    // SAFETY: libc's syscall (or `missing`), given the program's own arguments.
    let r = unsafe {
        std::mem::transmute::<usize, unsafe extern "C" fn(c_long, ...) -> c_long>(real_syscall())(
            nr, a1, a2, a3, a4, a5, a6,
        )
    };
    if let Some(task) = task {
        after(task, r);
    }
    r
}

/// Before a child starts: one that will share our memory, or beside us may use our connections;
/// a process, which should share our control file.
fn before(task: NewTask) {
    match task {
        NewTask::Vfork => guard::before_vfork(),
        NewTask::SharesMemory => {
            guard::before_sharing_memory();
            act("clone", || lifecycle::after_fork_in_parent());
        }
        // The control file its workers share, as a fork handler makes it.
        NewTask::Process => lifecycle::before_fork(),
        NewTask::Thread => {}
    }
}

/// After a call that made a process (`r`: 0 in the child, its pid in the parent): what a fork
/// handler does on each side.
fn after(task: NewTask, r: c_long) {
    if task != NewTask::Process {
        return;
    }
    if r == 0 {
        guard::adopt();
    } else if r > 0 {
        act("fork", || lifecycle::after_fork_in_parent());
    }
}
