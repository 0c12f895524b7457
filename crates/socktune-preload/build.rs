//! Links the unwinder into libsocktune.so (libgcc_eh.a) instead of depending on libgcc_s.so.1.
//!
//! Every process under the shim loads the library, and loading libgcc_s.so.1 with it costs an
//! open, its mappings, relocations and version checks, and a constructor: about 19,000
//! instructions of a 230,000-instruction `/bin/true` (callgrind). The unwinder stays: a panic in
//! the shim's logic is caught in `guard::act` and the program's call goes ahead. Rust's standard
//! library asks the linker for `-lgcc_s`; a linker script of that name in a directory searched
//! first makes it the static `-lgcc_eh`. Where the toolchain has no libgcc_eh.a (the answer is
//! the bare name), nothing changes.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let gnu_linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if !gnu_linux {
        return;
    }
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
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")
        .expect("write the linker script");
    println!("cargo:rustc-link-search=native={out}");
}
