//! When each mailbox was last backed up (the seed's RFE: set only for accounts
//! whose backup completed).
//!
//! Kept here, one row per mailbox, and not in each mailbox's database: a session
//! records every account it completed in one transaction, instead of a write (and
//! its fsyncs) in every mailbox database, and a backup of unchanged mailboxes
//! then opens none of them for writing. It is bookkeeping of this server, not
//! part of an account's entry: LDIF exports leave it out.

use crate::Directory;
use crate::error::Result;
use mv_types::MailboxId;
use rusqlite::OptionalExtension;

impl Directory {
    /// Records that the mailboxes' backups completed at `at` (ms since the epoch).
    pub fn record_backups(&self, mailboxes: &[MailboxId], at: i64) -> Result<()> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO backup_status (mailbox_id, last_backup_at) VALUES (?1, ?2)
                 ON CONFLICT (mailbox_id) DO UPDATE SET last_backup_at = excluded.last_backup_at",
            )?;
            for m in mailboxes {
                st.execute((m.0, at))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When the mailbox's last completed backup ended, if it has one.
    pub fn last_backup_at(&self, mailbox: MailboxId) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT last_backup_at FROM backup_status WHERE mailbox_id = ?1",
                    [mailbox.0],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_overwrites_per_mailbox() {
        let d = Directory::open_in_memory().unwrap();
        assert_eq!(d.last_backup_at(MailboxId(1)).unwrap(), None);
        d.record_backups(&[MailboxId(1), MailboxId(2)], 1000)
            .unwrap();
        d.record_backups(&[MailboxId(2)], 2000).unwrap();
        assert_eq!(d.last_backup_at(MailboxId(1)).unwrap(), Some(1000));
        assert_eq!(d.last_backup_at(MailboxId(2)).unwrap(), Some(2000));
        assert_eq!(d.last_backup_at(MailboxId(3)).unwrap(), None);
    }
}
