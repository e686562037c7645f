//! In-place restores as part of an account's history.
//!
//! An in-place restore builds a new mailbox and logs the old one's deletion with
//! what replaced it: the new mailbox, the full backup it was built from, the
//! mailbox and change up to which that full's records were replayed, and the new
//! mailbox's change when it went live. A later restore to a point after that
//! deletion must not replay the old mailbox's records past it (they describe a
//! state the restore threw away): it rebuilds the restore's source instead (the
//! same full, the same records, so the same state), then goes on with the new
//! mailbox's own records, whose change numbers continue that state's. A restore
//! may follow several such restores; each source is rebuilt the same way (an
//! earlier restore inside a source is followed in turn). When a source cannot be
//! rebuilt (its full deleted, its records gone), the restore fails and says so:
//! it never builds a state the account never had.

use super::{
    AccountRestoreReport, Collector, RestoreOptions, RestoreRun, choose_full, collect_records,
};
use crate::catalog::{Catalog, EntryState};
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::run::Source;
use crate::session::{AccountMeta, Session};
use crate::target::Target;
use mv_redo::Record;
use mv_types::MailboxId;

/// Who is being restored.
pub(super) struct Account<'a> {
    pub zimbra_id: &'a str,
    pub email: &'a str,
}

/// Where a restore starts and what it replays: the full, its snapshot's meta,
/// the records (named by the snapshot's mailbox id), and the collector of the
/// last mailbox of the account's history (what an in-place restore to the latest
/// point catches up from).
pub(super) struct Plan<'s> {
    pub full: &'s Session,
    pub meta: AccountMeta,
    pub records: Vec<Record>,
    pub collector: Collector,
}

/// Plans the restore of `account` with `opts`. `stop`: rebuilding a source, the
/// mailbox and change its records end at.
#[allow(clippy::too_many_arguments)]
pub(super) fn plan<'s>(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    catalog: &Catalog,
    sessions: &[&'s Session],
    account: &Account,
    opts: &RestoreOptions,
    stop: Option<(MailboxId, u64)>,
    report: &mut AccountRestoreReport,
) -> Result<Plan<'s>> {
    let (full, meta) = choose_full(target, sessions, account.zimbra_id, account.email, opts)?;
    // A damaged session after the full: its redo logs cannot be read.
    if !opts.full_only {
        for e in catalog.entries.iter().filter(|e| e.label > full.label) {
            if let EntryState::Invalid(reason) = &e.state {
                if !opts.ignore_redo_errors {
                    return Err(BackupError::Invalid(format!(
                        "{reason}; restore with --ignoreRedoErrors to skip its redo logs, \
                         or -rf to restore the full {} only",
                        full.label
                    )));
                }
                report
                    .skipped
                    .push(format!("{reason}; its redo logs were skipped"));
            }
        }
    }
    let mut collector = collector_for(MailboxId(meta.mailbox_id), meta.change, opts, stop);
    let mut paths = Vec::new();
    if !opts.full_only {
        paths = collect_records(
            run,
            source,
            target,
            sessions,
            full,
            &meta,
            opts,
            &mut collector,
            report,
        )?;
    }
    let records = collector.take();
    let mut plan = Plan {
        full,
        meta,
        records,
        collector,
    };
    while let Some(d) = plan.collector.replaced.take() {
        let (Some(by), Some(label), Some(to_mailbox), Some(to_change), Some(at)) = (
            d.replaced_by,
            d.restored_from.as_deref(),
            d.restored_to_mailbox,
            d.restored_to_change,
            d.restored_change,
        ) else {
            return Err(BackupError::Invalid(format!(
                "{}: the redo log's record of an in-place restore does not name its source",
                account.email
            )));
        };
        let unusable = |why: String| {
            BackupError::Invalid(format!(
                "{}: the account was restored in place from {label} (mailbox {by}); a restore \
                 to a point after that rebuilds that restore first, and {why}: choose a \
                 restore point before it, or restore from a full taken since (-lb)",
                account.email
            ))
        };
        let label: Label = label
            .parse()
            .map_err(|_| unusable(format!("{label:?} is not a backup label")))?;
        let source_opts = RestoreOptions {
            label: Some(label),
            full_only: false,
            backup_redo_only: false,
            to_time: None,
            to_incr_label: None,
            to_redo_seq: None,
            ignore_redo_errors: opts.ignore_redo_errors,
            skip_deletes: d.skip_deletes == Some(true),
            new_account_prefix: opts.new_account_prefix.clone(),
            restore_entry: opts.restore_entry,
            restore_points: 0,
            all_accounts: false,
            skip_deleted: false,
        };
        let mut scratch = AccountRestoreReport::default();
        let base = plan_source(
            run,
            source,
            target,
            catalog,
            sessions,
            account,
            &source_opts,
            (MailboxId(to_mailbox), to_change),
            &mut scratch,
        )
        .map_err(|e| unusable(e.to_string()))?;
        if base.collector.from != MailboxId(to_mailbox) || base.collector.after_change != to_change
        {
            return Err(unusable(format!(
                "the records it replayed (mailbox {to_mailbox} up to change {to_change}) are \
                 no longer all in the target and this server's archive"
            )));
        }
        report.notes.push(format!(
            "restored in place from {label} earlier: rebuilt from there, then mailbox {by}'s \
             own changes"
        ));
        // The replacement's own records, up to the restore point.
        let mut next = collector_for(MailboxId(by), at, opts, stop);
        next.last_seq = plan.collector.last_seq;
        next.read(&paths, report)?;
        let mut more = next.take();
        for r in &mut more {
            if r.mailbox == next.from {
                r.mailbox = MailboxId(base.meta.mailbox_id);
            }
        }
        let mut records = base.records;
        records.append(&mut more);
        plan = Plan {
            full: base.full,
            meta: base.meta,
            records,
            collector: next,
        };
    }
    Ok(plan)
}

/// [`plan`] for an in-place restore's source, ending at `stop`.
#[allow(clippy::too_many_arguments)]
fn plan_source<'s>(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    catalog: &Catalog,
    sessions: &[&'s Session],
    account: &Account,
    opts: &RestoreOptions,
    stop: (MailboxId, u64),
    report: &mut AccountRestoreReport,
) -> Result<Plan<'s>> {
    plan(
        run,
        source,
        target,
        catalog,
        sessions,
        account,
        opts,
        Some(stop),
        report,
    )
}

fn collector_for(
    from: MailboxId,
    after: u64,
    opts: &RestoreOptions,
    stop: Option<(MailboxId, u64)>,
) -> Collector {
    let mut c = Collector::new(from, after, opts);
    c.stop_at = stop.filter(|(m, _)| *m == from).map(|(_, change)| change);
    c
}
