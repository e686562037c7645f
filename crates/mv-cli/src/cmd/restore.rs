//! `playredo` (`zmplayredo`): replays redo logs into the store of a stopped server.
//! The tool takes the home's lock, so it refuses while a server (or another offline
//! tool) owns the home, naming its pid.

use anyhow::Context;
use mv_home::{Home, HomeLock};
use mv_server::restore::RestoreReport;
use mv_types::UtcMillis;
use std::path::PathBuf;
use std::process::ExitCode;

/// Replay redo logs into the store (zmplayredo; the server must be stopped).
#[derive(clap::Args, Debug)]
pub struct PlayRedoArgs {
    /// First redo log sequence to replay.
    #[arg(long = "fromSeq", value_name = "N")]
    from_seq: Option<u64>,
    /// Last redo log sequence to replay.
    #[arg(long = "toSeq", value_name = "N")]
    to_seq: Option<u64>,
    /// Replay ops from this time on (local time, any of the nine formats).
    #[arg(long = "fromTime", value_name = "TIME")]
    from_time: Option<String>,
    /// Replay ops up to this time (local time).
    #[arg(long = "toTime", value_name = "TIME")]
    to_time: Option<String>,
    /// Only these mailbox ids (comma-separated).
    #[arg(long = "mailboxId", value_delimiter = ',', value_name = "IDS")]
    mailbox_id: Option<Vec<u32>>,
    /// Redo log files or directories (default: the archive, then redo.log).
    #[arg(long = "logfiles", num_args = 1.., value_name = "FILE")]
    logfiles: Vec<PathBuf>,
    /// Replay threads (mailboxes in parallel, each mailbox serially).
    #[arg(long = "threads", default_value_t = 50)]
    threads: usize,
    /// Batches queued per thread.
    #[arg(long = "queueCapacity", default_value_t = 100)]
    queue_capacity: usize,
    /// Stop at the first error (default: report errors and go on).
    #[arg(long = "stopOnError")]
    stop_on_error: bool,
    /// Print the report as JSON.
    #[arg(long = "json")]
    json: bool,
}

fn time(arg: &Option<String>, name: &str) -> anyhow::Result<Option<UtcMillis>> {
    arg.as_deref()
        .map(|s| UtcMillis::parse_local(s).map_err(|e| anyhow::anyhow!("{name} {s}: {e}")))
        .transpose()
}

