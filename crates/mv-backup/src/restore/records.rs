//! The redo records a restore replays into the mailbox it rebuilds: those of
//! the source mailbox after its snapshot, up to the restore point, read from
//! the target's logs and the home's archive.
//!
//! One rule for a log a session lists: the copy used is one whose size and
//! checksum match what the session recorded — the target's if intact, else the
//! home's archived copy of the same file (not with `-br`), and the report says
//! so. A target copy that is missing and one that is damaged are handled alike;
//! with no intact copy anywhere the log counts as missing and the restore fails
//! naming it (with `--ignoreRedoErrors`: what is readable of a damaged copy is
//! replayed, and nothing after the damage or the hole, in the live log either).

use super::*;

/// Gathers the records of one mailbox to replay into the restored one.
pub(super) struct Collector {
    pub(super) from: MailboxId,
    /// Records with a change at or below this are in the snapshot.
    pub(super) after_change: u64,
    pub(super) opts: RestoreOptions,
    /// Deletes left out so far (`--skipDeletes`): later changes move down by it so
    /// they stay consecutive.
    pub(super) renumber: u64,
    pub(super) skipped_deletes: u64,
    /// The time of the last record kept.
    pub(super) last_time: Option<UtcMillis>,
    /// The highest sequence read so far.
    pub(super) last_seq: Option<u64>,
    /// The restore point or the mailbox's deletion was reached.
    pub(super) done: bool,
    /// Content records of the transaction being read: kept only if a kept record
    /// of the same transaction uses them (every CreateMessage is logged with its
    /// PutBlob in one commit).
    pub(super) txn: Option<TxnId>,
    pub(super) blobs: Vec<Record>,
    pub(super) out: Vec<Record>,
    /// The mailbox's history ended in an in-place restore that replaced it: the
    /// deletion record, which names the replacement and the restore's source.
    pub(super) replaced: Option<mv_redo::ops::DeleteMailbox>,
    /// Rebuilding an in-place restore's source: its records up to this change.
    pub(super) stop_at: Option<u64>,
    /// The account was deleted before the restore point (its mailbox's history
    /// ended in a deletion no restore made), at this time.
    pub(super) deleted_at: Option<UtcMillis>,
}

impl Collector {
    pub(super) fn new(from: MailboxId, after_change: u64, opts: &RestoreOptions) -> Collector {
        Collector {
            from,
            after_change,
            opts: opts.clone(),
            renumber: 0,
            skipped_deletes: 0,
            last_time: None,
            last_seq: None,
            done: false,
            txn: None,
            blobs: Vec::new(),
            out: Vec::new(),
            replaced: None,
            stop_at: None,
            deleted_at: None,
        }
    }

