//! Builds the stub, libsocktune.so (stub/stub.rs), beside the shim this package builds
//! (libsocktune_shim.so), and links the shim's unwinder statically.
//!
//! The stub is what the loader maps into every process under socktune: it is built without the
//! standard library and with `panic=abort` (the workspace's profile unwinds, for the shim's
//! `guard::act`), by the same rustc, into the profile's directory where `cargo build` leaves the
//! shim.
//!
//! The shim links the unwinder (libgcc_eh.a) instead of depending on libgcc_s.so.1: loading it
//! costs an open, its mappings, relocations and version checks, and a constructor. Rust's
//! standard library asks the linker for `-lgcc_s`; a linker script of that name in a directory
//! searched first makes it the static `-lgcc_eh`. Where the toolchain has no libgcc_eh.a (the
//! answer is the bare name), nothing changes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=stub/stub.rs");
    println!("cargo:rerun-if-changed=asm/ask_then_jump.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let gnu_linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if !gnu_linux {
        return;
    }
    build_stub(&out);
    link_unwinder_statically(&out);
}

fn build_stub(out: &Path) {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        panic!("the stub's hooks are written for x86-64 only");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let stub = out.join("libsocktune.so");
    let status = Command::new(rustc)
        .args([
            "--edition=2021",
            "--crate-type=cdylib",
            "--crate-name=socktune",
        ])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=2",
            "-C",
            "strip=debuginfo",
        ])
        .args(["--target", &target, "stub/stub.rs", "-o"])
        .arg(&stub)
        .env("SOCKTUNE_VERSION", env!("CARGO_PKG_VERSION"))
        .status()
        .expect("run rustc for the stub");
    assert!(status.success(), "building stub/stub.rs failed");
    // OUT_DIR is <profile dir>/build/<package>-<hash>/out.
    let profile_dir = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is inside the profile directory");
    std::fs::copy(&stub, profile_dir.join("libsocktune.so"))
        .expect("copy the stub beside the shim");
}

fn link_unwinder_statically(out: &Path) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| Path::new(p).is_absolute());
    if found.is_none() {
        return;
    }
    std::fs::write(out.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").expect("write the linker script");
    println!("cargo:rustc-link-search=native={}", out.display());
}
