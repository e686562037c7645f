//! The systems under test: mailvault itself and the peers it is compared with.
//!
//! A peer is optional on any given machine: [`Availability`] says whether it can
//! run here, and a scenario that cannot run a peer reports *why* ("peer not
//! installed", "needs root") in its table instead of silently leaving it out.
//! The backup scenario's peers (tar, restic, borg) are in [`archivers`].

pub mod archivers;
pub mod dovecot;
pub mod imaptest;
pub mod mailvault;

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Availability {
    Available {
        version: String,
    },
    /// The peer's programs are missing; `install` says how to get them.
    NotInstalled {
        install: String,
    },
    /// Installed but cannot run as this user.
    NeedsRoot {
        why: String,
    },
}

impl Availability {
    pub fn reason(&self) -> Option<String> {
        match self {
            Availability::Available { .. } => None,
            Availability::NotInstalled { install } => {
                Some(format!("peer not installed ({install})"))
            }
            Availability::NeedsRoot { why } => Some(format!("peer needs root ({why})")),
        }
    }
}

/// A mail server that accepts LMTP: mailvault or a peer.
pub trait LmtpTarget {
    /// Short name for tables ("mailvault", "Dovecot").
    fn name(&self) -> &'static str;
    fn availability(&self) -> Availability;
    /// Starts a fresh server in `dir` (created, empty) with `accounts` provisioned.
    fn start(&self, dir: &Path, accounts: &[String]) -> anyhow::Result<Box<dyn RunningServer>>;
}

pub trait RunningServer {
    fn lmtp_addr(&self) -> SocketAddr;
    /// The server's main process (resources are summed over its process tree).
    fn pid(&self) -> u32;
    /// Stops the server and checks that every acknowledged message is stored:
    /// `expected` maps each account to the Message-IDs (no brackets) it must hold,
    /// each exactly once. Returns the number of stored messages checked.
    fn stop_and_verify(
        self: Box<Self>,
        expected: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<usize>;
}

/// A free TCP port on the loopback interface (bound and released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(mv_home::ports::free_loopback_port()?)
}

/// `name` on PATH, or in the sbin directories root's PATH would have.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Compares stored Message-IDs per account with the expected ones.
pub(crate) fn compare_ids(
    who: &str,
    expected: &BTreeMap<String, Vec<String>>,
    mut stored: impl FnMut(&str) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<usize> {
    let mut checked = 0;
    for (account, want) in expected {
        let mut have = stored(account)?;
        have.sort();
        let mut want = want.clone();
        want.sort();
        if have != want {
            let missing: Vec<&String> = want
                .iter()
                .filter(|w| have.binary_search(w).is_err())
                .collect();
            let mut dupes = have.clone();
            dupes.dedup();
            anyhow::bail!(
                "{who}: {account} holds {} messages, {} expected ({} missing, e.g. {:?}; {} duplicates)",
                have.len(),
                want.len(),
                missing.len(),
                missing.first(),
                have.len() - dupes.len()
            );
        }
        checked += have.len();
    }
    Ok(checked)
}
