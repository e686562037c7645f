//! Crash recovery's repair of blob files: those written since the last
//! checkpoint may be missing or short after a power cut, while the mailbox
//! database kept the items that use them (SQLite syncs its write-ahead log on
//! its own at times, at its automatic checkpoints, so a database can be ahead of
//! the blobs, which only the store's checkpoints make durable).

use crate::{Store, StoreError};
use mv_redo::{Op, Record};
use mv_types::{Digest, ItemId, MailboxId};
use std::collections::{BTreeMap, HashMap};

impl Store {
    /// Checks the blob of every item whose content was written at or after the
    /// first change replayed for its mailbox (records after the last checkpoint)
    /// and rewrites a missing or short one from the log's `PutBlob` record, or
    /// from a whole blob of the same content. Every item, not only those a
    /// `CreateMessage` made: an IMAP MOVE gives the moved message a new blob
    /// file (a hard link of the old one), and a delivery moved before the cut
    /// left it empty with the delivery's.
    pub(crate) fn repair_blobs(&self, records: &[Record]) -> Result<u64, StoreError> {
        let content: HashMap<[u8; 32], &[u8]> = records
            .iter()
            .filter_map(|r| match &r.op {
                Op::PutBlob(p) => Some((p.digest, p.data.as_slice())),
                _ => None,
            })
            .collect();
        // The records are in log order: each mailbox's first is its lowest change.
        let mut first: BTreeMap<MailboxId, u64> = BTreeMap::new();
        for rec in records.iter().filter(|r| r.mailbox.0 != 0) {
            first.entry(rec.mailbox).or_insert(rec.change.0);
        }
        let mut repaired = 0;
        for (id, from) in first {
            let mbox = self.mailbox(id);
            if !mbox.db_path().exists() {
                continue;
            }
            let ids: Vec<u32> = mbox.read(|c| {
                c.prepare("SELECT id FROM item WHERE digest IS NOT NULL AND mod_content >= ?1")?
                    .query_map([from as i64], |r| r.get(0))?
                    .collect()
            })?;
            let mut items = Vec::with_capacity(ids.len());
            for item_id in ids {
                items.extend(mbox.item(ItemId(item_id))?);
            }
            // Deleted messages kept in the dumpster hold their blobs too: one
            // written and deleted since the last checkpoint is repaired the same way.
            items.extend(
                mbox.dumpster()?
                    .into_iter()
                    .map(|d| d.item)
                    .filter(|i| i.digest.is_some() && i.mod_content >= from),
            );
            for item in items {
                let item_id = item.id;
                let path =
                    self.blobs()
                        .blob_path(item.volume_id, id, ItemId(item_id), item.mod_content);
                // The blob holds the received bytes; the prefix is in the database.
                let blob_len = item.size.saturating_sub(item.prefix.len() as u64);
                let whole =
                    |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|md| md.len() == blob_len);
                if whole(&path) {
                    continue;
                }
                let digest: Option<Digest> = item.digest.as_deref().and_then(|d| d.parse().ok());
                let bytes = match digest.and_then(|d| content.get(&d.0)) {
                    Some(b) => b.to_vec(),
                    None => self
                        .whole_copy(id, digest, blob_len, item_id)?
                        .ok_or_else(|| StoreError::MissingBlob {
                            mailbox: id,
                            item: item_id,
                            path: path.clone(),
                        })?,
                };
                self.blobs().write_at(&path, &bytes)?;
                repaired += 1;
            }
        }
        if repaired > 0 {
            self.checkpoint()?;
        }
        Ok(repaired)
    }

    /// The bytes of another item of the mailbox with the same content whose
    /// blob is whole (verified against the digest).
    fn whole_copy(
        &self,
        mailbox: MailboxId,
        digest: Option<Digest>,
        size: u64,
        except: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(digest) = digest else {
            return Ok(None);
        };
        let mbox = self.mailbox(mailbox);
        let ids: Vec<u32> = mbox.read(|c| {
            c.prepare("SELECT id FROM item WHERE digest = ?1 AND id != ?2")?
                .query_map(rusqlite::params![&digest.0[..], except], |r| r.get(0))?
                .collect()
        })?;
        for other in ids {
            let Some(item) = mbox.item(ItemId(other))? else {
                continue;
            };
            let path =
                self.blobs()
                    .blob_path(item.volume_id, mailbox, ItemId(other), item.mod_content);
            // `size` is the blob's length: another copy's prefix may differ.
            if let Ok(bytes) = self.blobs().read_verified(&path, &digest)
                && bytes.len() as u64 == size
            {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DeliverOptions, Store, StoreOptions};
    use mv_home::Home;
    use mv_redo::ops::folders;
    use mv_types::{ItemId, MailboxId};

    fn open(home: &Home) -> (Store, crate::OpenReport) {
        Store::open(home, StoreOptions::for_home(home)).unwrap()
    }

    /// A delivery moved to another folder, then a crash that kept the database
    /// (SQLite had synced its log) but lost the content: the moved message's
    /// blob is rewritten from the log.
    #[test]
    fn a_moved_message_whose_content_a_crash_lost_is_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let id = MailboxId(3);
        let body = b"Subject: moved\r\n\r\nwhat the crash took\r\n";
        let (store, _) = open(&home);
        store.create_mailbox(id, "a", "a@example.com").unwrap();
        let archive = store
            .create_folder(id, folders::ROOT, "Archive", "message")
            .unwrap();
        let item = store
            .add_message(id, body, &DeliverOptions::default())
            .unwrap();
        store.move_items(id, &[item], archive).unwrap();
        let moved = store
            .mailbox(id)
            .changes_since(0)
            .unwrap()
            .items
            .into_iter()
            .find(|i| i.folder_id == archive)
            .expect("the moved message");
        let path =
            store
                .blobs()
                .blob_path(moved.volume_id, id, ItemId(moved.id), moved.mod_content);
        // A crash: no close, no checkpoint; the content's data lost, its name kept.
        std::mem::forget(store);
        std::fs::write(&path, b"").unwrap();

        let (store, report) = open(&home);
        assert_eq!(report.blobs_repaired, 1, "{report:?}");
        assert_eq!(store.read_blob(id, &moved).unwrap(), body);
    }
}
