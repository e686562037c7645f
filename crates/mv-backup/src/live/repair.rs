//! Segments damaged in the target while the primary runs: a standby that
//! finds one cannot fix it (only the epoch's holder writes segments, so two
//! writers never interleave), so it asks, with a small marker object; the
//! primary's shipper finds the marker at its next round, reads its open log's
//! segments back, and ships again from the first one damaged or missing, from
//! the log it still has open (see [`super::ship`]).
//!
//! ```text
//! <target>/live/repair-request.json   {sequence, offset, reason, server, written_at}
//! ```
//!
//! The marker is a request, not a state: it holds nothing a reader needs, a
//! lost one only delays the repair until the standby's next failing step
//! writes it again, and one left after the repair (the standby asked again
//! while the shipper was at it) costs one more read-back that finds nothing.

use crate::error::{BackupError, Result};
use crate::target::Target;

pub const REPAIR_PATH: &str = "live/repair-request.json";
/// The largest request read back.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// What a standby asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepairRequest {
    /// The redo sequence whose segments failed to read, and the offset the
    /// standby applied them up to.
    pub sequence: u64,
    pub offset: u64,
    /// The error the standby got, naming the object.
    pub reason: String,
    /// The standby's server name.
    pub server: String,
    /// When it asked (UTC milliseconds).
    pub written_at: i64,
}

/// Puts the request unless one is there already. Returns whether it put one.
pub fn request(target: &dyn Target, req: &RepairRequest) -> Result<bool> {
    if read(target)?.is_some() {
        return Ok(false);
    }
    let json = serde_json::to_vec_pretty(req)
        .map_err(|e| BackupError::Invalid(format!("encoding {REPAIR_PATH}: {e}")))?;
    target.put(REPAIR_PATH, &json)?;
    Ok(true)
}

/// The pending request, if any. One that does not decode (written by
/// something else, or cut) still asks for a read-back: it is returned with
/// sequence 0, which the shipper takes as "check the open log".
pub fn read(target: &dyn Target) -> Result<Option<RepairRequest>> {
    // Read from the target: a request is a few hundred bytes; anything much
    // larger is not one and is not read into memory.
    match target.size(REPAIR_PATH)? {
        None => return Ok(None),
        Some(n) if n > MAX_REQUEST_BYTES => {
            return Ok(Some(RepairRequest {
                sequence: 0,
                offset: 0,
                reason: format!("{REPAIR_PATH} is {n} bytes, more than a request can be"),
                server: String::new(),
                written_at: 0,
            }));
        }
        Some(_) => {}
    }
    match target.get(REPAIR_PATH) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).unwrap_or_else(|e| {
            RepairRequest {
                sequence: 0,
                offset: 0,
                reason: format!("{REPAIR_PATH} does not decode: {e}"),
                server: String::new(),
                written_at: 0,
            }
        }))),
        Err(BackupError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the request once handled.
pub fn done(target: &dyn Target) -> Result<()> {
    target.delete(REPAIR_PATH)
}
