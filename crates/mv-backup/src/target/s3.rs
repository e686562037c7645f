//! A target in an S3-compatible object store: `s3://bucket/prefix`.
//!
//! Talks to the store through `object_store` on a small internal tokio runtime. The
//! [`Target`] trait is synchronous and its callers may themselves run on another
//! runtime's threads (the server), where `block_on` would panic; so every request is
//! spawned onto our runtime and its result waited for on a channel.
//!
//! Layout under `<prefix>/` (the same object paths as a filesystem target; markers
//! replace the directory renames S3 does not have):
//!
//! ```text
//! backup.lock                     the lease: holder, expiry (see the `s3_lease` module)
//! accounts.xml, packs/<xx>/...    as on a filesystem
//! sessions/<label>/...            session files, written in place
//! sessions/<label>/session.xml    written last: from then on the session exists
//! tmp/<label>.pending             written first by begin_session, deleted after commit
//! tmp/<label>.abort               an abort request
//! retired/<label>                 a retired session: its session.xml is gone, its files
//!                                 are being purged
//! ```
//!
//! A PUT is atomic and durable when it returns (S3 is read-after-write consistent),
//! so `put` is one PUT and files larger than one part go up as a multipart upload,
//! streamed from disk a part at a time (the object appears when the upload
//! completes). S3 has no free space to measure: [`Target::free_space`] reports
//! `None`, and a `zimbraBackupMinFreeSpace` setting never stops an S3 backup.
//! Multipart uploads a crash interrupts are not visible objects; a bucket lifecycle
//! rule "abort incomplete multipart uploads after N days" reclaims their parts.

use super::s3_lease::{self, Lease};
use super::{ObjectInfo, Space, Target, TargetLock};
use crate::error::{BackupError, Result};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, ObjectStore, PutMultipartOptions, PutOptions, PutPayload};
use std::collections::BTreeSet;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PENDING_SUFFIX: &str = ".pending";
const RETIRED_DIR: &str = "retired";
const RETIRED_PREFIX: &str = "TO_DELETE-";
/// Part uploads in flight at once for one file (memory: this many parts).
const PARTS_IN_FLIGHT: usize = 4;

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

/// Why a run stops when its lock could not be renewed in time.
const LEASE_RAN_OUT: &str = "the lock's lease could not be renewed in time (the S3 store did not answer); the run stops writing so that no other run can overlap it — run it again";

