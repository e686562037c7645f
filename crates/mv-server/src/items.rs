//! Item-level recovery requests: `mailvault backup search`, `mailvault backup
//! export` and `zmrestore --items/--folder`. The logic is in `mv_backup::items`; this module validates
//! the request, resolves the target, the accounts (`all`: every account of the
//! target) and the restore point, and reports progress to a job.

use crate::restore::RestoreFailure;
use crate::{Service, ServiceError};
use mv_backup::items::{
    AccountSearch, BackupHit, ExportFormat, ExportOptions, ExportReport, ItemRestoreOptions,
    ItemRestoreReport, SearchOptions, Selection,
};
use mv_backup::{Label, RestoreOptions};
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};

/// Which backups a request reads: the target (absent: the home's default)
/// and at most one restore point.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupPoint {
    #[serde(default)]
    pub target: Option<String>,
    /// `-restoreToTime`: one restore point instead of every session.
    #[serde(default)]
    pub to_time: Option<String>,
    /// `-lb`: that session's state only.
    #[serde(default)]
    pub label: Option<String>,
}

/// `mailvault backup search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupSearchRequest {
    /// An address or zimbraId, or `all`.
    pub account: String,
    pub query: String,
    /// `--from`: sessions started at or after (local time, the nine formats).
    #[serde(default)]
    pub from: Option<String>,
    /// `--to`: sessions started at or before.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(flatten)]
    pub backups: BackupPoint,
}

/// What `backup search` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupSearchReport {
    pub target: String,
    pub accounts: Vec<AccountSearch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RestoreFailure>,
}

impl BackupSearchReport {
    pub fn hits(&self) -> usize {
        self.accounts.iter().map(|a| a.hits.len()).sum()
    }
}

/// `zmrestore -a ACCOUNT --items QUERY | --folder /Path`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemRestoreRequest {
    pub account: String,
    #[serde(default)]
    pub items: Option<String>,
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(flatten)]
    pub backups: BackupPoint,
    #[serde(default)]
    pub into: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// `mailvault backup export`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupExportRequest {
    pub account: String,
    /// The messages (the grammar of `zmmailbox s`); with `folder` absent and
    /// this absent, every message.
    #[serde(default)]
    pub query: Option<String>,
    /// `--folder /Path`: the folder and its subfolders.
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(flatten)]
    pub backups: BackupPoint,
    /// `tgz`, `mbox` or `maildir`; absent: from the output's name.
    #[serde(default)]
    pub format: Option<String>,
    /// Where to write: an absolute path on the server's machine that does not
    /// exist yet (a file, or a directory for a Maildir).
    pub output: String,
}

fn bad<T>(m: String) -> Result<T, ServiceError> {
    Err(ServiceError::BadRequest(m))
}

fn time(name: &str, v: &Option<String>) -> Result<Option<UtcMillis>, ServiceError> {
    v.as_deref()
        .map(|t| {
            UtcMillis::parse_local(t)
                .map_err(|e| ServiceError::BadRequest(format!("{name} {t}: {e}")))
        })
        .transpose()
}

impl BackupPoint {
    /// The one restore point of `-restoreToTime T` or `-lb LABEL`, if given.
    fn point(&self) -> Result<Option<RestoreOptions>, ServiceError> {
        let t = time("-restoreToTime", &self.to_time)?;
        let l = match &self.label {
            Some(l) => match l.parse::<Label>() {
                Ok(v) => Some(v),
                Err(_) => return bad(format!("-lb {l}: not a backup label")),
            },
            None => None,
        };
        Ok(match (t, l) {
            (Some(_), Some(_)) => return bad("-restoreToTime and -lb exclude each other".into()),
            (Some(t), None) => Some(RestoreOptions {
                to_time: Some(t),
                restore_points: 1,
                ..Default::default()
            }),
            (None, Some(l)) => Some(mv_backup::items::point_of_label(l)),
            (None, None) => None,
        })
    }
}

