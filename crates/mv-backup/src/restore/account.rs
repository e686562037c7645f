//! One account of a restore, up to its mailbox built where nothing points at it:
//! the account resolved (zimbraId, address), the full and the records planned
//! ([`history`]), what existed at the restore point (`-a all`), and where the
//! mailbox goes ([`Destination`]).

use super::*;

pub(super) fn build_with_catalog(
    run: &mut RestoreRun,
    catalog: &Catalog,
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &RestoreOptions,
    scratch: bool,
) -> Result<Built> {
    if let Some(l) = opts.label
        && let Some(e) = catalog.get(&l)
        && let crate::catalog::EntryState::Invalid(reason) = &e.state
    {
        return Err(BackupError::Invalid(format!(
            "{reason}; the session {l} cannot be restored from: choose another full with -lb"
        )));
    }
    let sessions: Vec<&Session> = catalog.sessions().collect();
    // The account is its zimbraId: a current address or zimbraId (the
    // directory's), else any address the target recorded for it (a former name,
    // or a deleted account), or its zimbraId (a deleted account whose address
    // another account has now). Given a zimbraId, the account is named by its
    // address (the live one, else the newest the target recorded): a new account
    // of `-ca -pre` is PREFIX+address.
    let current = source.dir().find_account(email)?;
    let (zimbra_id, email) = match &current {
        Some(a) if a.id == email => (a.id.clone(), a.email.clone()),
        Some(a) => (a.id.clone(), email.to_string()),
        None => sessions
            .iter()
            .rev()
            .find_map(|s| {
                s.accounts
                    .iter()
                    .find(|a| a.email.eq_ignore_ascii_case(email) || a.zimbra_id == email)
            })
            .map(|a| (a.zimbra_id.clone(), a.email.clone()))
            .ok_or_else(|| BackupError::Invalid(format!("{email}: no backup of this account")))?,
    };
    let email = email.as_str();
    // The live account, when restoring in place (found by its id: it may have been
    // renamed since the address given).
    let live = if opts.new_account_prefix.is_none() && !scratch {
        match current {
            Some(a) => Some(a),
            None => source.dir().find_account(&zimbra_id)?,
        }
    } else {
        None
    };
    let dir = account_dir(&zimbra_id);
    let mut report = AccountRestoreReport {
        email: email.to_string(),
        ..Default::default()
    };
    // 1. and 2.: the full and the redo records (read before anything is written),
    // through the in-place restores the restore point lies after.
    let history::Plan {
        full,
        meta,
        records,
        collector,
    } = history::plan(
        run,
        source,
        target,
        catalog,
        &sessions,
        &history::Account {
            zimbra_id: &zimbra_id,
            email,
        },
        opts,
        None,
        &mut report,
    )?;
    report.full_label = full.label.to_string();
    // The address the account had at the restore point: the full's, or the last
    // rename replayed after it.
    let at_point = records
        .iter()
        .rev()
        .find_map(|r| match &r.op {
            Op::RenameMailbox(m) => Some(m.new_email.clone()),
            _ => None,
        })
        .or_else(|| full.account(&zimbra_id).map(|a| a.email.clone()))
        .unwrap_or_else(|| email.to_string());
    if let Some(when) = collector.deleted_at
        && opts.all_accounts
        && opts.skip_deleted
    {
        let mut why = format!(
            "{at_point}: skipped, deleted {} (before the restore point); restore it with \
             -a {at_point} -ra to recreate it, or -a {at_point} -ca -pre PREFIX",
            when.display_local()
        );
        if live.is_some() {
            why.push_str(
                "; its directory entry is back (from an older directory dump): remove it \
                 with zmprov da if it should stay deleted",
            );
        }
        return Err(BackupError::NotAtPoint(why));
    }
    // With `-a all`, a new account or a deleted one's entry brought back takes
    // the address of the restore point; a live account keeps its own, and an
    // address given by the administrator is used as given.
    let email = if live.is_some() || !opts.all_accounts {
        if !at_point.eq_ignore_ascii_case(email) {
            report
                .notes
                .push(format!("{email} was {at_point} at the restore point"));
        }
        email
    } else {
        at_point.as_str()
    };
    // 3. Where it goes, and the directory entry of a new account.
    let ldif_path = full.object_path(&format!("{dir}/ldap.ldif"));
    let entry = {
        let ldif = target.get(&ldif_path)?;
        let entries = mv_directory::ldif::parse(&ldif).map_err(|e| {
            BackupError::corrupt(format!("{}/{ldif_path}", target.url()), e.to_string())
        })?;
        entries
            .into_iter()
            .next()
            .ok_or_else(|| BackupError::corrupt(&ldif_path, "no entry"))?
    };
    let dest = if scratch {
        let mailbox_id = source.dir().allocate_mailbox_id()?;
        // Marked before its first file: a process killed while it exists leaves
        // a mark the store's next open sweeps.
        source.store.mark_scratch(mailbox_id)?;
        Destination::Scratch(Account {
            id: zimbra_id.clone(),
            email: email.to_string(),
            aliases: Vec::new(),
            status: Default::default(),
            cos_id: String::new(),
            mailbox_id,
            created: UtcMillis(0),
            attrs: Default::default(),
        })
    } else {
        destination(source, email, opts, live, &entry)?
    };
    let to = dest.account().mailbox_id;
    report.restored_as = dest.account().email.clone();
    report.mailbox_id = to.0;
    let mut written: Vec<PathBuf> = Vec::new();
    let replayed = if scratch {
        super::point::replayed(&records)
    } else {
        Vec::new()
    };
    let result = build_mailbox(
        run,
        source,
        target,
        full,
        &dir,
        &meta,
        dest.account(),
        records,
        !scratch,
        &mut written,
        &mut report,
    );
    let built = Built {
        dest,
        entry,
        collector,
        report,
        written,
        bytes: 0,
        replayed,
    };
    match result {
        Ok(bytes) => Ok(Built { bytes, ..built }),
        Err(e) => {
            built.discard(source);
            Err(e)
        }
    }
}

