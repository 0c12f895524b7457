//! The exported `extern "C"` functions that replace libc's. Each is thin: it looks the fd up in
//! the table, lets `ops` act around the real call, and returns the real call's result and errno.
//! One file per call family.

mod accept;
mod close;
mod connect;
mod exec;
mod exit;
mod read;
mod sockopt;
mod wait;
mod write;

pub use exec::capture as capture_inherited;
pub use sockopt::real_setsockopt;
pub use write::real_send;