/// A query in the grammar of `zmmailbox s`, checked.
fn query_selection(q: &str) -> Result<Selection, ServiceError> {
    mv_store::search::parse(q).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    Ok(Selection::Query(q.to_string()))
}

/// `--folder /Path`, checked.
fn folder_selection(f: &str) -> Result<Selection, ServiceError> {
    if f.trim_matches('/').trim().is_empty() {
        return bad("--folder needs a folder path such as /Inbox/Projects".into());
    }
    Ok(Selection::Folder(f.to_string()))
}

/// Search options from a request (validated: usage errors are `BadRequest`).
pub fn search_options(r: &BackupSearchRequest) -> Result<SearchOptions, ServiceError> {
    if r.account.trim().is_empty() {
        return bad("-a ACCOUNT (or -a all) is required".into());
    }
    mv_store::search::parse(&r.query).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
    let point = r.backups.point()?;
    let (from, to) = (time("--from", &r.from)?, time("--to", &r.to)?);
    if point.is_some() && (from.is_some() || to.is_some()) {
        return bad(
            "--from/--to choose sessions; -restoreToTime/-lb choose one point: not both".into(),
        );
    }
    if let (Some(a), Some(b)) = (from, to)
        && a > b
    {
        return bad("--from is after --to".into());
    }
    Ok(SearchOptions { point, from, to })
}

/// Item restore options from a request (validated).
pub fn item_options(r: &ItemRestoreRequest) -> Result<ItemRestoreOptions, ServiceError> {
    if r.account.trim().is_empty() || r.account.eq_ignore_ascii_case("all") {
        return bad("--items/--folder restore into one account: -a ADDR".into());
    }
    let selection = match (&r.items, &r.folder) {
        (Some(q), None) => {
            let selection = query_selection(q)?;
            if q.trim().is_empty() {
                return bad("--items needs a query (the grammar of zmmailbox s)".into());
            }
            selection
        }
        (None, Some(f)) => folder_selection(f)?,
        (Some(_), Some(_)) => return bad("--items and --folder exclude each other".into()),
        (None, None) => return bad("--items QUERY or --folder /Path is required".into()),
    };
    if r.into
        .as_deref()
        .is_some_and(|i| i.trim_matches('/').trim().is_empty())
    {
        return bad("--into needs a folder path such as /Restored".into());
    }
    Ok(ItemRestoreOptions {
        selection,
        point: r.backups.point()?,
        into: r.into.clone(),
        dry_run: r.dry_run,
    })
}

/// Export options from a request (validated: usage errors are `BadRequest`).
pub fn export_options(r: &BackupExportRequest) -> Result<ExportOptions, ServiceError> {
    if r.account.trim().is_empty() || r.account.eq_ignore_ascii_case("all") {
        return bad("backup export reads one account: -a ADDR".into());
    }
    let selection = match (&r.query, &r.folder) {
        (Some(q), None) if !q.trim().is_empty() => Some(query_selection(q)?),
        (Some(_), None) | (None, None) => None,
        (None, Some(f)) => Some(folder_selection(f)?),
        (Some(_), Some(_)) => return bad("a QUERY and --folder exclude each other".into()),
    };
    if r.output.trim().is_empty() {
        return bad("-o PATH is required".into());
    }
    let output = std::path::PathBuf::from(&r.output);
    if !output.is_absolute() {
        return bad(format!(
            "-o {}: the server needs an absolute path",
            r.output
        ));
    }
    let format = match &r.format {
        Some(f) => f.parse::<ExportFormat>().map_err(ServiceError::BadRequest)?,
        None => ExportFormat::from_path(&r.output).ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "-o {}: say the format with --format tgz|mbox|maildir (or name the file .tgz or .mbox)",
                r.output
            ))
        })?,
    };
    Ok(ExportOptions {
        selection,
        point: r.backups.point()?,
        format,
        output,
    })
}

impl Service {
    /// `backup search`, telling `watch` (accounts done, accounts to do, a log line)
    /// before each account; `watch` answering false stops between accounts.
    pub fn backup_search_watched(
        &self,
        r: &BackupSearchRequest,
        watch: &dyn Fn(u64, u64, Option<String>) -> bool,
    ) -> Result<BackupSearchReport, ServiceError> {
        self.backup_search_streamed(r, watch, &mut |_| {})
    }