pub(super) fn choose_full<'s>(
    target: &dyn Target,
    sessions: &[&'s Session],
    zimbra_id: &str,
    email: &str,
    opts: &RestoreOptions,
) -> Result<(&'s Session, AccountMeta)> {
    for s in sessions.iter().rev() {
        if s.kind() != SessionKind::Full {
            continue;
        }
        if opts.label.is_some_and(|l| l != s.label) {
            continue;
        }
        let Some(entry) = s.account(zimbra_id) else {
            continue;
        };
        if entry.state != AccountState::Completed {
            if opts.label.is_some() {
                return Err(BackupError::Invalid(format!(
                    "{email}: not completed in {}",
                    s.label
                )));
            }
            continue;
        }
        let meta = s.account_meta(target, zimbra_id)?;
        // Without -lb: the newest full before every restore point given.
        if opts.label.is_none()
            && (opts.to_time.is_some_and(|t| meta.snapshot_at > t)
                || opts.to_redo_seq.is_some_and(|n| meta.redo_seq > n)
                || opts.to_incr_label.is_some_and(|l| s.label > l))
        {
            continue;
        }
        return Ok((s, meta));
    }
    if opts.all_accounts {
        return Err(BackupError::NotAtPoint(match opts.label {
            Some(l) => format!("{email}: skipped, not in the full {l}"),
            None => format!(
                "{email}: skipped, no full backup holds it at or before the restore point \
                 (it was created after the point, or after the last full before it)"
            ),
        }));
    }
    Err(BackupError::Invalid(match opts.label {
        Some(l) => format!("{email}: {l} is not a full backup holding this account"),
        None => format!("{email}: no full backup before the restore point"),
    }))
}

/// Decides where the restored mailbox goes and creates the directory entry a new
/// account needs.
fn destination(
    source: &Source,
    email: &str,
    opts: &RestoreOptions,
    live: Option<Account>,
    entry: &mv_directory::ldif::Entry,
) -> Result<Destination> {
    let store = source.store;
    // A mailbox id is free for a rebuilt mailbox if no database was ever made for
    // it and no creation waits for its first use (an unknown answer: not free).
    let never_used = |id: MailboxId| {
        let m = store.mailbox(id);
        !m.db_path().exists() && !m.is_unopened().unwrap_or(true)
    };
    let dir = source.dir();
    if let Some(prefix) = &opts.new_account_prefix {
        let imported = dir.import_account_entry(
            entry,
            &AccountImport::new_account(&format!("{prefix}{email}")),
        )?;
        return Ok(Destination::NewAccount(imported.account));
    }
    match live {
        Some(account) => {
            let mbox = store.mailbox(account.mailbox_id);
            let created = mbox.db_path().exists() || mbox.is_unopened()?;
            let live_mailbox = created && mbox.info()?.is_some_and(|i| !i.deleted);
            if live_mailbox {
                let old = account.mailbox_id;
                let mut account = account;
                account.mailbox_id = dir.allocate_mailbox_id()?;
                return Ok(Destination::Replace { account, old });
            }
            let mut account = account;
            if !never_used(account.mailbox_id) {
                // A deleted mailbox's id has a history of its own: start a new one.
                account.mailbox_id = dir.allocate_mailbox_id()?;
            }
            Ok(Destination::Recreate {
                account,
                created: false,
            })
        }
        None if opts.restore_entry || opts.all_accounts => {
            let original = mv_directory::entry_mailbox_id(entry);
            let choice = match original {
                Some(id) if never_used(id) && dir.account_by_mailbox_id(id)?.is_none() => {
                    MailboxIdChoice::Given(id)
                }
                _ => MailboxIdChoice::New,
            };
            let imported = dir.import_account_entry(
                entry,
                &AccountImport {
                    // `-a all`: the address at the restore point (renamed since
                    // the full); else the entry's.
                    email: opts.all_accounts.then(|| email.to_string()),
                    mailbox_id: choice,
                    ..AccountImport::original()
                },
            )?;
            Ok(Destination::Recreate {
                account: imported.account,
                created: true,
            })
        }
        None => Err(BackupError::Invalid(format!(
            "{email}: the account is not in the directory; restore it with -ra to recreate \
             its entry too, -ca -pre PREFIX to restore it as a new account, or run \
             zmrestoreldap first when rebuilding a server"
        ))),
    }
}
