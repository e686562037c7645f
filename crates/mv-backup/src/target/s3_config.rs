//! How an S3 target is reached and tuned: [`S3Settings`] (from the local
//! configuration) and the `s3://bucket/prefix` spelling ([`parse_url`]).

use crate::error::{BackupError, Result};
use object_store::path::Path as ObjPath;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the store and tune the target. Built from the local configuration
/// and the standard `AWS_*` environment by [`S3Settings::from_local_config`].
#[derive(Clone)]
pub struct S3Settings {
    /// `http(s)://host:port` of an S3-compatible service; `None`: AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Permit a plain-http endpoint (test servers, a store on a private network).
    pub allow_http: bool,
    /// Local directory for snapshots and packs before they are uploaded.
    pub scratch: PathBuf,
    /// How long a lock lease lasts without a heartbeat (a crashed holder's lock is
    /// taken over after this).
    pub lease: Duration,
    /// How long a lock contender waits after writing its lease before reading it
    /// back; must exceed the longest time a PUT can take (see `s3_lease`).
    pub settle: Duration,
    /// Multipart part size; files up to this size go up in one PUT.
    pub part_size: usize,
    /// How long one request is retried (with exponential backoff) before the
    /// operation fails: an outage shorter than this costs time, not the backup.
    pub retry_budget: Duration,
    /// The runtime the requests run on: the caller's (the server's), whose
    /// workers drive them while the calling thread waits with
    /// `Handle::block_on` — so the calling thread must never be one of that
    /// runtime's workers (async code calls the target from `spawn_blocking`).
    /// `None` (an offline command): the target makes a current-thread runtime
    /// of its own, driven by whichever thread waits on a request.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("lease", &self.lease)
            .field("settle", &self.settle)
            .field("part_size", &self.part_size)
            .field("retry_budget", &self.retry_budget)
            .field(
                "runtime",
                &self.runtime.as_ref().map(|h| h.runtime_flavor()),
            )
            .finish_non_exhaustive()
    }
}

/// `s3_retry_seconds` when not set: five minutes of retries per request.
const DEFAULT_RETRY_SECONDS: u64 = 300;

/// S3's smallest part (except the last one of an upload).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// The largest part size the local config may ask for.
const MAX_PART_SIZE: usize = 512 << 20;

impl S3Settings {
    /// Defaults: AWS, credentials from the environment, 60 s leases, 2 s settle time,
    /// 8 MiB parts.
    pub fn new(scratch: PathBuf) -> S3Settings {
        S3Settings {
            endpoint: None,
            region: None,
            access_key: None,
            secret_key: None,
            allow_http: false,
            scratch,
            lease: Duration::from_secs(60),
            settle: Duration::from_secs(2),
            part_size: 8 << 20,
            retry_budget: Duration::from_secs(DEFAULT_RETRY_SECONDS),
            runtime: None,
        }
    }

    /// Reads the `s3_*` keys of the local configuration; an empty key leaves the
    /// matching `AWS_*` environment variable (read when the target opens) in charge.
    pub fn from_local_config(cfg: &mv_home::LocalConfig, scratch: PathBuf) -> Result<S3Settings> {
        let mut s = S3Settings::new(scratch);
        let text = |k: &str| {
            cfg.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        s.endpoint = text("s3_endpoint");
        s.region = text("s3_region");
        s.access_key = text("s3_access_key_id");
        s.secret_key = text("s3_secret_access_key");
        s.allow_http = cfg.get_bool("s3_allow_http");
        let num = |k: &str| -> Result<Option<u64>> {
            match text(k) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    BackupError::Invalid(format!(
                        "local config {k} = {v:?} is not a number; fix it with mailvault localconfig -e {k}=N"
                    ))
                }),
            }
        };
        if let Some(secs) = num("s3_lock_lease_seconds")? {
            if secs < 10 {
                return Err(BackupError::Invalid(
                    "local config s3_lock_lease_seconds must be at least 10".into(),
                ));
            }
            s.lease = Duration::from_secs(secs);
        }
        if let Some(secs) = num("s3_retry_seconds")? {
            s.retry_budget = Duration::from_secs(secs);
        }
        if let Some(ms) = num("s3_lock_settle_ms")? {
            s.settle = Duration::from_millis(ms);
        }
        if let Some(mib) = num("s3_part_size_mb")? {
            let bytes = mib
                .checked_mul(1 << 20)
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(usize::MAX);
            // Up to four parts are in memory at once: keep that bounded.
            if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&bytes) {
                return Err(BackupError::Invalid(
                    "local config s3_part_size_mb must be from 5 (S3's smallest part) to 512"
                        .into(),
                ));
            }
            s.part_size = bytes;
        }
        Ok(s)
    }
}

/// Splits `s3://bucket/prefix` into a bucket and an optional prefix.
pub(super) fn parse_url(spec: &str) -> Result<(String, Option<String>)> {
    let bad = |why: &str| {
        BackupError::Invalid(format!(
            "{spec}: {why}; an S3 target is written s3://BUCKET or s3://BUCKET/PREFIX"
        ))
    };
    let rest = spec
        .strip_prefix("s3://")
        .ok_or_else(|| bad("not an s3:// URL"))?;
    let (bucket, prefix) = match rest.split_once('/') {
        Some((b, p)) => (b, p.trim_end_matches('/')),
        None => (rest, ""),
    };
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        return Err(bad(
            "the bucket name must be 3-63 lowercase letters, digits, '-' or '.'",
        ));
    }
    if prefix.is_empty() {
        return Ok((bucket.to_string(), None));
    }
    if prefix
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || ObjPath::parse(c).is_err())
    {
        return Err(bad("the prefix has an empty, '.' or '..' component"));
    }
    Ok((bucket.to_string(), Some(prefix.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        assert_eq!(parse_url("s3://bk-1").unwrap(), ("bk-1".into(), None));
        assert_eq!(
            parse_url("s3://bk-1/a/b/").unwrap(),
            ("bk-1".into(), Some("a/b".into()))
        );
        for bad in [
            "s3://",
            "s3://A",
            "s3://bk/a//b",
            "s3://bk/../x",
            "s3://-bk",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.contains("s3://BUCKET"), "{bad}: {e}");
        }
    }

    #[test]
    fn settings_from_the_local_config() {
        let mut cfg = mv_home::LocalConfig::defaults();
        cfg.set("s3_endpoint", "http://127.0.0.1:9000").unwrap();
        cfg.set("s3_part_size_mb", "16").unwrap();
        cfg.set("s3_allow_http", "true").unwrap();
        let s = S3Settings::from_local_config(&cfg, std::env::temp_dir()).unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.part_size, 16 << 20);
        assert!(s.allow_http);
        assert_eq!(s.access_key, None, "empty: the environment decides");
        assert!(!format!("{s:?}").contains("secret_key"));
        for (k, v) in [
            ("s3_part_size_mb", "4"),
            ("s3_part_size_mb", "99999999999999"),
            ("s3_lock_lease_seconds", "5"),
            ("s3_lock_settle_ms", "soon"),
        ] {
            // As a file edited by hand holds it (`localconfig -e` refuses some).
            let c = mv_home::LocalConfig::parse(
                &format!("{}{k} = {v}\n", cfg.render()),
                std::path::Path::new("localconfig.conf"),
            )
            .unwrap();
            let e = S3Settings::from_local_config(&c, std::env::temp_dir()).unwrap_err();
            assert!(e.to_string().contains(k), "{k}={v}: {e}");
        }
    }
}
