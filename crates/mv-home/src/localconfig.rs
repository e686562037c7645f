//! Local configuration (`zmlocalconfig`): per-host key/value settings with a default
//! for every key. Stored as `key = value` lines in `conf/localconfig.conf`.

use crate::durable::write_atomic_mode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A known key: its default, whether it is a secret (hidden unless `-s`), and what it means.
pub struct KeyInfo {
    pub name: &'static str,
    pub default: &'static str,
    pub secret: bool,
    pub description: &'static str,
}

/// Every key the tools read, with its default.
pub const KNOWN_KEYS: &[KeyInfo] = &[
    KeyInfo {
        name: "backup_archived_redolog_keep_time",
        default: "3600",
        secret: false,
        description: "seconds an archived redo log stays in redolog/archive after a backup (incremental or full) copied it",
    },
    KeyInfo {
        name: "backup_zip_copier_private_blob_zips",
        default: "4",
        secret: false,
        description: "number of blob pack files written in parallel per backup",
    },
    KeyInfo {
        name: "backup_disable_shared_blobs",
        default: "false",
        secret: false,
        description: "store every blob per account instead of once per target",
    },
    KeyInfo {
        name: "backup_object_store_secrets",
        default: "false",
        secret: false,
        description: "put the server's secrets (secret local config values, admin token, TLS key) into backups on an s3:// target too",
    },
    KeyInfo {
        name: "backup_target_roots",
        default: "",
        secret: false,
        description: "colon-separated directories under which a backup may make a new local target (empty: anywhere not already holding files)",
    },
    KeyInfo {
        name: "zmdisklog_warn_threshold",
        default: "85",
        secret: false,
        description: "disk usage percentage that raises a warning",
    },
    KeyInfo {
        name: "zmdisklog_critical_threshold",
        default: "95",
        secret: false,
        description: "disk usage percentage that raises a critical alert",
    },
    KeyInfo {
        name: "zmstat_df_excludes",
        default: "",
        secret: false,
        description: "colon-separated mount points the disk monitor ignores",
    },
    KeyInfo {
        name: "zmstat_disk_interval",
        default: "600",
        secret: false,
        description: "seconds between two disk usage checks of the server",
    },
    KeyInfo {
        name: "dumpster_sweep_seconds",
        default: "300",
        secret: false,
        description: "seconds between two sweeps removing dumpster messages past zimbraMailDumpsterLifetime",
    },
    KeyInfo {
        name: "backup_report_retry_seconds",
        default: "60",
        secret: false,
        description: "first delay before a failed report email is sent again (doubles each try)",
    },
    KeyInfo {
        name: "lmtp_bind_address",
        default: "127.0.0.1",
        secret: false,
        description: "address the LMTP listener binds",
    },
    KeyInfo {
        name: "lmtp_bind_port",
        default: "7025",
        secret: false,
        description: "LMTP port",
    },
    KeyInfo {
        name: "socketmap_enabled",
        default: "false",
        secret: false,
        description: "serve Postfix lookup tables (socketmap: domain, mailbox, alias) so Postfix refuses unknown recipients and expands lists itself",
    },
    KeyInfo {
        name: "socketmap_bind_address",
        default: "127.0.0.1",
        secret: false,
        description: "address the Postfix socketmap listener binds",
    },
    KeyInfo {
        name: "socketmap_bind_port",
        default: "7026",
        secret: false,
        description: "Postfix socketmap port",
    },
    KeyInfo {
        name: "socketmap_max_connections",
        default: "100",
        secret: false,
        description: "concurrent socketmap connections; one more is closed at once",
    },
    KeyInfo {
        name: "admin_bind_address",
        default: "127.0.0.1",
        secret: false,
        description: "address the admin API binds",
    },
    KeyInfo {
        name: "admin_bind_port",
        default: "7071",
        secret: false,
        description: "admin API port",
    },
    KeyInfo {
        name: "admin_client_timeout_seconds",
        default: "600",
        secret: false,
        description: "longest wait of a command-line tool for one answer of the running server (a long operation runs as a job and is followed without limit; a lost server is waited for this long)",
    },
    KeyInfo {
        name: "mailbox_import_max_size_mb",
        default: "65536",
        secret: false,
        description: "largest mailbox archive (postRestURL \"//?fmt=tgz\") an import accepts, in MiB; it is spooled to a private file under db/ while checked",
    },
    KeyInfo {
        name: "imap_bind_address",
        default: "127.0.0.1",
        secret: false,
        description: "address IMAP binds",
    },
    KeyInfo {
        name: "imap_bind_port",
        default: "7143",
        secret: false,
        description: "IMAP port",
    },
    KeyInfo {
        name: "imaps_bind_port",
        default: "7993",
        secret: false,
        description: "IMAPS port",
    },
    KeyInfo {
        name: "imap_cleartext_login_enabled",
        default: "false",
        secret: false,
        description: "allow IMAP LOGIN/AUTHENTICATE without TLS (only for trusted networks and tests)",
    },
    KeyInfo {
        name: "imap_max_connections",
        default: "200",
        secret: false,
        description: "concurrent IMAP connections (plain and IMAPS together)",
    },
    KeyInfo {
        name: "imap_max_message_size",
        default: "52428800",
        secret: false,
        description: "largest literal (APPENDed message) IMAP accepts, in bytes",
    },
    KeyInfo {
        name: "imap_login_free_failures",
        default: "3",
        secret: false,
        description: "failed IMAP logins (per client address and per account, 10 min) before each further attempt is delayed",
    },
    KeyInfo {
        name: "imap_login_failure_delay_ms",
        default: "1000",
        secret: false,
        description: "first IMAP login delay after the free failures; doubles per further failure",
    },
    KeyInfo {
        name: "imap_login_failure_max_delay_ms",
        default: "15000",
        secret: false,
        description: "longest IMAP login delay after failed logins",
    },
    KeyInfo {
        name: "imap_login_failures_per_connection",
        default: "3",
        secret: false,
        description: "failed logins after which an IMAP connection is closed",
    },
    KeyInfo {
        name: "mailbox_lmtp_max_message_size",
        default: "52428800",
        secret: false,
        description: "largest message LMTP accepts, in bytes",
    },
    KeyInfo {
        name: "mailbox_lmtp_max_connections",
        default: "200",
        secret: false,
        description: "concurrent LMTP connections",
    },
    KeyInfo {
        name: "lmtp_add_return_path",
        default: "true",
        secret: false,
        description: "LMTP delivery puts a Return-Path: header with the envelope sender before the message",
    },
    KeyInfo {
        name: "lmtp_add_delivered_to",
        default: "true",
        secret: false,
        description: "LMTP delivery puts a Delivered-To: header with the recipient before the message",
    },
    KeyInfo {
        name: "lmtp_add_received",
        default: "true",
        secret: false,
        description: "LMTP delivery puts a Received: header (client, this server, id, recipient, date) before the message",
    },
    KeyInfo {
        name: "s3_access_key_id",
        default: "",
        secret: true,
        description: "access key for s3:// backup targets (else AWS_ACCESS_KEY_ID)",
    },
    KeyInfo {
        name: "s3_secret_access_key",
        default: "",
        secret: true,
        description: "secret key for s3:// backup targets (else AWS_SECRET_ACCESS_KEY)",
    },
    KeyInfo {
        name: "s3_endpoint",
        default: "",
        secret: false,
        description: "endpoint URL for s3:// backup targets (else AWS_ENDPOINT_URL)",
    },
    KeyInfo {
        name: "s3_region",
        default: "",
        secret: false,
        description: "region for s3:// backup targets (else AWS_REGION, else us-east-1)",
    },
    KeyInfo {
        name: "s3_allow_http",
        default: "false",
        secret: false,
        description: "allow a plain http:// s3_endpoint (else AWS_ALLOW_HTTP)",
    },
    KeyInfo {
        name: "s3_lock_lease_seconds",
        default: "60",
        secret: false,
        description: "how long an s3:// target's lock lease lasts without a heartbeat (a crashed holder's lock is taken over after it)",
    },
    KeyInfo {
        name: "s3_lock_settle_ms",
        default: "2000",
        secret: false,
        description: "how long a backup waits after writing an s3:// lock lease before reading it back; must exceed the slowest PUT",
    },
    KeyInfo {
        name: "s3_retry_seconds",
        default: "300",
        secret: false,
        description: "how long one s3:// request is retried (exponential backoff, up to 15 s apart) before the backup or restore fails",
    },
    KeyInfo {
        name: "s3_part_size_mb",
        default: "8",
        secret: false,
        description: "multipart upload part size for s3:// targets, in MiB (5 to 512)",
    },
    KeyInfo {
        name: "mailbox_open_handles",
        default: "256",
        secret: false,
        description: "mailbox databases kept open at once (three files each); past it the least recently used idle ones are closed",
    },
    KeyInfo {
        name: "log_level",
        default: "info",
        secret: false,
        description: "what log/mailbox.log records: error, warn, info (audit lines) or debug, or a filter such as info,mv_redo=debug; MAILVAULT_LOG overrides it",
    },
    KeyInfo {
        name: "log_format",
        default: "text",
        secret: false,
        description: "log/mailbox.log lines as text or json (one JSON object per line)",
    },
    KeyInfo {
        name: "log_max_size_mb",
        default: "100",
        secret: false,
        description: "the server starts a new log/mailbox.log past this size in MiB, and every day (0: by day only)",
    },
    KeyInfo {
        name: "log_keep",
        default: "7",
        secret: false,
        description: "rotated log files kept (mailbox.log.YYYY-MM-DD); older ones are removed",
    },
];

