//! The S3 target's connection: an `object_store` client, the runtime its
//! requests run on, the lease that bounds them while the target's lock is held,
//! and the object operations the target and its lock are built of.
//!
//! The [`Target`](super::Target) trait is synchronous. Its requests run on the
//! caller's runtime when there is one (the server's: `S3Settings::runtime`),
//! driven by that runtime's workers while the calling thread — a job thread, a
//! `spawn_blocking` thread, never a worker — waits with `Handle::block_on`; an
//! offline command has no runtime, and the client makes a current-thread one,
//! driven by the thread that waits. One client stays on one runtime: the HTTP
//! client's pooled connections belong to the runtime that opened them.

use super::ObjectInfo;
use super::s3_config::{S3Settings, parse_url};
use crate::error::{BackupError, Result};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, ObjectStore, PutOptions, PutPayload};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why a run stops when its lock could not be renewed in time.
const LEASE_RAN_OUT: &str = "the lock's lease could not be renewed in time (the S3 store did not answer); the run stops writing so that no other run can overlap it — run it again";

/// How often a request under a lease looks whether the lease was lost (the
/// heartbeat found it overwritten) before its expiry.
const LEASE_CHECK: Duration = Duration::from_secs(1);

/// Where the client's requests run.
enum Exec {
    /// The caller's runtime.
    Shared(tokio::runtime::Handle),
    /// A current-thread runtime of our own (`None` only while dropping).
    Own(Option<tokio::runtime::Runtime>),
}

