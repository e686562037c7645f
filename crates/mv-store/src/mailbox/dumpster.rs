//! Reading a mailbox's dumpster: deleted messages kept for recovery
//! (`zmmailbox recoverDeleted --list`), and the space they take, counted apart
//! from quota-used.

use super::{ITEM_COLUMNS, Item, Mailbox, item_from_row};
use crate::StoreError;

/// A message in the dumpster: the item as it was when deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DumpsterItem {
    #[serde(flatten)]
    pub item: Item,
    /// When it was deleted (ms since the epoch).
    pub deleted_ms: i64,
    /// When the sweep removes it for good.
    pub keep_until_ms: i64,
}

impl Mailbox {
    /// The dumpster's messages, most recently deleted first.
    pub fn dumpster(&self) -> Result<Vec<DumpsterItem>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS}, deleted_ms, keep_until_ms FROM dumpster \
                 ORDER BY deleted_ms DESC, id DESC"
            ))?;
            let rows = st.query_map([], |r| {
                Ok(DumpsterItem {
                    item: item_from_row(r)?,
                    deleted_ms: r.get(23)?,
                    keep_until_ms: r.get(24)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Bytes of the dumpster's messages (zimbraDumpsterQuota's usage).
    pub fn dumpster_used(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT COALESCE(SUM(size), 0) FROM dumpster", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n.max(0) as u64)
    }
}
