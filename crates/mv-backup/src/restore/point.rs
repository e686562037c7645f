//! A mailbox rebuilt at a restore point and thrown away after it was read
//! (item-level recovery and backup search, `crate::items`): the restore's own
//! planner and apply path, with no account pointed at the result.

use super::{Built, RestoreOptions, RestoreRun, build_with_catalog};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::run::Source;
use crate::target::Target;
use mv_types::{Digest, MailboxId, UtcMillis};

impl RestoreRun {
    /// The account's mailbox as it was at the restore point of `opts`, built at a
    /// new mailbox id that no account points at, to be read and then thrown away
    /// ([`PointMailbox::discard`]): item-level recovery and backup search. The
    /// snapshot's blobs are not written (read them from the pool with
    /// [`RestoreRun::read_pool_blob`]); replayed messages have their files.
    pub fn build_point(
        &mut self,
        source: &Source,
        target: &dyn Target,
        email: &str,
        opts: &RestoreOptions,
    ) -> Result<PointMailbox> {
        if self.catalog.is_none() {
            self.catalog = Some(Catalog::load(target)?);
        }
        let catalog = self.catalog.take().expect("loaded above");
        let r = build_with_catalog(self, &catalog, source, target, email, opts, true);
        self.catalog = Some(catalog);
        let built = r?;
        let note_time = built.collector.note_time();
        Ok(PointMailbox {
            mailbox: built.dest.account().mailbox_id,
            zimbra_id: built.dest.account().id.clone(),
            full_label: built.report.full_label.clone(),
            used_time: note_time.filter(|_| opts.restore_points > 1),
            built: Some(built),
        })
    }

    /// The target's catalog, as this run read it (loaded on first use).
    pub fn catalog(&mut self, target: &dyn Target) -> Result<&Catalog> {
        if self.catalog.is_none() {
            self.catalog = Some(Catalog::load(target)?);
        }
        Ok(self.catalog.as_ref().expect("loaded above"))
    }

    /// A content from the target's blob pool, checked against its digest.
    pub fn read_pool_blob(&mut self, target: &dyn Target, digest: &Digest) -> Result<Vec<u8>> {
        self.pool(target)?.read(target, digest)
    }
}

/// A mailbox rebuilt at a restore point, where nothing points at it
/// ([`RestoreRun::build_point`]). Dropped without [`PointMailbox::discard`], its
/// files stay behind, owned by no account: always discard it.
pub struct PointMailbox {
    pub mailbox: MailboxId,
    pub zimbra_id: String,
    pub full_label: String,
    /// With several restore points given, the time used.
    pub used_time: Option<UtcMillis>,
    built: Option<Built>,
}

impl PointMailbox {
    /// Removes the rebuilt mailbox: its database, its files, its search index.
    pub fn discard(mut self, source: &Source) {
        // A scratch build's discard removes the database, its files, its index
        // and its mark (`Store::remove_scratch`).
        if let Some(built) = self.built.take() {
            built.discard(source);
        }
    }
}