pub fn key_info(name: &str) -> Option<&'static KeyInfo> {
    KNOWN_KEYS.iter().find(|k| k.name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum LocalConfigError {
    #[error("cannot read local config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write local config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("local config {path} line {line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("invalid local config key {0:?}: keys are letters, digits, '_', '.' and '-'")]
    BadKey(String),
    #[error("local config value for {0} must be a single line")]
    BadValue(String),
    /// A known key whose value is not of its kind (see [`KeyInfo::kind`]).
    #[error(
        "local config {key} = {value:?} is not {expected}; fix it with \
         `mailvault localconfig -e {key}=VALUE` (default {default})"
    )]
    Malformed {
        key: String,
        value: String,
        expected: &'static str,
        default: &'static str,
    },
}

/// What a known key's value must be, as its default shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A whole number ≥ 0.
    Number,
    /// true/false (also yes/no, 1/0).
    Flag,
    Text,
}

impl KeyInfo {
    pub fn kind(&self) -> KeyKind {
        if matches!(self.default, "true" | "false") {
            KeyKind::Flag
        } else if !self.default.is_empty() && self.default.bytes().all(|b| b.is_ascii_digit()) {
            KeyKind::Number
        } else {
            KeyKind::Text
        }
    }

    /// Checks `value` against the key's kind; an empty value means the default.
    pub fn check(&self, value: &str) -> Result<(), LocalConfigError> {
        let value = value.trim();
        let ok = value.is_empty()
            || match self.kind() {
                KeyKind::Number => value.parse::<u64>().is_ok(),
                KeyKind::Flag => matches!(
                    value.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "1" | "0"
                ),
                KeyKind::Text => true,
            };
        if ok {
            return Ok(());
        }
        Err(LocalConfigError::Malformed {
            key: self.name.to_string(),
            value: value.to_string(),
            expected: match self.kind() {
                KeyKind::Number => "a whole number",
                _ => "true or false",
            },
            default: self.default,
        })
    }
}

