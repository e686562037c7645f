//! Identifiers, digests and time handling shared by every mailvault crate.
//!
//! This crate does no I/O. It is the one place for concepts every layer names:
//! mailbox and item ids, change numbers, blob digests, and the date-time parser
//! that every command-line tool uses for its time arguments.

pub mod digest;
pub mod ids;
pub mod metrics;
pub mod time;

pub use digest::{Digest, DigestParseError};
pub use ids::{ChangeNumber, ItemId, Lsn, MailboxId, TxnId};
pub use time::{TimeParseError, UtcMillis};
