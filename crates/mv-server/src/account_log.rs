//! Account loggers (`zmprov aal/ral/gal/gaal`): more detail in the log for one
//! account and one category, set at run time without touching the global level,
//! as Zimbra administrators do with `zmprov aal user@domain zimbra.backup debug`.
//!
//! As in Zimbra they live in the running server's memory only: a restart clears
//! them. The registry is process-wide (the LMTP, IMAP and backup threads all
//! consult it); an empty registry costs one atomic load per call site.
//!
//! Lines go out with the category as their tracing target (`zimbra.lmtp`, ...)
//! and an `account` field. They are emitted only when an account logger asks for
//! them, so the log file lets every `zimbra.*` target through whatever its
//! global level.

use crate::ServiceError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The categories an account logger can name: the parts of mailvault that log
/// per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    /// Backups (each account's result in each session) and restores.
    #[serde(rename = "zimbra.backup")]
    Backup,
    /// Deliveries: sender, message id, size, where it was stored.
    #[serde(rename = "zimbra.lmtp")]
    Lmtp,
    /// IMAP logins, with the reason of a refusal.
    #[serde(rename = "zimbra.imap")]
    Imap,
    /// Administrative mailbox operations (zmmailbox, zmprov on the account).
    #[serde(rename = "zimbra.mailbox")]
    Mailbox,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Backup,
        Category::Lmtp,
        Category::Imap,
        Category::Mailbox,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Backup => "zimbra.backup",
            Category::Lmtp => "zimbra.lmtp",
            Category::Imap => "zimbra.imap",
            Category::Mailbox => "zimbra.mailbox",
        }
    }

    pub fn parse(s: &str) -> Result<Category, ServiceError> {
        Category::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                ServiceError::BadRequest(format!(
                    "unknown log category {s:?}: use one of {}",
                    Category::ALL.map(Category::name).join(", ")
                ))
            })
    }
}

/// Zimbra's (log4j's) levels, least verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }

    pub fn parse(s: &str) -> Result<Level, ServiceError> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                ServiceError::BadRequest(format!(
                    "unknown log level {s:?}: use one of {}",
                    Level::ALL.map(Level::name).join(", ")
                ))
            })
    }
}

/// One account logger, as `zmprov gal` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLogger {
    pub account: String,
    pub category: Category,
    pub level: Level,
}

/// Account (primary address, lower case) → category → level.
type Registry = BTreeMap<String, BTreeMap<Category, Level>>;

static LOGGERS: Mutex<Registry> = Mutex::new(BTreeMap::new());
/// Whether any account logger is set: the fast path of every call site.
static ANY: AtomicBool = AtomicBool::new(false);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    LOGGERS.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(account: &str) -> String {
    account.trim().to_ascii_lowercase()
}

/// Sets (or changes) the level of one account's category.
pub fn add(account: &str, category: Category, level: Level) {
    let mut r = registry();
    r.entry(key(account)).or_default().insert(category, level);
    ANY.store(true, Ordering::Release);
}

/// Removes one category of an account, every category of an account, or (no
/// account) every account logger; returns the loggers removed.
pub fn remove(account: Option<&str>, category: Option<Category>) -> Vec<AccountLogger> {
    let mut r = registry();
    let mut removed = Vec::new();
    let accounts: Vec<String> = match account {
        Some(a) => vec![key(a)],
        None => r.keys().cloned().collect(),
    };
    for a in accounts {
        let Some(cats) = r.get_mut(&a) else { continue };
        let picked: Vec<Category> = match category {
            Some(c) => cats.contains_key(&c).then_some(c).into_iter().collect(),
            None => cats.keys().copied().collect(),
        };
        for c in picked {
            if let Some(level) = cats.remove(&c) {
                removed.push(AccountLogger {
                    account: a.clone(),
                    category: c,
                    level,
                });
            }
        }
        if cats.is_empty() {
            r.remove(&a);
        }
    }
    ANY.store(!r.is_empty(), Ordering::Release);
    removed
}

/// The account loggers of one account, or of all accounts.
pub fn list(account: Option<&str>) -> Vec<AccountLogger> {
    let r = registry();
    let wanted = account.map(key);
    r.iter()
        .filter(|(a, _)| wanted.as_ref().is_none_or(|w| w == *a))
        .flat_map(|(a, cats)| {
            cats.iter().map(|(c, l)| AccountLogger {
                account: a.clone(),
                category: *c,
                level: *l,
            })
        })
        .collect()
}

/// Whether a line of `level` about `account` in `category` is wanted.
pub fn enabled(account: &str, category: Category, level: Level) -> bool {
    if !ANY.load(Ordering::Acquire) {
        return false;
    }
    registry()
        .get(&key(account))
        .and_then(|cats| cats.get(&category))
        .is_some_and(|set| *set >= level)
}

