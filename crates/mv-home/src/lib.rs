//! The mailvault home directory: where it is, what it holds, the lock that lets one
//! server process own it, the local configuration, and the durable-write helpers
//! every crate uses to put a file on disk (temp name, fsync, rename, fsync dir).

pub mod durable;
pub mod layout;
pub mod localconfig;
pub mod lock;
pub mod ports;
pub mod syncmode;

pub use durable::{fsync_dir, write_atomic};
pub use layout::{Exposure, Home, HomeError};
pub use localconfig::{KeyKind, LocalConfig, LocalConfigError};
pub use lock::{HomeLock, LockError};
pub use syncmode::{FsKind, SyncMode, fs_kind, syncfs};
