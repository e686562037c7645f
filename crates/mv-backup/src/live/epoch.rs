//! Fencing through the target: who may ship into `live/`.
//!
//! ```text
//! <target>/live/epochs/<epoch, 10 digits>.json   {"epoch", "owner", "server", "at"}
//! ```
//!
//! A promoted standby claims the next epoch with [`claim`]: a create-new put
//! ([`Target::put_new`]), so of two servers promoting at once exactly one gets
//! the number and the other is told. A shipper compares the newest epoch with
//! its own (the owner id its home keeps) before every round ([`check`]): a
//! server whose home does not own the newest epoch — the old primary coming
//! back after its standby took over — ships nothing, so it can never interleave
//! its unshipped tail with the new primary's history. A target without any
//! epoch predates fencing: its one shipper ships.

use crate::error::{BackupError, Result};
use crate::target::Target;

pub const EPOCHS_PREFIX: &str = "live/epochs/";

/// One claimed epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Epoch {
    pub epoch: u64,
    /// The random id the owning home keeps.
    pub owner: String,
    /// The server name of the home that claimed it.
    pub server: String,
    /// When it was claimed (UTC milliseconds).
    pub at: i64,
}

fn epoch_path(n: u64) -> String {
    format!("{EPOCHS_PREFIX}{n:010}.json")
}

/// The newest epoch the target holds, `None` when it holds none.
pub fn newest(target: &dyn Target) -> Result<Option<Epoch>> {
    let mut best: Option<(u64, String)> = None;
    for o in target.list(EPOCHS_PREFIX)? {
        let Some(n) = o
            .path
            .strip_prefix(EPOCHS_PREFIX)
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, o.path));
        }
    }
    let Some((n, path)) = best else {
        return Ok(None);
    };
    let bytes = target.get(&path)?;
    let e: Epoch = serde_json::from_slice(&bytes)
        .map_err(|e| BackupError::corrupt(format!("{}/{path}", target.url()), e.to_string()))?;
    if e.epoch != n {
        return Err(BackupError::corrupt(
            format!("{}/{path}", target.url()),
            format!("says epoch {}, the name {n}", e.epoch),
        ));
    }
    Ok(Some(e))
}

/// Claims the epoch after the newest for a new owner id (returned in the
/// epoch, for the home to keep). Fails when another server claimed that
/// number first (it promoted at the same time: one of the two must be rebuilt
/// as a standby).
pub fn claim(target: &dyn Target, server: &str) -> Result<Epoch> {
    let next = newest(target)?.map_or(1, |e| e.epoch + 1);
    let e = Epoch {
        epoch: next,
        owner: uuid::Uuid::new_v4().simple().to_string(),
        server: server.to_string(),
        at: mv_types::UtcMillis::now().0,
    };
    let json = serde_json::to_vec_pretty(&e)
        .map_err(|e| BackupError::Invalid(format!("live epoch: {e}")))?;
    if !target.put_new(&epoch_path(next), &json)? {
        return Err(BackupError::Fenced(format!(
            "epoch {next} of {} was claimed by another server at the same time; \
             only one standby can be promoted",
            target.url()
        )));
    }
    Ok(e)
}

/// Whether the home owning `own` (its owner id, `None` for a home that never
/// promoted) may ship into the target: an error saying why not.
pub fn check(target: &dyn Target, own: Option<&str>) -> Result<()> {
    let Some(e) = newest(target)? else {
        return Ok(());
    };
    if own == Some(e.owner.as_str()) {
        return Ok(());
    }
    Err(BackupError::Fenced(format!(
        "{} belongs to epoch {} (server {} promoted at {}): this server is no longer \
         its primary and ships nothing into it; rebuild it as a standby \
         (mailvault standby -t {})",
        target.url(),
        e.epoch,
        e.server,
        mv_types::UtcMillis(e.at),
        target.url()
    )))
}