    pub(super) fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.out)
    }

    /// Reads files in order (already cut to the restore point by sequence).
    /// Errors end the read with `--ignoreRedoErrors` (and are reported).
    pub(super) fn read(
        &mut self,
        files: &[PathBuf],
        report: &mut AccountRestoreReport,
    ) -> Result<()> {
        for item in mv_redo::read_files(files) {
            if self.done {
                break;
            }
            let l = match item {
                Ok(l) => l,
                Err(e) if self.opts.ignore_redo_errors => {
                    report.skipped.push(e.to_string());
                    self.done = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            self.last_seq = Some(self.last_seq.map_or(l.sequence, |s| s.max(l.sequence)));
            self.push(l.record);
        }
        Ok(())
    }

    pub(super) fn push(&mut self, mut r: Record) {
        if self.opts.to_time.is_some_and(|t| r.timestamp > t) {
            self.done = true;
            return;
        }
        if self.txn != Some(r.txn) {
            self.txn = Some(r.txn);
            self.blobs.clear();
        }
        if r.mailbox.0 == 0 {
            if matches!(r.op, Op::PutBlob(_)) {
                self.blobs.push(r);
            }
            return;
        }
        if r.mailbox != self.from || r.change.0 <= self.after_change {
            return;
        }
        if self.stop_at.is_some_and(|c| r.change.0 > c) {
            self.done = true;
            return;
        }
        self.after_change = r.change.0;
        if let Op::DeleteMailbox(d) = &r.op {
            // The mailbox's history ends: what is restored is its state just before,
            // unless an in-place restore replaced it (history goes on from there).
            if d.replaced_by.is_some() {
                self.replaced = Some(d.clone());
            } else {
                self.deleted_at = Some(r.timestamp);
            }
            self.done = true;
            return;
        }
        if self.opts.skip_deletes && r.op.is_delete() {
            self.skipped_deletes += 1;
            self.renumber += 1;
            return;
        }
        if let Some(d) = r.op.referenced_digest()
            && let Some(i) = self
                .blobs
                .iter()
                .position(|b| matches!(&b.op, Op::PutBlob(p) if p.digest == d))
        {
            let blob = self.blobs.swap_remove(i);
            self.out.push(blob);
        }
        // Changes stay consecutive when deletes are left out.
        r.change = ChangeNumber(r.change.0 - self.renumber);
        self.last_time = Some(r.timestamp);
        self.out.push(r);
    }

    /// With several restore points, the time actually used.
    pub(super) fn note_time(&self) -> Option<UtcMillis> {
        let opts = &self.opts;
        let points = [
            opts.to_time.is_some(),
            opts.to_redo_seq.is_some(),
            opts.to_incr_label.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
        .max(opts.restore_points);
        (points > 1).then(|| {
            opts.to_time
                .into_iter()
                .chain(self.last_time)
                .min()
                .unwrap_or(UtcMillis(0))
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn collect_records(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    sessions: &[&Session],
    full: &Session,
    meta: &AccountMeta,
    opts: &RestoreOptions,
    collector: &mut Collector,
    report: &mut AccountRestoreReport,
) -> Result<Vec<PathBuf>> {
    // sequence → file, first source wins.
    let mut files: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut incr_last: BTreeMap<Label, u64> = BTreeMap::new();
    // Redo logs a session lists with no intact copy: where, and what is wrong.
    let mut missing: Vec<(String, String)> = Vec::new();
    // Their sequences: the home's archive must not stand in for them unchecked.
    let mut unusable: std::collections::BTreeSet<u64> = Default::default();
    let archive = source.store.home().redo_archive_dir();
    // Downloaded copies (object-store targets), kept until the logs are read.
    let mut fetched = Vec::new();
    // Incrementals hold redo logs; so do auto-grouped fulls, the full itself
    // included (logs archived after its snapshots).
    for s in sessions.iter().filter(|s| s.label >= full.label) {
        for l in &s.redo_logs {
            if l.seq < meta.redo_seq || files.contains_key(&l.seq) {
                continue;
            }
            let r = rel(&s.label, &format!("redologs/{}", l.name));
            let local = crate::target::fetch_local(target, &r)?;
            let state = match &local {
                None => "missing",
                Some(f) if run.intact_log(f.path(), l) => "intact",
                Some(_) => "damaged (its size or checksum does not match session.xml)",
            };
            if state == "intact" {
                let local = local.expect("intact");
                files.insert(l.seq, local.path().to_path_buf());
                fetched.push(local);
            } else {
                let home_copy = archive.join(&l.name);
                if !opts.backup_redo_only && run.intact_log(&home_copy, l) {
                    report.notes.push(format!(
                        "redo log {} (sequence {}) is {state} in the target ({}/{r}): used the \
                         intact copy in the home's archive, {}",
                        l.name,
                        l.seq,
                        target.url(),
                        home_copy.display()
                    ));
                    files.insert(l.seq, home_copy);
                } else if let Some(local) = local.filter(|_| opts.ignore_redo_errors) {
                    // --ignoreRedoErrors: what is readable of the damaged copy is
                    // replayed, up to the damage (reported in `skipped`).
                    files.insert(l.seq, local.path().to_path_buf());
                    fetched.push(local);
                } else {
                    let why = if opts.backup_redo_only {
                        format!(
                            "{state} in the backup target (-br: the home's archive is not read)"
                        )
                    } else {
                        format!(
                            "{state} in the backup target, and the home's archive holds no intact copy"
                        )
                    };
                    missing.push((format!("{}/{r}", target.url()), why));
                    unusable.insert(l.seq);
                    continue;
                }
            }
            let e = incr_last.entry(s.label).or_insert(l.seq);
            *e = (*e).max(l.seq);
        }
        // No new log since the session before (the current log was empty): it holds
        // what that one held, or the full alone.
        let held = files
            .keys()
            .next_back()
            .map_or(meta.redo_seq.saturating_sub(1), |q| *q);
        incr_last.entry(s.label).or_insert(held);
    }
    // Shipped logs (live DR, `crate::live`): whole ones after the sessions'...
    let live = crate::live::list(target)?;
    let wanted = |seq: &u64, files: &BTreeMap<u64, PathBuf>| {
        *seq >= meta.redo_seq && !files.contains_key(seq) && !unusable.contains(seq)
    };
    for (seq, l) in &live.logs {
        if wanted(seq, &files)
            && let Some(local) = crate::target::fetch_local(target, &l.path)?
        {
            files.insert(*seq, local.path().to_path_buf());
            fetched.push(local);
        }
    }
    if !opts.backup_redo_only {
        // Everything committed before the restore run began goes to closed files
        // (once per run: later accounts read the same archive).
        if !run.rolled_over {
            source.store.redo().rollover()?;
            run.rolled_over = true;
        }
        if archive.is_dir() {
            for l in mv_redo::list_archive(&archive)? {
                if !unusable.contains(&l.sequence) {
                    files.entry(l.sequence).or_insert(l.path);
                }
            }
        }
    }
    // ...and the segments of a sequence nothing else holds whole: the log that
    // was open when shipping last ran, up to its last shipped record.
    for (seq, segs) in &live.segments {
        if !wanted(seq, &files) {
            continue;
        }
        if !run.assembled.contains_key(seq) {
            match crate::live::assemble(target, segs) {
                Ok(a) => {
                    run.assembled.insert(*seq, a);
                }
                Err(e) if opts.ignore_redo_errors => {
                    report.skipped.push(e.to_string());
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(a) = run.assembled.get(seq) {
            files.insert(*seq, a.file.path().to_path_buf());
        }
    }
    files.retain(|s, _| *s >= meta.redo_seq);
    // The chain from the snapshot's sequence.
    // The snapshot's own log holds the records right after it: it must be there too
    // (unless there is nothing to replay at all).
    let seqs: Vec<u64> = files.keys().copied().collect();
    let chain = match seqs.first() {
        Some(&first) if first > meta.redo_seq => Err(mv_redo::RedoError::Gap {
            first_missing: meta.redo_seq,
            last_missing: first - 1,
        }),
        _ => mv_redo::check_chain(&seqs),
    };
    // A listed log with no intact copy after the last file found is a hole too
    // (the chain of what was found alone can look whole).
    let first_unusable = unusable
        .range(meta.redo_seq..)
        .find(|u| !files.contains_key(u));
    let chain = chain.and_then(|()| match first_unusable {
        Some(&u) => Err(mv_redo::RedoError::Gap {
            first_missing: u,
            last_missing: files
                .range(u..)
                .next()
                .map_or_else(|| *unusable.last().unwrap_or(&u), |(k, _)| k - 1),
        }),
        _ => Ok(()),
    });
    // Restore points: the earliest wins.
    let mut seq_limit = opts.to_redo_seq;
    if let Some(l) = opts.to_incr_label {
        let last = incr_last.get(&l).copied().ok_or_else(|| {
            BackupError::Invalid(format!("{l}: not an incremental after {}", full.label))
        })?;
        seq_limit = Some(seq_limit.map_or(last, |s| s.min(last)));
    }
    let missing_error = |e: mv_redo::RedoError| -> BackupError {
        match missing.first() {
            Some((first, why)) => BackupError::Corrupt {
                path: first.clone(),
                reason: format!(
                    "{why}; {e} (restore with --ignoreRedoErrors to skip the missing range)"
                ),
            },
            None => e.into(),
        }
    };
    // A hole that only a restore point by time may lie before: replay up to it,
    // and fail only if the point was not reached there.
    let mut hole_after = None;
    // A hole skipped with --ignoreRedoErrors: nothing after it is replayed,
    // not even what an in-place restore reads from the live log at the end.
    let mut stop_after_read = false;
    if let Err(e) = chain {
        let first_missing = match &e {
            mv_redo::RedoError::Gap { first_missing, .. } => Some(*first_missing),
            _ => None,
        };
        match first_missing {
            // Past the restore point (a redo sequence or an incremental's end):
            // nothing there is replayed anyway.
            Some(g) if seq_limit.is_some_and(|l| l < g) => files.retain(|s, _| *s < g),
            Some(g) if opts.to_time.is_some() && !opts.ignore_redo_errors => {
                files.retain(|s, _| *s < g);
                hole_after = Some(e);
            }
            _ if !opts.ignore_redo_errors => return Err(missing_error(e)),
            _ => {
                if let mv_redo::RedoError::Gap {
                    first_missing,
                    last_missing,
                } = e
                {
                    report.skipped.push(format!(
                        "redo log sequences {first_missing} through {last_missing} are \
                         missing; records from sequence {first_missing} on were not replayed"
                    ));
                    files.retain(|s, _| *s < first_missing);
                    stop_after_read = true;
                }
            }
        }
    }
    let paths: Vec<PathBuf> = files
        .iter()
        .filter(|(s, _)| seq_limit.is_none_or(|l| **s <= l))
        .map(|(_, p)| p.clone())
        .collect();
    report.redo_files = paths.len() as u64;
    collector.read(&paths, report)?;
    if stop_after_read {
        collector.done = true;
    }
    if let Some(e) = hole_after
        && !collector.done
    {
        return Err(missing_error(e));
    }
    // Nothing after the newest sequence looked at (even when none held a record).
    if let Some(&s) = files.keys().next_back() {
        collector.last_seq = Some(collector.last_seq.map_or(s, |l| l.max(s)));
    }
    Ok(paths)
}