/// Logs a debug line about `account` in `category`, if an account logger wants it.
pub fn debug(account: &str, category: Category, message: std::fmt::Arguments<'_>) {
    if !enabled(account, category, Level::Debug) {
        return;
    }
    // The target must be a constant at each call site.
    match category {
        Category::Backup => {
            tracing::debug!(target: "zimbra.backup", account = %account, "{message}")
        }
        Category::Lmtp => tracing::debug!(target: "zimbra.lmtp", account = %account, "{message}"),
        Category::Imap => tracing::debug!(target: "zimbra.imap", account = %account, "{message}"),
        Category::Mailbox => {
            tracing::debug!(target: "zimbra.mailbox", account = %account, "{message}")
        }
    }
}

/// The target prefix of account logger lines: the log file lets these through
/// whatever its level, since only a set account logger emits them.
pub const TARGET_PREFIX: &str = "zimbra.";

/// Answers the account logger requests. The account must exist; the registry
/// keys it by its primary address, so an alias reaches the same logger.
pub fn execute(
    service: &crate::Service,
    req: crate::Request,
) -> Result<Vec<AccountLogger>, ServiceError> {
    use crate::Request;
    let primary = |name: &str| -> Result<String, ServiceError> {
        service
            .directory()
            .find_account(name)?
            .map(|a| a.email)
            .ok_or_else(|| ServiceError::NotFound(format!("no such account: {name}")))
    };
    let to = Ok;
    match req {
        Request::AddAccountLogger {
            account,
            category,
            level,
        } => {
            let category = Category::parse(&category)?;
            let level = Level::parse(&level)?;
            let account = primary(&account)?;
            add(&account, category, level);
            tracing::info!(
                target: "audit",
                "account logger {} {} set for {account}",
                category.name(),
                level.name()
            );
            to(list(Some(&account)))
        }
        Request::RemoveAccountLogger { account, category } => {
            let category = category.as_deref().map(Category::parse).transpose()?;
            // A deleted account's loggers can still be removed by name.
            let account = account.map(|a| primary(&a).unwrap_or(a));
            to(remove(account.as_deref(), category))
        }
        Request::GetAccountLoggers { account } => {
            let account = account.map(|a| primary(&a)).transpose()?;
            to(list(account.as_deref()))
        }
        other => Err(ServiceError::BadRequest(format!(
            "not an account logger request: {other:?}"
        ))),
    }
}

/// Reports a backup's per-account results to the `zimbra.backup` account loggers.
pub struct BackupWatch {
    session: Mutex<String>,
}

impl BackupWatch {
    pub fn new() -> BackupWatch {
        BackupWatch {
            session: Mutex::new(String::new()),
        }
    }
}

impl Default for BackupWatch {
    fn default() -> Self {
        BackupWatch::new()
    }
}

impl mv_backup::Progress for BackupWatch {
    fn session_started(&self, label: &mv_backup::Label, _accounts: u64) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = label.to_string();
    }
    fn account_done(&self, email: &str, ok: bool) {
        if !enabled(email, Category::Backup, Level::Debug) {
            return;
        }
        let session = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        debug(
            email,
            Category::Backup,
            format_args!(
                "backup session {session}: account {}",
                if ok { "completed" } else { "failed" }
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the registry is process-wide.
    #[test]
    fn levels_categories_and_removal() {
        assert!(!enabled("a@x.test", Category::Lmtp, Level::Debug));
        add("A@x.test", Category::Lmtp, Level::Debug);
        add("a@x.test", Category::Backup, Level::Info);
        add("b@x.test", Category::Imap, Level::Trace);
        assert!(enabled("a@X.test", Category::Lmtp, Level::Debug));
        assert!(enabled("a@x.test", Category::Lmtp, Level::Info));
        assert!(!enabled("a@x.test", Category::Lmtp, Level::Trace));
        assert!(!enabled("a@x.test", Category::Backup, Level::Debug));
        assert!(!enabled("a@x.test", Category::Imap, Level::Error));
        assert_eq!(list(Some("a@x.test")).len(), 2);
        assert_eq!(list(None).len(), 3);

        let gone = remove(Some("a@x.test"), Some(Category::Lmtp));
        assert_eq!(gone.len(), 1);
        assert!(!enabled("a@x.test", Category::Lmtp, Level::Error));
        assert!(enabled("b@x.test", Category::Imap, Level::Debug));
        assert_eq!(remove(None, None).len(), 2);
        assert!(list(None).is_empty());
        assert!(!ANY.load(Ordering::Acquire));

        assert!(Category::parse("zimbra.BACKUP").is_ok());
        let e = Category::parse("zimbra.nope").unwrap_err().to_string();
        assert!(e.contains("zimbra.backup, zimbra.lmtp"), "{e}");
        assert!(Level::parse("loud").is_err());
    }
}