/// Shared by the target and its lock's heartbeat thread.
pub(super) struct Client {
    store: Box<dyn ObjectStore>,
    /// While this process holds the target's lock: when its lease runs out
    /// (UNIX milliseconds; 0 when no lock is held). No request of the run may
    /// outlive it: once another host may take the lock over, this one stops.
    pub(super) lease_until: AtomicU64,
    exec: Exec,
    pub(super) url: String,
    prefix: Option<String>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping a runtime where blocking is not allowed (inside another
        // runtime's task) would panic; nothing of ours is left running on it.
        if let Exec::Own(rt) = &mut self.exec
            && let Some(rt) = rt.take()
        {
            rt.shutdown_background();
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Client {
    /// Configures the client of `spec` (`s3://bucket/prefix`); nothing is sent.
    pub(super) fn connect(spec: &str, settings: &S3Settings) -> Result<Client> {
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
        if settings.runtime.is_none() {
            // On a runtime of our own nothing runs between two requests, so an
            // idle connection the store closed is only found closed when it is
            // used again (and that request retried): reuse only fresh ones.
            builder = builder.with_config(
                AmazonS3ConfigKey::Client(object_store::ClientConfigKey::PoolIdleTimeout),
                "5s",
            );
        }
        let store = builder.build().map_err(|e| {
            BackupError::Invalid(format!(
                "{spec}: cannot configure the S3 client: {e} (set s3_endpoint, s3_region, \
             s3_access_key_id, s3_secret_access_key with mailvault localconfig -e, or the \
             AWS_* environment variables)"
            ))
        })?;
        let exec = match &settings.runtime {
            Some(handle) => Exec::Shared(handle.clone()),
            None => Exec::Own(Some(
                tokio::runtime::Builder::new_current_thread()
                    .thread_name("mv-s3")
                    .enable_all()
                    .build()
                    .map_err(BackupError::io("S3 client runtime"))?,
            )),
        };
        let url = match &prefix {
            Some(p) => format!("s3://{bucket}/{p}"),
            None => format!("s3://{bucket}"),
        };
        Ok(Client {
            store: Box::new(store),
            lease_until: AtomicU64::new(0),
            exec,
            url,
            prefix,
        })
    }

    /// Runs a request (bounded by the lock's lease while one is held) and
    /// waits for it on this thread. Renewals and the release are bounded too:
    /// past the lease they cannot help, and a release must not wait out the
    /// retry budget.
    pub(super) fn run<T>(
        &self,
        what: &str,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        if self.lease_until.load(Ordering::Acquire) != 0 && self.lease_left().is_none() {
            return Err(BackupError::Invalid(format!(
                "{}: {LEASE_RAN_OUT}",
                self.url
            )));
        }
        let bounded = self.within_lease(fut);
        let result = match &self.exec {
            Exec::Shared(handle) => handle.block_on(bounded),
            Exec::Own(rt) => rt
                .as_ref()
                .expect("the runtime stays until the client is dropped")
                .block_on(bounded),
        };
        result.map_err(|e| self.error(what, e))
    }

    /// How long the lock's lease still runs; `None` once it ran out.
    fn lease_left(&self) -> Option<Duration> {
        let until = self.lease_until.load(Ordering::Acquire);
        let now = now_ms();
        (now < until).then(|| Duration::from_millis(until - now))
    }

    /// `fut`, cut off when the lease it started under runs out. The end is read
    /// again as the heartbeat renews it, so one long request (a multipart
    /// upload) lasts as long as the renewals go through, and a lease found
    /// overwritten stops it within [`LEASE_CHECK`].
    async fn within_lease<T>(
        &self,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> object_store::Result<T> {
        if self.lease_until.load(Ordering::Acquire) == 0 {
            return fut.await;
        }
        let lease_end = async {
            loop {
                if self.lease_until.load(Ordering::Acquire) == 0 {
                    // Released meanwhile: nothing bounds the request any more.
                    return std::future::pending::<()>().await;
                }
                match self.lease_left() {
                    None => return,
                    Some(left) => tokio::time::sleep(left.min(LEASE_CHECK)).await,
                }
            }
        };
        tokio::select! {
            biased;
            r = fut => r,
            () = lease_end => Err(object_store::Error::Generic {
                store: "S3",
                source: LEASE_RAN_OUT.into(),
            }),
        }
    }

    pub(super) fn error(&self, what: &str, e: object_store::Error) -> BackupError {
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
        let store = &self.store;
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
        let store = &self.store;
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
        let store = &self.store;
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
        let store = &self.store;
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
    pub(super) fn list_dir(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let key = if dir.is_empty() {
            self.prefix.as_deref().map(ObjPath::from)
        } else {
            Some(self.key(dir)?)
        };
        let store = &self.store;
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
    pub(super) fn child_names(&self, dir: &str) -> Result<BTreeSet<String>> {
        let key = self.key(dir)?;
        let store = &self.store;
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
    pub(super) fn delete_many(&self, what: &str, paths: Vec<String>) -> Result<()> {
        let keys = paths
            .iter()
            .map(|p| self.key(p))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        let store = &self.store;
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
    pub(super) fn delete_tree(&self, dir: &str) -> Result<()> {
        let paths = self.list_dir(dir)?.into_iter().map(|o| o.path).collect();
        self.delete_many(dir, paths)
    }

    /// `len` bytes at `offset` of an object (as many as it has there).
    pub(super) fn get_range(&self, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let key = self.key(rel)?;
        let end = offset.saturating_add(len);
        let bytes = self.run(rel, async {
            let opts = GetOptions::new().with_range(Some(offset..end));
            self.store.get_opts(&key, opts).await?.bytes().await
        })?;
        Ok(bytes.to_vec())
    }

    /// The size of an object, `None` if absent.
    pub(super) fn size(&self, rel: &str) -> Result<Option<u64>> {
        let key = self.key(rel)?;
        let head = self.run(rel, async {
            let opts = GetOptions::new().with_head(true);
            Ok(self.store.get_opts(&key, opts).await?.meta)
        });
        match head {
            Ok(m) => Ok(Some(m.size)),
            Err(BackupError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts a multipart upload of `rel`.
    pub(super) fn start_upload(&self, rel: &str) -> Result<Box<dyn object_store::MultipartUpload>> {
        let key = self.key(rel)?;
        self.run(rel, async {
            self.store
                .put_multipart_opts(&key, object_store::PutMultipartOptions::default())
                .await
        })
    }
}
