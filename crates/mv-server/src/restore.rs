//! `zmrestore`: the request, its validation and its execution. The logic is in
//! `mv_backup::restore`; this module resolves the target, the accounts (`all`: every
//! account of the target's sessions) and the restore points, and runs the accounts
//! one after the other. The server runs the request synchronously on a blocking
//! task (the admin API's worker pool), so it keeps serving the other accounts.

use crate::{Service, ServiceError};
use mv_backup::{AccountRestoreReport, Catalog, Label, RestoreOptions};
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};

/// `zmrestore`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// Addresses, or `all`.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub target: Option<String>,
    /// `-lb`: the full to start from.
    #[serde(default)]
    pub label: Option<String>,
    /// `-rf`: the full only.
    #[serde(default)]
    pub full_only: bool,
    /// `-br`: only the redo logs held in the backup target.
    #[serde(default)]
    pub backup_redo_only: bool,
    /// `-restoreToTime` (repeatable; local time, any of the nine formats).
    #[serde(default)]
    pub to_time: Vec<String>,
    #[serde(default)]
    pub to_incr_label: Vec<String>,
    #[serde(default)]
    pub to_redo_seq: Vec<u64>,
    #[serde(default)]
    pub ignore_redo_errors: bool,
    #[serde(default)]
    pub skip_deletes: bool,
    /// `-skipDeletedAccounts`: with `all`, leave out accounts no longer in the directory.
    #[serde(default)]
    pub skip_deleted_accounts: bool,
    /// `-ca`: restore into a new account (needs `prefix`).
    #[serde(default)]
    pub create_account: bool,
    /// `-pre PREFIX`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `-ra`: recreate the account's directory entry.
    #[serde(default)]
    pub restore_account: bool,
    /// `-c`: go on past a failed account.
    #[serde(default)]
    pub continue_on_error: bool,
    /// `-sys`: also restore the global and server configuration and the local config.
    #[serde(default)]
    pub sys: bool,
}

/// One account that could not be restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFailure {
    pub email: String,
    pub error: String,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RestoreReport {
    pub target: String,
    pub accounts: Vec<AccountRestoreReport>,
    pub failures: Vec<RestoreFailure>,
    pub notes: Vec<String>,
    /// `-sys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<mv_backup::SystemRestoreReport>,
    /// `-a all`: accounts of the target that are no longer in the directory (deleted
    /// before the restore point), each with why and how to bring it back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_accounts: Vec<String>,
    /// Stopped by `zmbackupabort -r`: these accounts were left untouched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_restored: Vec<String>,
}

impl RestoreReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Restore options from a request (validated: usage errors are `BadRequest`).
pub fn options(r: &RestoreRequest) -> Result<RestoreOptions, ServiceError> {
    let bad = |m: String| Err(ServiceError::BadRequest(m));
    if r.accounts.is_empty() && !r.sys {
        return bad("-a ADDR... or -a all is required (or -sys for the system tables)".into());
    }
    if r.create_account && r.restore_account {
        return bad("-ca and -ra exclude each other".into());
    }
    match (&r.prefix, r.create_account) {
        (None, true) => return bad("-ca needs -pre PREFIX (the new account is PREFIX+name)".into()),
        (Some(p), true) if p.is_empty() => return bad("-pre PREFIX must not be empty".into()),
        (Some(_), false) => return bad("-pre goes with -ca".into()),
        _ => {}
    }
    if r.full_only && r.backup_redo_only {
        return bad("-rf and -br exclude each other".into());
    }
    let mut times = Vec::new();
    for t in &r.to_time {
        match UtcMillis::parse_local(t) {
            Ok(v) => times.push(v),
            Err(e) => return bad(format!("-restoreToTime {t}: {e}")),
        }
    }
    let mut labels: Vec<Label> = Vec::new();
    for l in &r.to_incr_label {
        match l.parse::<Label>() {
            Ok(v) => labels.push(v),
            Err(_) => return bad(format!("-restoreToIncrLabel {l}: not a backup label")),
        }
    }
    let label = match &r.label {
        Some(l) => match l.parse::<Label>() {
            Ok(v) => Some(v),
            Err(_) => return bad(format!("-lb {l}: not a backup label")),
        },
        None => None,
    };
    let points = times.len() + labels.len() + r.to_redo_seq.len();
    if r.full_only && points > 0 {
        return bad("-rf does not go with a restore point".into());
    }
    Ok(RestoreOptions {
        label,
        full_only: r.full_only,
        backup_redo_only: r.backup_redo_only,
        to_time: times.into_iter().min(),
        to_incr_label: labels.into_iter().min(),
        to_redo_seq: r.to_redo_seq.iter().copied().min(),
        ignore_redo_errors: r.ignore_redo_errors,
        skip_deletes: r.skip_deletes,
        new_account_prefix: r.prefix.clone().filter(|_| r.create_account),
        restore_entry: r.restore_account,
        restore_points: points,
        all_accounts: r.accounts.iter().any(|a| a.eq_ignore_ascii_case("all")),
        skip_deleted: r.skip_deleted_accounts || !(r.create_account || r.restore_account),
    })
}