/// Shared by the target and its lock's heartbeat thread.
pub(super) struct Client {
    pub(super) store: Arc<dyn ObjectStore>,
    /// While this process holds the target's lock: when its lease runs out
    /// (UNIX milliseconds; 0 when no lock is held). No request of the run may
    /// outlive it: once another host may take the lock over, this one stops.
    pub(super) lease_until: std::sync::atomic::AtomicU64,
    /// `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    url: String,
    prefix: Option<String>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping a runtime from inside another one (the server's) would panic.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Client {
    /// Runs a request on the internal runtime and waits for it.
    pub(super) fn run<T, F>(&self, what: &str, fut: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let rt = self.rt.as_ref().expect("runtime present until drop");
        // Renewals and the release too: past the lease they cannot help, and a
        // release must not wait out the retry budget.
        let left = self.lease_left()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let r = match left {
                None => fut.await,
                Some(left) => match tokio::time::timeout(left, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(object_store::Error::Generic {
                        store: "S3",
                        source: LEASE_RAN_OUT.into(),
                    }),
                },
            };
            let _ = tx.send(r);
        });
        match rx.recv() {
            Ok(r) => r.map_err(|e| self.error(what, e)),
            Err(_) => Err(self.error(
                what,
                object_store::Error::Generic {
                    store: "S3",
                    source: "the S3 client runtime stopped".into(),
                },
            )),
        }
    }

    /// How long the lock's lease still runs (`None`: no lock held), or the
    /// error that stops the run once it ran out.
    fn lease_left(&self) -> Result<Option<Duration>> {
        let until = self.lease_until.load(std::sync::atomic::Ordering::Acquire);
        if until == 0 {
            return Ok(None);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if now >= until {
            return Err(BackupError::Invalid(format!(
                "{}: {LEASE_RAN_OUT}",
                self.url
            )));
        }
        Ok(Some(Duration::from_millis(until - now)))
    }

    fn error(&self, what: &str, e: object_store::Error) -> BackupError {
        let text = format!("{e} {:?}", e);
        if text.contains("NoSuchBucket") {
            return BackupError::Invalid(format!(
                "{}: the bucket does not exist (create it, or fix the bucket name in the s3:// URL)",
                self.url
            ));
        }
        if text.contains(LEASE_RAN_OUT) {
            return BackupError::Invalid(format!("{}: {LEASE_RAN_OUT}", self.url));
        }
        match e {
            object_store::Error::NotFound { .. } => BackupError::NotFound(what.to_string()),
            e => BackupError::Io {
                path: format!("{}/{what}", self.url),
                source: std::io::Error::other(e.to_string()),
            },
        }
    }

    /// The store key of a target-relative path (validated like a filesystem path).
    pub(super) fn key(&self, rel: &str) -> Result<ObjPath> {
        if rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(BackupError::Invalid(format!(
                "invalid path inside the backup target: {rel:?}"
            )));
        }
        let full = match &self.prefix {
            Some(p) => format!("{p}/{rel}"),
            None => rel.to_string(),
        };
        ObjPath::parse(&full).map_err(|e| {
            BackupError::Invalid(format!(
                "invalid path inside the backup target: {rel:?}: {e}"
            ))
        })
    }

    fn rel_of(&self, key: &ObjPath) -> Option<String> {
        let k = key.as_ref();
        match &self.prefix {
            Some(p) => k
                .strip_prefix(p.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .map(String::from),
            None => Some(k.to_string()),
        }
    }

    pub(super) fn get_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        match self.run(rel, async move {
            store
                .get_opts(&key, GetOptions::default())
                .await?
                .bytes()
                .await
        }) {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(BackupError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn put(&self, rel: &str, data: Vec<u8>) -> Result<()> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        self.run(rel, async move {
            store
                .put_opts(&key, PutPayload::from(data), PutOptions::default())
                .await
                .map(|_| ())
        })
    }

    /// A conditional PUT (`If-None-Match: *`): `Ok(false)` when the object
    /// exists already.
    pub(super) fn put_new(&self, rel: &str, data: Vec<u8>) -> Result<bool> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        self.run(rel, async move {
            let opts = PutOptions {
                mode: object_store::PutMode::Create,
                ..Default::default()
            };
            match store.put_opts(&key, PutPayload::from(data), opts).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    pub(super) fn delete(&self, rel: &str) -> Result<()> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        // One location through delete_stream (the object-safe delete).
        let deleted = self.run(rel, async move {
            let once = futures_util::stream::once(async move { Ok::<_, object_store::Error>(key) })
                .boxed();
            store.delete_stream(once).try_collect::<Vec<_>>().await
        });
        match deleted.map(|_| ()) {
            Ok(()) | Err(BackupError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every object under the directory `dir` (relative, no trailing slash; empty:
    /// the whole target).
    fn list_dir(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let key = if dir.is_empty() {
            self.prefix.as_deref().map(ObjPath::from)
        } else {
            Some(self.key(dir)?)
        };
        let store = self.store.clone();
        let metas = self.run(dir, async move {
            store.list(key.as_ref()).try_collect::<Vec<_>>().await
        })?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|m| {
                self.rel_of(&m.location)
                    .map(|path| ObjectInfo { path, size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Names directly under the directory `dir` (one level, like `ls`).
    fn child_names(&self, dir: &str) -> Result<BTreeSet<String>> {
        let key = self.key(dir)?;
        let store = self.store.clone();
        let listing = self.run(
            dir,
            async move { store.list_with_delimiter(Some(&key)).await },
        )?;
        let mut out = BTreeSet::new();
        for p in listing
            .common_prefixes
            .iter()
            .chain(listing.objects.iter().map(|o| &o.location))
        {
            if let Some(name) = p.filename() {
                out.insert(name.to_string());
            }
        }
        Ok(out)
    }

    /// Removes these objects (relative paths), in bulk requests (up to 1000 keys
    /// each). `what` names the operation in errors.
    fn delete_many(&self, what: &str, paths: Vec<String>) -> Result<()> {
        let keys = paths
            .iter()
            .map(|p| self.key(p))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let result = self.run(what, async move {
            let stream =
                futures_util::stream::iter(keys.into_iter().map(Ok::<_, object_store::Error>))
                    .boxed();
            store.delete_stream(stream).try_collect::<Vec<_>>().await
        });
        match result {
            Ok(_) | Err(BackupError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes every object under the directory `dir`.
    fn delete_tree(&self, dir: &str) -> Result<()> {
        let paths = self.list_dir(dir)?.into_iter().map(|o| o.path).collect();
        self.delete_many(dir, paths)
    }
}

/// An `s3://bucket/prefix` target.
pub struct S3Target {
    client: Arc<Client>,
    settings: S3Settings,
    /// This handle's scratch directory, created on first use, removed on drop.
    scratch: std::sync::OnceLock<PathBuf>,
    written: AtomicU64,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("url", &self.client.url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Drop for S3Target {
    fn drop(&mut self) {
        if let Some(dir) = self.scratch.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Splits `s3://bucket/prefix` into a bucket and an optional prefix.
pub fn parse_url(spec: &str) -> Result<(String, Option<String>)> {
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

impl S3Target {
    /// Opens `s3://bucket/prefix` (nothing is written until a backup runs).
    pub fn open(spec: &str, settings: S3Settings) -> Result<S3Target> {
        let (bucket, prefix) = parse_url(spec)?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        if let Some(e) = &settings.endpoint {
            builder = builder.with_endpoint(e);
        }
        if let Some(r) = &settings.region {
            builder = builder.with_region(r);
        }
        if let Some(k) = &settings.access_key {
            builder = builder.with_access_key_id(k);
        }
        if let Some(k) = &settings.secret_key {
            builder = builder.with_secret_access_key(k);
        }
        if settings.allow_http {
            builder = builder.with_allow_http(true);
        }
        // Without credentials the client would ask the cloud's instance metadata
        // service (169.254.169.254) for some: say what is missing instead.
        let has_key = builder
            .get_config_value(&AmazonS3ConfigKey::AccessKeyId)
            .is_some_and(|k| !k.is_empty());
        let other_source = [
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if !has_key && !other_source {
            return Err(BackupError::Invalid(format!(
                "{spec}: no S3 endpoint or credentials configured: set s3_endpoint, \
                 s3_access_key_id and s3_secret_access_key with mailvault localconfig -e \
                 (or the AWS_* environment variables)"
            )));
        }
        builder = builder.with_retry(object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: usize::MAX,
            retry_timeout: settings.retry_budget,
        });
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .unwrap_or_default();
        let http_allowed = builder
            .get_config_value(&AmazonS3ConfigKey::Client(
                object_store::ClientConfigKey::AllowHttp,
            ))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if endpoint.starts_with("http://") && !http_allowed {
            return Err(BackupError::Invalid(format!(
                "{spec}: the S3 endpoint {endpoint} is plain http; allow it with \
                 mailvault localconfig -e s3_allow_http=true (or AWS_ALLOW_HTTP=true), \
                 or use https"
            )));
        }
        // The HTTP client takes rustls's process-wide provider, and the build
        // links ring only (no aws-lc-rs): install it unless one is already
        // (the error then says so, and the installed one serves).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = builder.build().map_err(|e| {
            BackupError::Invalid(format!(
                "{spec}: cannot configure the S3 client: {e} (set s3_endpoint, s3_region, \
                 s3_access_key_id, s3_secret_access_key with mailvault localconfig -e, or the \
                 AWS_* environment variables)"
            ))
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mv-s3")
            .enable_all()
            .build()
            .map_err(BackupError::io("S3 client runtime"))?;
        let url = match &prefix {
            Some(p) => format!("s3://{bucket}/{p}"),
            None => format!("s3://{bucket}"),
        };
        Ok(S3Target {
            client: Arc::new(Client {
                store: Arc::new(store),
                lease_until: std::sync::atomic::AtomicU64::new(0),
                rt: Some(rt),
                url,
                prefix,
            }),
            settings,
            scratch: std::sync::OnceLock::new(),
            written: AtomicU64::new(0),
        })
    }

    /// True if anything of a backup target is there (`accounts.xml` or a session).
    pub fn exists(&self) -> Result<bool> {
        if self.size("accounts.xml")?.is_some() {
            return Ok(true);
        }
        Ok(!self.client.child_names("sessions")?.is_empty())
    }

    /// Uploads a local file: one PUT up to a part's size, else a multipart upload
    /// fed from disk a part at a time (at most [`PARTS_IN_FLIGHT`] parts in memory).
    fn upload_file(&self, rel: &str, local: &Path) -> Result<u64> {
        let key = self.client.key(rel)?;
        let mut file = std::fs::File::open(local).map_err(BackupError::io(local.display()))?;
        let size = file
            .metadata()
            .map_err(BackupError::io(local.display()))?
            .len();
        let part = self.settings.part_size;
        if size <= part as u64 {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data)
                .map_err(BackupError::io(local.display()))?;
            self.client.put(rel, data)?;
            return Ok(size);
        }
        let store = self.client.store.clone();
        let k = key.clone();
        let mut upload = self.client.run(rel, async move {
            store
                .put_multipart_opts(&k, PutMultipartOptions::default())
                .await
        })?;
        let rt = self.client.rt.as_ref().expect("runtime present until drop");
        let mut in_flight = std::collections::VecDeque::new();
        let result = (|| -> Result<()> {
            loop {
                let mut buf = Vec::with_capacity(part);
                (&mut file)
                    .take(part as u64)
                    .read_to_end(&mut buf)
                    .map_err(BackupError::io(local.display()))?;
                if buf.is_empty() {
                    break;
                }
                if in_flight.len() >= PARTS_IN_FLIGHT {
                    let h: tokio::task::JoinHandle<object_store::Result<()>> =
                        in_flight.pop_front().expect("non-empty");
                    self.wait_part(rel, h)?;
                }
                in_flight.push_back(rt.spawn(upload.put_part(PutPayload::from(buf))));
            }
            while let Some(h) = in_flight.pop_front() {
                self.wait_part(rel, h)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.client
                    .run(rel, async move { upload.complete().await.map(|_| ()) })?;
                Ok(size)
            }
            Err(e) => {
                for h in in_flight {
                    h.abort();
                }
                let _ = self.client.run(rel, async move { upload.abort().await });
                Err(e)
            }
        }
    }

    fn wait_part(
        &self,
        rel: &str,
        h: tokio::task::JoinHandle<object_store::Result<()>>,
    ) -> Result<()> {
        self.client.run(rel, async move {
            h.await.unwrap_or_else(|e| {
                Err(object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                })
            })
        })
    }

    fn session_rel(label: &str, rel: &str) -> String {
        format!("sessions/{label}/{rel}")
    }

    fn has_session_xml(&self, label: &str) -> Result<bool> {
        Ok(self
            .size(&Self::session_rel(label, "session.xml"))?
            .is_some())
    }

    /// Labels with a `tmp/<label>.pending` marker (whether or not they committed).
    fn pending_markers(&self) -> Result<Vec<String>> {
        Ok(self
            .client
            .child_names("tmp")?
            .into_iter()
            .filter_map(|n| n.strip_suffix(PENDING_SUFFIX).map(String::from))
            .filter(|n| crate::label::Label::parse(n).is_some())
            .collect())
    }

    fn retired_labels(&self) -> Result<BTreeSet<String>> {
        self.client.child_names(RETIRED_DIR)
    }
}

impl Target for S3Target {
    fn url(&self) -> String {
        self.client.url.clone()
    }

    fn put(&self, path: &str, data: &[u8]) -> Result<()> {
        self.client.put(path, data.to_vec())?;
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn put_new(&self, path: &str, data: &[u8]) -> Result<bool> {
        let created = self.client.put_new(path, data.to_vec())?;
        if created {
            self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(created)
    }

    fn put_file(&self, path: &str, local: &Path) -> Result<()> {
        let n = self.upload_file(path, local)?;
        std::fs::remove_file(local).map_err(BackupError::io(local.display()))?;
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        self.client
            .get_opt(path)?
            .ok_or_else(|| BackupError::NotFound(path.to_string()))
    }

    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| BackupError::corrupt(path, format!("range {offset}+{len} overflows")))?;
        let truncated = |size: u64| {
            BackupError::corrupt(
                path,
                format!("truncated: bytes {offset}..{end} wanted, the object has {size}"),
            )
        };
        if len == 0 {
            return match self.size(path)? {
                None => Err(BackupError::NotFound(path.to_string())),
                Some(size) if size < offset => Err(truncated(size)),
                Some(_) => Ok(Vec::new()),
            };
        }
        let key = self.client.key(path)?;
        let store = self.client.store.clone();
        match self.client.run(path, async move {
            let opts = GetOptions::new().with_range(Some(offset..end));
            store.get_opts(&key, opts).await?.bytes().await
        }) {
            Ok(b) if b.len() as u64 == len => Ok(b.to_vec()),
            Ok(b) => Err(truncated(offset + b.len() as u64)),
            Err(BackupError::NotFound(p)) => Err(BackupError::NotFound(p)),
            // A range past the end is refused (416) or reported as an error by the
            // client: say "truncated" when that is what happened.
            Err(e) => match self.size(path)? {
                Some(size) if size < end => Err(truncated(size)),
                _ => Err(e),
            },
        }
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        let key = self.client.key(path)?;
        let store = self.client.store.clone();
        let head = self.client.run(path, async move {
            let opts = GetOptions::new().with_head(true);
            Ok(store.get_opts(&key, opts).await?.meta)
        });
        match head {
            Ok(m) => Ok(Some(m.size)),
            Err(BackupError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // List the deepest directory the prefix names completely, then filter.
        let dir = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let mut out = self.client.list_dir(dir)?;
        out.retain(|o| o.path.starts_with(prefix));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.client.delete(path)
    }

    fn begin_session(&self, label: &str) -> Result<()> {
        self.client
            .put(&format!("tmp/{label}{PENDING_SUFFIX}"), Vec::new())
    }

    fn session_put(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        self.put(&Self::session_rel(label, rel), data)
    }

    fn session_put_file(&self, label: &str, rel: &str, local: &Path) -> Result<()> {
        self.put_file(&Self::session_rel(label, rel), local)
    }

    fn session_remove(&self, label: &str, rel_prefix: &str) -> Result<()> {
        // The object named exactly so, and everything "below" it.
        let path = Self::session_rel(label, rel_prefix);
        let below = format!("{path}/");
        let doomed: Vec<String> = self
            .list(&path)?
            .into_iter()
            .map(|o| o.path)
            .filter(|p| *p == path || p.starts_with(&below))
            .collect();
        self.client.delete_many(&path, doomed)
    }

    fn commit_session(&self, label: &str, session_xml: &[u8]) -> Result<()> {
        if self.has_session_xml(label)? {
            return Err(BackupError::Invalid(format!(
                "session {label} already exists in {}",
                self.url()
            )));
        }
        // Every file of the session was a completed PUT; session.xml last makes it
        // visible. The marker goes after: a crash in between leaves a committed
        // session with a stale marker, which clean_pending just removes.
        self.put(&Self::session_rel(label, "session.xml"), session_xml)?;
        self.client.delete(&format!("tmp/{label}{PENDING_SUFFIX}"))
    }

    fn discard_session(&self, label: &str) -> Result<()> {
        if !self.has_session_xml(label)? {
            self.client.delete_tree(&format!("sessions/{label}"))?;
        }
        self.client.delete(&format!("tmp/{label}{PENDING_SUFFIX}"))
    }

    fn pending_sessions(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for label in self.pending_markers()? {
            if !self.has_session_xml(&label)? {
                out.push(label);
            }
        }
        Ok(out)
    }

    fn session_names(&self) -> Result<Vec<String>> {
        let dirs = self.client.child_names("sessions")?;
        let retired = self.retired_labels()?;
        let pending: BTreeSet<String> = self.pending_sessions()?.into_iter().collect();
        let mut out: Vec<String> = dirs
            .iter()
            .filter(|n| !pending.contains(*n))
            .map(|n| {
                if retired.contains(n) {
                    format!("{RETIRED_PREFIX}{n}")
                } else {
                    n.clone()
                }
            })
            .collect();
        // A retired session whose files are all gone (a purge interrupted before it
        // removed the marker) is still there to finish.
        for r in retired.iter().filter(|r| !dirs.contains(*r)) {
            out.push(format!("{RETIRED_PREFIX}{r}"));
        }
        out.sort();
        Ok(out)
    }

    fn retire_session(&self, label: &str) -> Result<()> {
        let xml = Self::session_rel(label, "session.xml");
        if self.size(&xml)?.is_none()
            && self
                .client
                .list_dir(&format!("sessions/{label}"))?
                .is_empty()
        {
            return Err(BackupError::NotFound(format!("sessions/{label}")));
        }
        // The marker first: from it on the files are garbage even if we stop here.
        self.client
            .put(&format!("{RETIRED_DIR}/{label}"), Vec::new())?;
        self.client.delete(&xml)
    }

    fn purge_retired(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for label in self.retired_labels()? {
            self.client.delete_tree(&format!("sessions/{label}"))?;
            self.client.delete(&format!("{RETIRED_DIR}/{label}"))?;
            out.push(label);
        }
        Ok(out)
    }

    fn clean_pending(&self) -> Result<Vec<String>> {
        let labels = self.pending_sessions()?;
        for label in &labels {
            self.client.delete_tree(&format!("sessions/{label}"))?;
        }
        // Markers (also stale ones of sessions that did commit) and abort flags.
        self.client.delete_tree("tmp")?;
        Ok(labels)
    }

    fn lock(&self, what: &str, wait: Duration) -> Result<TargetLock> {
        let lease = Lease::acquire(
            self.client.clone(),
            what,
            wait,
            self.settings.lease,
            self.settings.settle,
        )?;
        Ok(TargetLock::new(Box::new(lease)))
    }

    fn lock_holder(&self) -> Result<Option<String>> {
        s3_lease::current_holder(&self.client)
    }

    fn scratch_dir(&self) -> Result<PathBuf> {
        if let Some(d) = self.scratch.get() {
            return Ok(d.clone());
        }
        let dir = self.settings.scratch.join(format!(
            "s3-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).map_err(BackupError::io(dir.display()))?;
        Ok(self.scratch.get_or_init(|| dir).clone())
    }

    fn free_space(&self) -> Result<Option<Space>> {
        // An object store has no free space to measure: unlimited.
        Ok(None)
    }

    fn local_path(&self, _path: &str) -> Option<PathBuf> {
        None
    }

    fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
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
            let mut c = cfg.clone();
            c.set(k, v).unwrap();
            let e = S3Settings::from_local_config(&c, std::env::temp_dir()).unwrap_err();
            assert!(e.to_string().contains(k), "{k}={v}: {e}");
        }
    }

    #[test]
    fn plain_http_endpoint_needs_consent() {
        let mut s = S3Settings::new(std::env::temp_dir());
        s.endpoint = Some("http://127.0.0.1:9".into());
        s.access_key = Some("k".into());
        s.secret_key = Some("s".into());
        if std::env::var_os("AWS_ALLOW_HTTP").is_none() {
            let e = S3Target::open("s3://bkt", s.clone())
                .unwrap_err()
                .to_string();
            assert!(e.contains("s3_allow_http=true"), "{e}");
        }
        s.allow_http = true;
        let t = S3Target::open("s3://bkt/p", s).unwrap();
        assert_eq!(t.url(), "s3://bkt/p");
        assert_eq!(t.free_space().unwrap(), None);
    }
}
