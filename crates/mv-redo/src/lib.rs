//! The mailvault redo log.
pub mod ops;
pub use ops::Op;