impl Service {
    /// Runs a restore here and now (the CLI without a server; the server's
    /// blocking task). Usage errors and an unreadable target are errors; a failed
    /// account is listed in the report (and, without `-c`, ends the run).
    pub fn restore(&self, r: &RestoreRequest) -> Result<RestoreReport, ServiceError> {
        self.restore_watched(r, &|_, _, _| true)
    }

    /// [`Service::restore`] telling `watch` (accounts done, accounts to do, a
    /// log line) before each account and at the end; `watch` answering false
    /// stops the run between accounts, as `zmbackupabort -r` does (a job's
    /// cancel, see [`crate::jobs`]).
    pub fn restore_watched(
        &self,
        r: &RestoreRequest,
        watch: &dyn Fn(u64, u64, Option<String>) -> bool,
    ) -> Result<RestoreReport, ServiceError> {
        let opts = options(r)?;
        let target = crate::backup::existing_target_for(self, r.target.as_deref())?;
        // One backup, delete or restore at a time on a target.
        let lock = target.lock(
            mv_backup::abort::RESTORE_LOCK_PREFIX,
            std::time::Duration::from_secs(5),
        )?;
        let _ = target.delete(mv_backup::abort::RESTORE_ABORT_FLAG);
        let mut report = RestoreReport {
            target: target.url(),
            ..Default::default()
        };
        let src = self.backup_source();
        if r.sys {
            report.system = Some(mv_backup::restore_system(
                &src,
                target.as_ref(),
                opts.label,
            )?);
        }
        if r.accounts.is_empty() {
            return Ok(report);
        }
        // (what the restore is asked for: an address, or with `all` a zimbraId;
        // the address to show).
        let emails: Vec<(String, String)> = if opts.all_accounts {
            let ids = all_accounts(&Catalog::load(target.as_ref())?);
            // Accounts created after the last backup, from a shipped
            // directory: no session holds them, the shipped redo log does.
            if opts.to_latest() {
                self.replay_unbacked(target.as_ref(), &ids, &mut report)?;
            }
            ids
        } else {
            r.accounts.iter().map(|a| (a.clone(), a.clone())).collect()
        };
        if emails.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no account to restore in {}",
                target.url()
            )));
        }
        // One run: the catalog, the pool and the blobs already restored are shared,
        // and each account is made durable while the next one is built.
        let mut run = mv_backup::RestoreRun::new();
        let total = emails.len() as u64;
        let mut done = 0u64;
        let shown: std::collections::HashMap<String, String> = emails.iter().cloned().collect();
        let mut emails = emails.into_iter();
        // Records what ended; true if an account failed.
        let settle = |ended: Vec<(String, Result<_, mv_backup::BackupError>)>,
                      report: &mut RestoreReport| {
            let mut failed = false;
            for (asked, r) in ended {
                let email = shown.get(&asked).cloned().unwrap_or(asked);
                crate::account_log::debug(
                    &email,
                    crate::account_log::Category::Backup,
                    format_args!(
                        "restore: {}",
                        match &r {
                            Ok(_) => "account restored".to_string(),
                            Err(e) => format!("account failed: {e}"),
                        }
                    ),
                );
                match r {
                    Ok(a) => report.accounts.push(a),
                    // `-a all`: not an account at the restore point.
                    Err(mv_backup::BackupError::NotAtPoint(why)) => {
                        report.skipped_accounts.push(why)
                    }
                    Err(e) => {
                        failed = true;
                        report.failures.push(RestoreFailure {
                            email,
                            error: e.to_string(),
                        });
                    }
                }
            }
            failed
        };
        while let Some((asked, email)) = emails.next() {
            // zmbackupabort -r: stop between accounts, so that each one is either
            // fully restored or untouched.
            let go_on = watch(done, total, Some(format!("restoring {email}")));
            if !go_on || mv_backup::restore_abort_requested(target.as_ref()) {
                settle(run.finish(&src), &mut report);
                report.not_restored.push(email);
                report.not_restored.extend(emails.by_ref().map(|(_, e)| e));
                report.notes.push(format!(
                    "restore {} by command; {} account(s) not restored",
                    if go_on { "aborted" } else { "cancelled" },
                    report.not_restored.len()
                ));
                break;
            }
            let _ = lock.describe(&format!(
                "{} {email}",
                mv_backup::abort::RESTORE_LOCK_PREFIX
            ));
            let failed = settle(
                run.restore_next(&src, target.as_ref(), &asked, &opts),
                &mut report,
            );
            done += 1;
            if failed && !r.continue_on_error {
                break;
            }
        }
        // The last account built (after a failure without -c too: it is whole).
        settle(run.finish(&src), &mut report);
        if !report.accounts.is_empty() {
            crate::recovery_check::note_restore(
                self.store().home(),
                &format!("restore of {} account(s)", report.accounts.len()),
            );
        }
        let _ = target.delete(mv_backup::abort::RESTORE_ABORT_FLAG);
        watch(
            done,
            total,
            Some(format!("{done} of {total} account(s) done")),
        );
        Ok(report)
    }
}