pub fn playredo(home: &Home, args: PlayRedoArgs) -> anyhow::Result<ExitCode> {
    let (from_time, to_time) = match (
        time(&args.from_time, "--fromTime"),
        time(&args.to_time, "--toTime"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let _lock = match HomeLock::acquire(home.root()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: zmplayredo needs the server stopped: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    // The replay is the store's only user while it runs: one connection per
    // mailbox database, no shared-memory index or per-transaction file locks.
    let store_options = mv_store::StoreOptions {
        exclusive_databases: true,
        ..mv_store::StoreOptions::from_home(home)?
    };
    let (store, _) = mv_store::Store::open(home, store_options)?;
    let opts = mv_backup::PlayRedoOptions {
        from_seq: args.from_seq,
        to_seq: args.to_seq,
        from_time,
        to_time,
        mailboxes: args.mailbox_id,
        logfiles: args.logfiles,
        threads: args.threads,
        queue_capacity: args.queue_capacity,
        stop_on_error: args.stop_on_error,
        ..Default::default()
    };
    let report = match mv_backup::playredo(&store, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Replayed {} files: {} records read, {} applied, {} already applied, {} filtered out, {} mailboxes",
            report.files.len(),
            report.records_read,
            report.applied,
            report.skipped_already_applied,
            report.skipped_filtered,
            report.mailboxes.len()
        );
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Restore accounts from backups (zmrestore).
#[derive(clap::Args, Debug)]
#[command(after_help = mv_types::time::FORMATS_HELP)]
pub struct RestoreArgs {
    /// Accounts (addresses) or `all`.
    #[arg(short = 'a', long = "account", num_args = 1.., value_name = "ADDR")]
    accounts: Vec<String>,
    /// The full backup to start from (default: the newest before the restore point).
    #[arg(long = "lb", visible_alias = "label", value_name = "LABEL")]
    label: Option<String>,
    /// Restore the full backup only (no redo replay).
    #[arg(long = "rf", visible_alias = "restoreFullBackupOnly")]
    full_only: bool,
    /// Replay only the redo logs held in the backup target (not the server's
    /// archive and current redo.log).
    #[arg(long = "br", visible_alias = "backedupRedologsOnly")]
    backup_redo_only: bool,
    /// Restore to this time (local time; repeatable: the earliest point wins).
    #[arg(long = "restoreToTime", value_name = "TIME")]
    to_time: Vec<String>,
    /// Restore to the end of this incremental backup (repeatable).
    #[arg(long = "restoreToIncrLabel", value_name = "LABEL")]
    to_incr_label: Vec<String>,
    /// Restore up to and including this redo log sequence (repeatable).
    #[arg(long = "restoreToRedoSeq", value_name = "SEQ")]
    to_redo_seq: Vec<u64>,
    /// Go on past a gap or a damaged redo log; what was skipped is reported.
    #[arg(long = "ignoreRedoErrors")]
    ignore_redo_errors: bool,
    /// Leave out delete operations while replaying.
    #[arg(long = "skipDeletes")]
    skip_deletes: bool,
    /// With `-a all` and -ra or -ca: still leave out accounts no longer in the
    /// directory (without either, they are always skipped and listed).
    #[arg(long = "skipDeletedAccounts")]
    skip_deleted_accounts: bool,
    /// Restore into a new account (needs -pre).
    #[arg(long = "ca")]
    create_account: bool,
    /// The new account's prefix (-ca): PREFIX+name.
    #[arg(long = "pre", value_name = "PREFIX")]
    prefix: Option<String>,
    /// Recreate the account's directory entry.
    #[arg(long = "ra")]
    restore_account: bool,
    /// Continue past a failed account (the failures are listed at the end).
    #[arg(short = 'c', long = "continue")]
    continue_on_error: bool,
    /// Restore the system tables.
    #[arg(long = "sys", visible_alias = "systemData")]
    sys: bool,
    /// Do not restore the search index (accepted: it is rebuilt from the messages).
    #[arg(long = "excludeSearchIndex", visible_alias = "exclude-search-index")]
    exclude_search_index: bool,
    /// Do not restore blobs (accepted; blobs are restored anyway).
    #[arg(long = "excludeBlobs", visible_alias = "exclude-blobs")]
    exclude_blobs: bool,
    /// Do not restore HSM blobs (accepted; there is no HSM volume here).
    #[arg(long = "excludeHsmBlobs", visible_alias = "exclude-hsm-blobs")]
    exclude_hsm_blobs: bool,
    /// Debug output (accepted; MAILVAULT_LOG=debug turns on debug lines).
    #[arg(short = 'd', long = "debug")]
    debug: bool,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = super::backup::target_arg)]
    target: Option<String>,
    /// Server (accepted for compatibility: this server).
    #[arg(short = 's', long = "server", value_name = "HOST")]
    server: Option<String>,
    /// Restore only the messages matching this query (the grammar of `zmmailbox
    /// s`) into the live account, while it runs.
    #[arg(long = "items", value_name = "QUERY", conflicts_with = "folder")]
    items: Option<String>,
    /// Restore only this folder and its subfolders' messages into the live account.
    #[arg(long = "folder", value_name = "PATH")]
    folder: Option<String>,
    /// With --items/--folder: put every restored message into this folder.
    #[arg(long = "into", value_name = "PATH")]
    into: Option<String>,
    /// With --items/--folder: list what would be restored, change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Machine-readable output.
    #[arg(long = "json")]
    json: bool,
}

impl RestoreArgs {
    /// `--items`/`--folder`: an item restore rather than an account restore.
    fn item_args(&self) -> Option<crate::cmd::items::ItemArgs<'_>> {
        if self.items.is_none() && self.folder.is_none() {
            return None;
        }
        let others = [
            (self.full_only, "-rf"),
            (self.backup_redo_only, "-br"),
            (!self.to_incr_label.is_empty(), "-restoreToIncrLabel"),
            (!self.to_redo_seq.is_empty(), "-restoreToRedoSeq"),
            (self.create_account, "-ca"),
            (self.prefix.is_some(), "-pre"),
            (self.restore_account, "-ra"),
            (self.sys, "-sys"),
            (self.skip_deletes, "--skipDeletes"),
            (self.ignore_redo_errors, "--ignoreRedoErrors"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        Some(crate::cmd::items::ItemArgs {
            accounts: &self.accounts,
            items: self.items.clone(),
            folder: self.folder.clone(),
            into: self.into.clone(),
            dry_run: self.dry_run,
            to_time: &self.to_time,
            label: self.label.clone(),
            target: self.target.clone(),
            json: self.json,
            others,
        })
    }

    fn request(&self) -> mv_server::restore::RestoreRequest {
        mv_server::restore::RestoreRequest {
            accounts: self.accounts.clone(),
            target: self.target.clone(),
            label: self.label.clone(),
            full_only: self.full_only,
            backup_redo_only: self.backup_redo_only,
            to_time: self.to_time.clone(),
            to_incr_label: self.to_incr_label.clone(),
            to_redo_seq: self.to_redo_seq.clone(),
            ignore_redo_errors: self.ignore_redo_errors,
            skip_deletes: self.skip_deletes,
            skip_deleted_accounts: self.skip_deleted_accounts,
            create_account: self.create_account,
            prefix: self.prefix.clone(),
            restore_account: self.restore_account,
            continue_on_error: self.continue_on_error,
            sys: self.sys,
        }
    }

    /// Usage errors (exit 2) and a mistyped target (exit 1), before anything runs.
    fn check(&self, home: &Home) -> Option<ExitCode> {
        if self.into.is_some() || self.dry_run {
            eprintln!("error: --into and --dry-run go with --items or --folder");
            return Some(ExitCode::from(2));
        }
        if self.exclude_blobs {
            crate::zimbra::note_ignored("--excludeBlobs", "blobs are restored anyway");
        }
        if self.exclude_hsm_blobs {
            crate::zimbra::note_ignored("--excludeHsmBlobs", "there are no HSM volumes");
        }
        if self.debug {
            crate::zimbra::note_ignored("-d/--debug", crate::zimbra::DEBUG_NOTE);
        }
        if let Err(e) = mv_server::restore::options(&self.request()) {
            eprintln!("error: {e}");
            return Some(ExitCode::from(2));
        }
        if let Some(t) = &self.target
            && let Err(e) = mv_backup::target::open_existing(t, home)
        {
            eprintln!("error: {e}");
            return Some(ExitCode::from(1));
        }
        None
    }
}

pub fn restore(home: &Home, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let _ = (&args.server, args.exclude_search_index);
    if let Some(items) = args.item_args() {
        return crate::cmd::items::restore_items(home, items);
    }
    if let Some(code) = args.check(home) {
        return Ok(code);
    }
    let req = args.request();
    let client = crate::client::Client::connect(home)?;
    // Through a running server the restore is a job, followed until it ends
    // (however long that is): its log lines go to stderr as they come.
    let mut follow = |_: &mv_server::jobs::JobStatus<RestoreReport>,
                      news: mv_server::jobs::LogNews<'_>| {
        crate::client::print_job_log("restore", &news)
    };
    let report = match client.run_job(mv_server::Request::Restore(req), &mut follow) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    print_report(&report, args.json)
}

/// `zmrestoreldap --json`: what was restored from where.
#[derive(serde::Serialize)]
struct LdapRestoreOutput<'a> {
    /// The session (label) or LDIF file the entries came from.
    source: &'a str,
    restored: &'a mv_server::restore::DirectoryRestoreSummary,
    /// What went back into `conf/` (a rebuilt server, without --skipConf).
    conf: Option<&'a mv_backup::identity::IdentityRestoreReport>,
    /// The target a rebuilt server's backups now go to, when it changed (the
    /// name of Zimbra's attribute, as scripts read it).
    #[serde(rename = "zimbraBackupTarget")]
    backup_target: Option<&'a str>,
}

/// `zmrestoreoffline`: the same restore, in this process, with the server stopped.
/// On a rebuilt home the redo log first moves past every sequence the target
/// holds, so the next incremental neither finds a gap nor sees a sequence twice.
pub fn restore_offline(home: &Home, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let _ = (&args.server, args.exclude_search_index);
    if args.item_args().is_some() {
        eprintln!(
            "error: --items/--folder restore into a running account: use zmrestore \
             (it runs in this process when no server runs)"
        );
        return Ok(ExitCode::from(2));
    }
    if let Some(code) = args.check(home) {
        return Ok(code);
    }
    home.open()?;
    let _lock = match HomeLock::acquire(home.root()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: zmrestoreoffline needs the server stopped (zmcontrol stop): {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Err(e) = continue_redo_after_target(home, args.target.as_deref()) {
        eprintln!("error: {e:#}");
        return Ok(ExitCode::from(1));
    }
    let (service, _) = mv_server::Service::open(home)?;
    let report = match service.restore(&args.request()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    print_report(&report, args.json)
}

/// Makes this home's redo log continue the target's history (see
/// [`mv_backup::ldap::redo_floor`], [`mv_redo::continue_at`]): a fresh home's next
/// log takes the sequence the target needs next; the home that took the backups is
/// already there and is left alone. Call with the home lock held and no store open.
pub(crate) fn continue_redo_after_target(home: &Home, target: Option<&str>) -> anyhow::Result<()> {
    let floor = {
        let (service, _) = mv_server::Service::open(home)?;
        let target = mv_server::backup::target_for(&service, target)?;
        mv_backup::ldap::redo_floor(target.as_ref())?
    };
    let Some((next, lsn)) = floor else {
        return Ok(());
    };
    let cfg = mv_redo::RedoConfig::for_dir(&home.redolog_dir());
    match mv_redo::continue_at(&cfg, next, lsn) {
        Ok(mv_redo::Continuation::Advanced { next_sequence }) => {
            eprintln!(
                "note: the redo log continues the backup target's history at sequence \
                 {next_sequence}"
            );
        }
        Ok(mv_redo::Continuation::AlreadyPast { .. }) => {}
        Err(e) => eprintln!("warning: {e}"),
    }
    Ok(())
}

fn print_report(report: &RestoreReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        if let Some(sys) = &report.system {
            println!(
                "system: restored from {}: {} global and {} server attributes{}",
                sys.label,
                sys.global_attrs,
                sys.server_attrs,
                if sys.localconfig {
                    ", local config (the previous one kept as localconfig.conf.before-restore)"
                } else {
                    ""
                }
            );
        }
        for a in &report.accounts {
            for n in &a.notes {
                println!("{}: {n}", a.email);
            }
            let replaced = match a.replaced_mailbox_id {
                Some(old) => format!(", replacing mailbox {old}"),
                None => String::new(),
            };
            println!(
                "{}: restored as {} (mailbox {}{replaced}) from {}: {} redo files, {} ops replayed{}",
                a.email,
                a.restored_as,
                a.mailbox_id,
                a.full_label,
                a.redo_files,
                a.applied,
                match a.skipped_deletes {
                    n if n > 0 => format!(", {n} delete ops skipped"),
                    _ => String::new(),
                }
            );
            for k in &a.skipped {
                eprintln!("warning: {}: skipped: {k}", a.email);
            }
        }
        for n in &report.notes {
            println!("{n}");
        }
        for n in &report.skipped_accounts {
            println!("{n}");
        }
        if !report.not_restored.is_empty() {
            eprintln!(
                "Not restored (untouched): {}",
                report.not_restored.join(" ")
            );
        }
        if !report.failures.is_empty() {
            eprintln!("Failed accounts (backup target {}):", report.target);
            for f in &report.failures {
                let (email, error) = (f.email.as_str(), f.error.as_str());
                // Errors from the restore often name the account already.
                let error = error
                    .strip_prefix(email)
                    .and_then(|e| e.strip_prefix(": "))
                    .unwrap_or(error);
                eprintln!("error: {email}: {error}");
            }
        }
    }
    Ok(
        if report.failures.is_empty() && report.not_restored.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

/// Restore the directory from a backup (zmrestoreldap; the server must be stopped).
#[derive(clap::Args, Debug)]
pub struct RestoreLdapArgs {
    /// List the labels of the sessions holding a directory dump.
    #[arg(long = "lbs")]
    list_labels: bool,
    /// The session to restore from (default: the newest).
    #[arg(long = "lb", value_name = "LABEL")]
    label: Option<String>,
    /// List the accounts in the dump.
    #[arg(short = 'l')]
    list_accounts: bool,
    /// Restore only these accounts (their domains must exist).
    #[arg(short = 'a', long = "account", num_args = 1.., value_name = "ADDR")]
    accounts: Vec<String>,
    /// A directory holding ldap.bak, instead of a session of the target.
    #[arg(short = 'o', value_name = "DIR")]
    from_dir: Option<PathBuf>,
    /// Do not restore the session's local config, IMAP certificate and key and
    /// admin token into conf/ (a whole-directory restore does by default).
    #[arg(long = "skipConf")]
    skip_conf: bool,
    /// Backup target (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "DIR", value_parser = super::backup::target_arg)]
    target: Option<String>,
    /// Machine-readable output.
    #[arg(long = "json")]
    json: bool,
}

impl RestoreLdapArgs {
    /// With a named source (`-t` or `-o`) zmrestoreldap needs no home: a listing
    /// reads only the source, and a restore is how a fresh home is rebuilt after
    /// a disaster (it makes the home, as `init` does). Without one it reads the
    /// home's own default target, so the home must exist.
    pub fn needs_a_home(&self) -> bool {
        self.target.is_none() && self.from_dir.is_none()
    }

    fn listing(&self) -> bool {
        self.list_labels || self.list_accounts
    }
}

/// The directory entries of `-o DIR` (a directory holding ldap.bak), of
/// session `-lb`, or else the newest of the target (a session's, or the one
/// continuous shipping put after it); with the name to show for them and the
/// session whose identity files go with them.
fn ldap_source(
    args: &RestoreLdapArgs,
    target: &dyn mv_backup::target::Target,
    label: Option<mv_backup::Label>,
) -> anyhow::Result<(String, Option<String>, Vec<mv_directory::Entry>)> {
    match &args.from_dir {
        Some(dir) => {
            let path = if dir.join("ldap.bak").is_file() {
                dir.join("ldap.bak")
            } else {
                dir.join("ldap").join("ldap.bak")
            };
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading {} (-o DIR holds ldap.bak)", path.display()))?;
            let shown = path.display().to_string();
            let entries = mv_backup::ldap::parse_ldap(&shown, &bytes)?;
            Ok((shown, None, entries))
        }
        None => match label {
            Some(l) => {
                let (label, entries) = mv_backup::ldap::read_ldap(target, Some(l))?;
                Ok((label.clone(), Some(label), entries))
            }
            None => {
                let l = mv_backup::ldap::read_latest(target)?;
                Ok((l.source, l.session, l.entries))
            }
        },
    }
}

/// `-lbs` and `-l`: what a source holds, read and printed, nothing written.
fn list_ldap(
    args: &RestoreLdapArgs,
    target: &dyn mv_backup::target::Target,
    label: Option<mv_backup::Label>,
) -> anyhow::Result<ExitCode> {
    if args.list_labels {
        let sessions = mv_backup::ldap::ldap_sessions(target)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&sessions)?);
        } else {
            for s in &sessions {
                println!("{}", s.label);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (_, _, entries) = ldap_source(args, target, label)?;
    let accounts = mv_backup::ldap::ldap_accounts(&entries);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&accounts)?);
    } else {
        for a in &accounts {
            println!("{}", a.email);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `-lbs` / `-l` of the home's target while the server runs: the server says
/// which target that is (zimbraBackupTarget), the listing reads it directly.
fn list_beside_the_server(
    home: &Home,
    args: &RestoreLdapArgs,
    label: Option<mv_backup::Label>,
) -> anyhow::Result<ExitCode> {
    let client = crate::client::Client::connect(home)?;
    let q: mv_backup::QueryResult = client.call(mv_server::Request::BackupQuery(
        mv_server::backup::QueryRequest {
            target: None,
            label: None,
            accounts: Vec::new(),
            kind: None,
            from: None,
            to: None,
            verbose: false,
        },
    ))?;
    if q.target.is_empty() {
        anyhow::bail!("the server named no backup target");
    }
    let target = mv_backup::target::open_existing(&q.target, home)?;
    list_ldap(args, target.as_ref(), label)
}

pub fn restore_ldap(home: &Home, args: RestoreLdapArgs) -> anyhow::Result<ExitCode> {
    let label = match args.label.as_deref().map(str::parse::<mv_backup::Label>) {
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => {
            eprintln!(
                "error: -lb {}: not a backup label",
                args.label.unwrap_or_default()
            );
            return Ok(ExitCode::from(2));
        }
        None => None,
    };
    let named = match &args.target {
        Some(t) => match mv_backup::target::open_existing(t, home) {
            Ok(target) => Some(target),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(1));
            }
        },
        None => None,
    };
    // A listing of a named target reads only the target: it neither makes nor
    // locks the home, so it works on a fresh machine and beside a running server.
    if args.listing()
        && let Some(target) = &named
    {
        return list_ldap(&args, target.as_ref(), label);
    }
    home.open()?;
    let _lock = match HomeLock::acquire(home.root()) {
        Ok(l) => l,
        // A listing writes nothing: beside a running server it reads the
        // target the server names.
        Err(mv_home::LockError::Held { .. }) if args.listing() && args.from_dir.is_none() => {
            return match list_beside_the_server(home, &args, label) {
                Ok(code) => Ok(code),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    Ok(ExitCode::from(1))
                }
            };
        }
        Err(e) => {
            eprintln!("error: zmrestoreldap needs the server stopped (zmcontrol stop): {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let result = (|| -> anyhow::Result<ExitCode> {
        let (service, _) = mv_server::Service::open(home)?;
        let target = mv_server::backup::target_for(&service, args.target.as_deref())?;
        if args.listing() {
            return list_ldap(&args, target.as_ref(), label);
        }
        let (source, session, entries) = ldap_source(&args, target.as_ref(), label)?;
        let summary = service.restore_directory(&entries, &args.accounts)?;
        // A rebuilt server: its identity, and its backups go on into the target it
        // was rebuilt from.
        let rebuilt = args.accounts.is_empty() && args.from_dir.is_none();
        let mut backup_target = None;
        if rebuilt && args.target.is_some() {
            let url = target.url();
            let current =
                mv_backup::default_target(service.directory(), service.server_name(), home);
            if current != url {
                service.directory().modify_server(
                    service.server_name(),
                    &[mv_directory::Modification::Replace {
                        name: "zimbraBackupTarget".into(),
                        values: vec![url.clone()],
                    }],
                )?;
                backup_target = Some(url);
            }
        }
        drop(service);
        let identity = match &session {
            Some(session) if rebuilt && !args.skip_conf => {
                let label: mv_backup::Label = session.parse()?;
                Some(mv_backup::identity::restore(target.as_ref(), &label, home)?)
            }
            _ => None,
        };
        if args.json {
            let out = LdapRestoreOutput {
                source: &source,
                restored: &summary,
                conf: identity.as_ref(),
                backup_target: backup_target.as_deref(),
            };
            println!("{}", serde_json::to_string(&out)?);
        } else {
            println!("Restored the directory from {source}: {summary}");
            if let Some(i) = &identity {
                println!(
                    "Restored from {}: {} (the files replaced are kept as \
                     *.before-restore; --skipConf leaves conf/ alone)",
                    session.as_deref().unwrap_or(&source),
                    i.restored.join(", ")
                );
            }
            if let Some(t) = &backup_target {
                println!(
                    "zimbraBackupTarget of this server is now {t}, the target it was rebuilt from"
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })();
    let code = match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    if code == ExitCode::SUCCESS && !args.list_labels && !args.list_accounts {
        continue_redo_after_target(home, args.target.as_deref())?;
    }
    Ok(code)
}