/// The local configuration: explicit values over built-in defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalConfig {
    values: BTreeMap<String, String>,
}

impl LocalConfig {
    /// Every known key set to its default.
    pub fn defaults() -> Self {
        let values = KNOWN_KEYS
            .iter()
            .map(|k| (k.name.to_string(), k.default.to_string()))
            .collect();
        Self { values }
    }

    /// Parses `key = value` lines; `#` starts a comment line. Unknown keys are kept
    /// (administrators add their own, as with zmlocalconfig).
    pub fn parse(text: &str, path: &Path) -> Result<Self, LocalConfigError> {
        let mut cfg = Self::defaults();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = |reason: &str| LocalConfigError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.into(),
            };
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| syntax("expected key = value"))?;
            let k = k.trim();
            validate_key(k).map_err(|_| syntax("invalid key"))?;
            cfg.values.insert(k.to_string(), v.trim().to_string());
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, LocalConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| LocalConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn render(&self) -> String {
        let mut out = String::from(
            "# mailvault local configuration: edit with `mailvault localconfig -e key=value`\n",
        );
        for (k, v) in &self.values {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out
    }

    pub fn save(&self, path: &Path) -> Result<(), LocalConfigError> {
        // 0600: the file may hold secrets (object storage credentials).
        write_atomic_mode(path, self.render().as_bytes(), 0o600).map_err(|source| {
            LocalConfigError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every known key's value checked against its kind: a server refuses to
    /// start on a malformed one rather than run on a silent default.
    pub fn check(&self) -> Result<(), LocalConfigError> {
        for (k, v) in &self.values {
            if let Some(info) = key_info(k) {
                info.check(v)?;
            }
        }
        Ok(())
    }

    /// A value parsed as a number, falling back to the key's default when missing or
    /// unparsable.
    pub fn get_u64(&self, key: &str) -> u64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .or_else(|| key_info(key).and_then(|k| k.default.parse().ok()))
            .unwrap_or(0)
    }

    pub fn get_bool(&self, key: &str) -> bool {
        matches!(
            self.get(key).map(str::to_ascii_lowercase).as_deref(),
            Some("true" | "1" | "yes")
        )
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), LocalConfigError> {
        validate_key(key)?;
        if value.contains('\n') || value.contains('\r') {
            return Err(LocalConfigError::BadValue(key.to_string()));
        }
        if let Some(info) = key_info(key) {
            info.check(value)?;
        }
        self.values
            .insert(key.to_string(), value.trim().to_string());
        Ok(())
    }

    /// Unsets a key: a known key returns to its default, an unknown one disappears.
    pub fn unset(&mut self, key: &str) {
        match key_info(key) {
            Some(k) => {
                self.values.insert(key.to_string(), k.default.to_string());
            }
            None => {
                self.values.remove(key);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn validate_key(k: &str) -> Result<(), LocalConfigError> {
    if k.is_empty()
        || !k
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err(LocalConfigError::BadKey(k.chars().take(80).collect()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_malformed_known_value_is_refused_and_named() {
        let mut cfg = LocalConfig::defaults();
        let e = cfg.set("lmtp_bind_port", "70x25").unwrap_err().to_string();
        assert!(
            e.contains("lmtp_bind_port") && e.contains("whole number"),
            "{e}"
        );
        assert!(cfg.set("imap_cleartext_login_enabled", "maybe").is_err());
        cfg.set("imap_cleartext_login_enabled", "TRUE").unwrap();
        cfg.set("lmtp_bind_port", "").unwrap();
        cfg.set("my_own_key", "anything").unwrap();
        // A file edited by hand is checked as a whole.
        let parsed =
            LocalConfig::parse("log_keep = seven\n", Path::new("localconfig.conf")).unwrap();
        let e = parsed.check().unwrap_err().to_string();
        assert!(
            e.contains("log_keep = \"seven\"") && e.contains("default 7"),
            "{e}"
        );
        assert!(LocalConfig::defaults().check().is_ok());
    }

    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lc.conf");
        let mut cfg = LocalConfig::defaults();
        cfg.set("zmdisklog_warn_threshold", "70").unwrap();
        cfg.set("custom.key", "a = b").unwrap();
        cfg.save(&p).unwrap();
        let back = LocalConfig::load(&p).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.get("custom.key"), Some("a = b"));
        assert_eq!(back.get_u64("zmdisklog_warn_threshold"), 70);
        let mut back = back;
        back.unset("zmdisklog_warn_threshold");
        assert_eq!(back.get_u64("zmdisklog_warn_threshold"), 85);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = LocalConfig::parse("a = 1\nnot a pair\n", Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(LocalConfig::defaults().set("bad key", "v").is_err());
        assert!(LocalConfig::defaults().set("k", "a\nb").is_err());
    }
}
