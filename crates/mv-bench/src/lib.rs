//! mailvault-bench: a deterministic, realistic mail corpus, and scenarios that
//! measure mailvault side by side with its peers (Dovecot for delivery; tar,
//! restic and borg for backup and restore as those scenarios land).
//!
//! - [`corpus`]: the generator (accounts, messages, threads, folders, flags, tags,
//!   contacts, appointments) from a seed, rendered on the fly or written to disk.
//! - [`scenario`]: the `Scenario` trait and its report (figures as medians of runs,
//!   ratios to peers, goals met / not met / not evaluated).
//! - [`lmtp_client`], [`imap_client`]: the protocol clients used for every server.
//! - [`scenarios`]: the registered scenarios (`lmtp`, `redo`, `backup`, `imap`).
//! - [`peers`]: the systems under test and whether each can run on this machine.
//! - [`report`]: markdown, JSON and BENCHMARKS.md.

pub mod corpus;
pub mod imap_client;
pub mod lmtp_client;
pub mod measure;
pub mod peers;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod scenarios;
pub mod sysinfo;
mod words;
