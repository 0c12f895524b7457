//! socktune's pure logic, shared by the preload library and the launcher: the settings, the
//! per-fd state word and the policy over it, the stats record format, and the plan for a child's
//! environment at exec, and the live control file's layout. No FFI and no global state, so everything here is unit-tested as is.

pub mod config;
pub mod framing;
pub mod inherit;
pub mod live;
pub mod policy;
pub mod record;
pub mod rules;
pub mod state;