    /// [`Service::backup_search_watched`], handing each hit to `on_hit` as soon
    /// as it is first found (`mv_backup::items::search_account_streamed`); the
    /// report still holds every hit, merged.
    pub fn backup_search_streamed(
        &self,
        r: &BackupSearchRequest,
        watch: &dyn Fn(u64, u64, Option<String>) -> bool,
        on_hit: &mut dyn FnMut(&BackupHit),
    ) -> Result<BackupSearchReport, ServiceError> {
        let opts = search_options(r)?;
        let target = crate::backup::existing_target_for(self, r.backups.target.as_deref())?;
        let src = self.backup_source();
        let mut run = mv_backup::RestoreRun::new();
        let emails: Vec<String> = if r.account.eq_ignore_ascii_case("all") {
            mv_backup::items::target_accounts(&mut run, target.as_ref())?
                .into_iter()
                .map(|(_, email)| email)
                .collect()
        } else {
            vec![r.account.clone()]
        };
        let mut report = BackupSearchReport {
            target: target.url(),
            ..Default::default()
        };
        let total = emails.len() as u64;
        for (n, email) in emails.iter().enumerate() {
            if !watch(n as u64, total, Some(format!("searching {email}"))) {
                break;
            }
            match mv_backup::items::search_account_streamed(
                &mut run,
                &src,
                target.as_ref(),
                email,
                &r.query,
                &opts,
                on_hit,
            ) {
                Ok(a) => report.accounts.push(a),
                // One account named: its error is the answer.
                Err(e) if total == 1 => return Err(e.into()),
                Err(e) => report.failures.push(RestoreFailure {
                    email: email.clone(),
                    error: e.to_string(),
                }),
            }
        }
        watch(total, total, Some(format!("{} hit(s)", report.hits())));
        Ok(report)
    }

    /// `zmrestore --items/--folder`: restores the selected messages into the live
    /// account, through the normal write path.
    pub fn restore_items(&self, r: &ItemRestoreRequest) -> Result<ItemRestoreReport, ServiceError> {
        let opts = item_options(r)?;
        let target = crate::backup::existing_target_for(self, r.backups.target.as_deref())?;
        // No backup delete may remove what is being read.
        let _lock = target.lock(
            mv_backup::abort::RESTORE_LOCK_PREFIX,
            std::time::Duration::from_secs(5),
        )?;
        let src = self.backup_source();
        let mut run = mv_backup::RestoreRun::new();
        let report =
            mv_backup::items::restore_items(&mut run, &src, target.as_ref(), &r.account, &opts)?;
        if !report.restored.is_empty() && !report.dry_run {
            crate::account_log::debug(
                &r.account,
                crate::account_log::Category::Backup,
                format_args!("restored {} item(s) from backups", report.restored.len()),
            );
        }
        Ok(report)
    }
}

impl Service {
    /// `backup export`: the selected messages at one restore point, written to
    /// the request's output. Holds the target's restore lock (no `-del` removes
    /// what is being read).
    pub fn backup_export(&self, r: &BackupExportRequest) -> Result<ExportReport, ServiceError> {
        let opts = export_options(r)?;
        let target = crate::backup::existing_target_for(self, r.backups.target.as_deref())?;
        let _lock = target.lock(
            mv_backup::abort::RESTORE_LOCK_PREFIX,
            std::time::Duration::from_secs(5),
        )?;
        let src = self.backup_source();
        let mut run = mv_backup::RestoreRun::new();
        let report =
            mv_backup::items::export_account(&mut run, &src, target.as_ref(), &r.account, &opts)?;
        crate::account_log::debug(
            &r.account,
            crate::account_log::Category::Backup,
            format_args!(
                "exported {} message(s) from backups to {}",
                report.messages, report.output
            ),
        );
        Ok(report)
    }
}
