//! A mailbox's complete observable state, for comparing two stores: the live one
//! and one rebuilt by replay or restore. Blobs are included by digest, each checked
//! against the bytes on disk.

use crate::{Folder, Item, MailboxInfo, Store, StoreError, Tag, Tombstone};
use mv_types::MailboxId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    pub info: MailboxInfoState,
    pub folders: Vec<Folder>,
    pub tags: Vec<Tag>,
    pub items: Vec<Item>,
    pub tombstones: Vec<Tombstone>,
}

/// [`MailboxInfo`] without bookkeeping that is not part of the mailbox's content
/// (last_backup_at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfoState {
    pub mailbox_id: u32,
    pub account_id: String,
    pub email: String,
    pub applied_change: u64,
    pub next_item_id: u32,
    pub size_used: u64,
    pub created_ms: i64,
    pub deleted: bool,
}

impl From<MailboxInfo> for MailboxInfoState {
    fn from(i: MailboxInfo) -> Self {
        MailboxInfoState {
            mailbox_id: i.mailbox_id,
            account_id: i.account_id,
            email: i.email,
            applied_change: i.applied_change,
            next_item_id: i.next_item_id,
            size_used: i.size_used,
            created_ms: i.created_ms,
            deleted: i.deleted,
        }
    }
}

impl Store {
    /// The complete state of a mailbox; every blob is read and checked against its
    /// digest (an error if one is missing or damaged).
    pub fn mailbox_state(&self, id: MailboxId) -> Result<Option<MailboxState>, StoreError> {
        let mbox = self.mailbox(id);
        let Some(info) = mbox.info()? else {
            return Ok(None);
        };
        let items = mbox.items(None, None)?;
        for item in &items {
            if item.digest.is_some() {
                self.read_blob(id, item)?;
            }
        }
        Ok(Some(MailboxState {
            info: info.into(),
            folders: mbox.folders()?,
            tags: mbox.tags()?,
            items,
            tombstones: mbox.tombstones_since(0)?,
        }))
    }
}
