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
}

/// One account that could not be restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFailure {
    pub email: String,
    pub error: String,
}

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub target: String,
    pub accounts: Vec<AccountRestoreReport>,
    pub failures: Vec<RestoreFailure>,
    pub notes: Vec<String>,
}

impl RestoreReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Restore options from a request (validated: usage errors are `BadRequest`).
pub fn options(r: &RestoreRequest) -> Result<RestoreOptions, ServiceError> {
    let bad = |m: String| Err(ServiceError::BadRequest(m));
    if r.accounts.is_empty() {
        return bad("-a ADDR... or -a all is required".into());
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
        restore_points: points,
    })
}

impl Service {
    /// Runs a restore here and now (the CLI without a server; the server's
    /// blocking task). Usage errors and an unreadable target are errors; a failed
    /// account is listed in the report (and, without `-c`, ends the run).
    pub fn restore(&self, r: &RestoreRequest) -> Result<RestoreReport, ServiceError> {
        let opts = options(r)?;
        if !r.create_account {
            return Err(ServiceError::BadRequest(
                "restoring over the original account (without -ca) is not implemented yet; \
                 use -ca -pre PREFIX to restore into a new account beside it"
                    .into(),
            ));
        }
        let target = crate::backup::target_for(self, r.target.as_deref())?;
        let mut report = RestoreReport {
            target: target.url(),
            ..Default::default()
        };
        let all = r.accounts.iter().any(|a| a.eq_ignore_ascii_case("all"));
        let emails: Vec<String> = if all {
            let catalog = Catalog::load(target.as_ref())?;
            let mut v: Vec<String> = Vec::new();
            for s in catalog.sessions() {
                for a in &s.accounts {
                    if !v.iter().any(|e| e.eq_ignore_ascii_case(&a.email)) {
                        v.push(a.email.clone());
                    }
                }
            }
            if r.skip_deleted_accounts {
                let dir = self.directory();
                v.retain(|e| dir.get_account(e).is_ok());
            }
            v
        } else {
            r.accounts.clone()
        };
        if emails.is_empty() {
            return Err(ServiceError::NotFound(format!(
                "no account to restore in {}",
                target.url()
            )));
        }
        let src = self.backup_source();
        for email in emails {
            match mv_backup::restore_account(&src, target.as_ref(), &email, &opts) {
                Ok(a) => report.accounts.push(a),
                Err(e) => {
                    report.failures.push(RestoreFailure {
                        email,
                        error: e.to_string(),
                    });
                    if !r.continue_on_error {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }
}