impl Service {
    /// `-a all` to the latest point: the directory's accounts that no session
    /// of the target holds (created after the last backup; their entry came
    /// from the shipped directory, `zmrestoreldap -t`) and whose mailbox id
    /// this store never used are rebuilt from the redo log the target holds
    /// after its sessions, when it holds their `CreateMailbox` (an account
    /// whose history began earlier, e.g. one a partial full left out, is left
    /// alone). Their mailbox ids are the primary's, as the shipped records are.
    fn replay_unbacked(
        &self,
        target: &dyn mv_backup::target::Target,
        held: &[(String, String)],
        report: &mut RestoreReport,
    ) -> Result<(), ServiceError> {
        let mut only = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeMap::new();
        for a in self.directory().list_accounts(None)? {
            if held.iter().any(|(id, _)| *id == a.id) {
                continue;
            }
            let m = self.store().mailbox(a.mailbox_id);
            if m.db_path().exists() || m.is_unopened().unwrap_or(true) {
                continue;
            }
            only.insert(a.mailbox_id.0);
            names.insert(a.mailbox_id.0, a.email);
        }
        if only.is_empty() {
            return Ok(());
        }
        let step = mv_backup::live::follow::replay_mailboxes(target, self.store(), &only)?;
        if step.rebuilt.is_empty() {
            return Ok(());
        }
        let rebuilt: Vec<&str> = step
            .rebuilt
            .iter()
            .filter_map(|id| names.get(id).map(String::as_str))
            .collect();
        report.notes.push(format!(
            "{}: created after the last backup; rebuilt from the redo log shipped after it \
             ({} records applied)",
            rebuilt.join(", "),
            step.applied
        ));
        for e in step.errors {
            report.notes.push(format!("redo record not applied: {e}"));
        }
        Ok(())
    }
}

/// `-a all`: every account the target holds, once per zimbraId (a renamed account
/// is one account), as (zimbraId, its newest address), in first-seen order. Which
/// of them existed at the restore point, and under which address, the restore of
/// each decides from its own history (`RestoreOptions::all_accounts`): the others
/// are listed as skipped.
fn all_accounts(catalog: &Catalog) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for s in catalog.sessions() {
        for a in &s.accounts {
            match ids.iter_mut().find(|(id, _)| *id == a.zimbra_id) {
                Some(e) => e.1 = a.email.clone(),
                None => ids.push((a.zimbra_id.clone(), a.email.clone())),
            }
        }
    }
    ids
}

/// What `zmrestoreldap` put into the directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirectoryRestoreSummary {
    pub domains: usize,
    pub cos: usize,
    pub servers: usize,
    pub accounts: usize,
    pub lists: usize,
}

impl std::fmt::Display for DirectoryRestoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} domains, {} classes of service, {} servers, {} accounts, {} distribution lists",
            self.domains, self.cos, self.servers, self.accounts, self.lists
        )
    }
}

impl Service {
    /// `zmrestoreldap`: the whole directory from a dump, into this home's directory,
    /// which must be fresh (only the entry `Service::open` makes for this server);
    /// or, with `accounts`, only those accounts' entries (ids and mailbox ids as in
    /// the dump; their domains must exist).
    pub fn restore_directory(
        &self,
        entries: &[mv_directory::Entry],
        accounts: &[String],
    ) -> Result<DirectoryRestoreSummary, ServiceError> {
        let dir = self.directory();
        if accounts.is_empty() {
            // The fresh home's own server entry makes way for the dump's servers.
            let here = dir.get_server(self.server_name())?;
            if here.attrs.is_empty() && dir.list_servers()?.len() == 1 {
                dir.delete_server(&here.name)?;
            }
            let result = dir.import_entries(entries);
            dir.ensure_server(self.server_name())?;
            let s = result.map_err(|e| {
                ServiceError::BadRequest(format!(
                    "{e}; zmrestoreldap rebuilds the directory of a fresh home \
                     (mailvault init --home DIR); use -a ADDR... to restore some accounts"
                ))
            })?;
            crate::recovery_check::note_restore(
                self.store().home(),
                "disaster recovery (zmrestoreldap)",
            );
            return Ok(DirectoryRestoreSummary {
                domains: s.domains,
                cos: s.cos,
                servers: s.servers,
                accounts: s.accounts,
                lists: s.lists,
            });
        }
        let mut summary = DirectoryRestoreSummary::default();
        for name in accounts {
            let entry = entries
                .iter()
                .find(|e| {
                    e.values("objectClass").any(|c| c == "zimbraAccount")
                        && (e.values("mail").any(|m| m.eq_ignore_ascii_case(name))
                            || e.values("zimbraId").any(|m| m == name))
                })
                .ok_or_else(|| {
                    ServiceError::NotFound(format!("{name}: no such account in the dump"))
                })?;
            dir.import_account_entry(entry, &mv_directory::AccountImport::original())?;
            summary.accounts += 1;
        }
        Ok(summary)
    }
}
