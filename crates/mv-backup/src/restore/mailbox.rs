//! Steps 3 and 4: the mailbox built from the snapshot and the replayed records,
//! and made the account's.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn build_mailbox(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    full: &Session,
    dir: &str,
    meta: &AccountMeta,
    account: &Account,
    records: Vec<Record>,
    with_blobs: bool,
    written: &mut Vec<PathBuf>,
    report: &mut AccountRestoreReport,
) -> Result<u64> {
    let store = source.store;
    let to = account.mailbox_id;
    let db_rel = full.object_path(&format!("{dir}/db/mailbox.sqlite"));
    let bytes = target.get(&db_rel)?;
    let mbox = store.mailbox(to);
    let final_path = mbox.db_path().to_path_buf();
    if final_path.exists() {
        return Err(BackupError::Invalid(format!(
            "mailbox {to} already has a database {}",
            final_path.display()
        )));
    }
    if let Some(parent) = final_path.parent() {
        mv_home::durable::create_dir_all_durable(parent)
            .map_err(BackupError::io(parent.display()))?;
    }
    let tmp = final_path.with_extension("sqlite.restoring");
    written.push(tmp.clone());
    std::fs::write(&tmp, &bytes).map_err(BackupError::io(tmp.display()))?;
    // A file of our own under a temporary name, made durable with the rest of
    // the mailbox before anything points at it (go_live): adjusted without a
    // journal or fsyncs of its own (a failure removes it whole).
    let refs = {
        let file = mv_store::SnapshotFile::open(&tmp)?;
        file.rebind(to, &account.id, &account.email)?;
        // A mailbox rebuilt only to be read writes no blobs: no need to list them.
        if with_blobs {
            file.blob_refs()?
        } else {
            Vec::new()
        }
    };
    // Blobs: each content this run has not written yet is written once, from the
    // pool, by several threads (reading packs and writing files overlap); every
    // other copy is a link to it.
    let mut fresh: Vec<(Digest, PathBuf)> = Vec::new();
    let mut copies: Vec<(Digest, PathBuf)> = Vec::new();
    let mut fresh_digests = std::collections::HashSet::new();
    for b in refs {
        let digest = b.digest;
        let path = store.blobs().blob_path(b.volume, to, b.item, b.revision);
        written.push(path.clone());
        if run.restored.contains_key(&digest) || !fresh_digests.insert(digest) {
            copies.push((digest, path));
        } else {
            fresh.push((digest, path));
        }
    }
    let blob_bytes = run.write_blobs(source, target, &fresh)?;
    for (digest, path) in &copies {
        run.place_blob(source, target, digest, path)?;
    }
    written.push(final_path.clone());
    std::fs::rename(&tmp, &final_path).map_err(BackupError::io(final_path.display()))?;
    report.applied += replay_into(source, records, MailboxId(meta.mailbox_id), to)?;
    // Where checkpoints fsync file by file, the sync before going live must
    // cover this database and the log its replay wrote (not synced by itself).
    let mut wal = final_path.clone().into_os_string();
    wal.push("-wal");
    store.blobs().note_written(&final_path);
    store.blobs().note_written(std::path::Path::new(&wal));
    Ok(bytes.len() as u64 + blob_bytes)
}

/// Replays the original mailbox's records into mailbox `to`.
pub(super) fn replay_into(
    source: &Source,
    mut records: Vec<Record>,
    from: MailboxId,
    to: MailboxId,
) -> Result<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    for r in &mut records {
        if r.mailbox == from {
            r.mailbox = to;
        }
    }
    let r = source.store.replay(records.iter(), &|m| m == to)?;
    Ok(r.applied)
}

/// Step 4: makes the built mailbox the account's.
#[allow(clippy::too_many_arguments)]
/// The rebuilt mailbox is durable before anything points at it: the caller has
/// synced it.
pub(super) fn go_live(
    source: &Source,
    dest: &Destination,
    entry: &mv_directory::ldif::Entry,
    collector: &mut Collector,
    report: &mut AccountRestoreReport,
) -> Result<()> {
    let store = source.store;
    let opts = collector.opts.clone();
    let replace_entry = |id: MailboxId| -> Result<()> {
        source.dir().import_account_entry(
            entry,
            &AccountImport {
                mailbox_id: MailboxIdChoice::Given(id),
                replace: true,
                ..AccountImport::original()
            },
        )?;
        Ok(())
    };
    match dest {
        Destination::NewAccount(_)
        | Destination::Recreate { created: true, .. }
        | Destination::Scratch(_) => Ok(()),
        Destination::Recreate { account, .. } => {
            if opts.restore_entry {
                replace_entry(account.mailbox_id)
            } else {
                source
                    .dir()
                    .set_mailbox_id(&account.id, account.mailbox_id)?;
                Ok(())
            }
        }
        Destination::Replace { account, old } => {
            let new = account.mailbox_id;
            report.replaced_mailbox_id = Some(old.0);
            store.retire_mailbox(*old, || -> Result<((), mv_redo::ops::DeleteMailbox)> {
                if opts.to_latest() {
                    // Nothing can commit to the old mailbox now: what it got since
                    // the records were read is in the archive after this rollover.
                    store.redo().rollover()?;
                    let archive = store.home().redo_archive_dir();
                    let files: Vec<PathBuf> = mv_redo::list_archive(&archive)?
                        .into_iter()
                        .filter(|l| collector.last_seq.is_none_or(|s| l.sequence > s))
                        .map(|l| l.path)
                        .collect();
                    collector.read(&files, report)?;
                    let from = collector.from;
                    report.applied += replay_into(source, collector.take(), from, new)?;
                    store.checkpoint()?;
                }
                // What replaced the old mailbox, for the redo log: a later
                // point-in-time restore rebuilds this state from it.
                let restored_change = store.mailbox_point(new)?.map_or(0, |p| p.change);
                let deleted = mv_redo::ops::DeleteMailbox {
                    account_id: account.id.clone(),
                    replaced_by: Some(new.0),
                    restored_from: Some(report.full_label.clone()),
                    restored_to_mailbox: Some(collector.from.0),
                    restored_to_change: Some(collector.after_change),
                    restored_change: Some(restored_change),
                    skip_deletes: Some(opts.skip_deletes),
                };
                if opts.restore_entry {
                    replace_entry(new)?;
                } else {
                    source.dir().set_mailbox_id(&account.id, new)?;
                }
                Ok(((), deleted))
            })
        }
    }
}
