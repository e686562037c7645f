//! A mailbox rebuilt at a restore point and thrown away after it was read
//! (item-level recovery and backup search, `crate::items`): the restore's own
//! planner and apply path, with no account pointed at the result.
//!
//! Several points of one account are read one after the other: a point whose
//! records begin with those the mailbox already replayed (a later incremental of
//! the same full) is reached by replaying only the rest into the same mailbox
//! ([`RestoreRun::advance_point`]), instead of loading the snapshot and
//! replaying everything again for each point.

use super::mailbox::replay_into;
use super::{AccountRestoreReport, Built, RestoreOptions, RestoreRun, build_with_catalog, history};
use crate::catalog::Catalog;
use crate::error::Result;
use crate::run::Source;
use crate::session::Session;
use crate::target::Target;
use mv_redo::Record;
use mv_types::{ChangeNumber, Digest, Lsn, MailboxId, UtcMillis};

/// One replayed record of the account's mailbox, as the plan named it.
pub(super) type Replayed = (MailboxId, ChangeNumber, Lsn);

/// The account's records among `records` (content records left out), in order.
pub(super) fn replayed(records: &[Record]) -> Vec<Replayed> {
    records
        .iter()
        .filter(|r| r.mailbox.0 != 0)
        .map(|r| (r.mailbox, r.change, r.lsn))
        .collect()
}

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

    /// The account's mailbox at the restore point of `opts`, reached from `prev`
    /// (a point of the same account this run built) when the records up to
    /// `opts` begin with those `prev` replayed and start from the same full:
    /// only the rest are replayed into it. Otherwise `prev` is thrown away and
    /// the point built anew ([`RestoreRun::build_point`]). Either way the result
    /// is the state the point's own build gives (the same snapshot, the same
    /// records, the one apply path). On failure `prev` is thrown away too.
    pub fn advance_point(
        &mut self,
        source: &Source,
        target: &dyn Target,
        email: &str,
        opts: &RestoreOptions,
        prev: Option<PointMailbox>,
    ) -> Result<PointMailbox> {
        let Some(mut pm) = prev else {
            return self.build_point(source, target, email, opts);
        };
        if opts.full_only || opts.restore_points > 1 || opts.new_account_prefix.is_some() {
            pm.discard(source);
            return self.build_point(source, target, email, opts);
        }
        let catalog = match self.catalog.take() {
            Some(c) => c,
            None => match Catalog::load(target) {
                Ok(c) => c,
                Err(e) => {
                    pm.discard(source);
                    return Err(e);
                }
            },
        };
        let r = self.rest_of(&catalog, source, target, email, opts, &pm);
        self.catalog = Some(catalog);
        match r {
            Ok(Some((from, rest, sig))) => match replay_into(source, rest, from, pm.mailbox) {
                Ok(_) => {
                    if let Some(b) = pm.built.as_mut() {
                        b.replayed = sig;
                    }
                    Ok(pm)
                }
                Err(e) => {
                    pm.discard(source);
                    Err(e)
                }
            },
            Ok(None) => {
                pm.discard(source);
                self.build_point(source, target, email, opts)
            }
            Err(e) => {
                pm.discard(source);
                Err(e)
            }
        }
    }

    /// The records that take `pm` to the point of `opts` (named by the
    /// snapshot's mailbox id, which is returned with them) and the signature of
    /// all the point's records; None when `pm` is not on the way there.
    #[allow(clippy::type_complexity)]
    fn rest_of(
        &mut self,
        catalog: &Catalog,
        source: &Source,
        target: &dyn Target,
        email: &str,
        opts: &RestoreOptions,
        pm: &PointMailbox,
    ) -> Result<Option<(MailboxId, Vec<Record>, Vec<Replayed>)>> {
        let Some(built) = pm.built.as_ref() else {
            return Ok(None);
        };
        let sessions: Vec<&Session> = catalog.sessions().collect();
        let mut report = AccountRestoreReport::default();
        let plan = history::plan(
            self,
            source,
            target,
            catalog,
            &sessions,
            &history::Account {
                zimbra_id: &pm.zimbra_id,
                email,
            },
            opts,
            None,
            &mut report,
        )?;
        let sig = replayed(&plan.records);
        if plan.full.label.to_string() != pm.full_label || !sig.starts_with(&built.replayed) {
            return Ok(None);
        }
        // Content records are kept whole: the apply path stages only those a
        // replayed record uses.
        let mut seen = 0;
        let done = built.replayed.len();
        let rest: Vec<Record> = plan
            .records
            .into_iter()
            .filter(|r| {
                if r.mailbox.0 == 0 {
                    return true;
                }
                seen += 1;
                seen > done
            })
            .collect();
        Ok(Some((MailboxId(plan.meta.mailbox_id), rest, sig)))
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
