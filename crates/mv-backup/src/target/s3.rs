//! A target in an S3-compatible object store: `s3://bucket/prefix`.
//!
//! Talks to the store through `object_store` (`s3_client`: the connection and the
//! runtime its requests run on; `s3_upload`: multipart uploads; `s3_config`: the
//! settings and the URL; `s3_lease`: the lock).
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

use super::s3_client::Client;
use super::s3_config::S3Settings;
use super::s3_lease::{self, Lease};
use super::{ObjectInfo, Space, Target, TargetLock};
use crate::error::{BackupError, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PENDING_SUFFIX: &str = ".pending";
const RETIRED_DIR: &str = "retired";
const RETIRED_PREFIX: &str = "TO_DELETE-";

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

impl S3Target {
    /// Opens `s3://bucket/prefix` (nothing is written until a backup runs).
    pub fn open(spec: &str, settings: S3Settings) -> Result<S3Target> {
        Ok(S3Target {
            client: Arc::new(Client::connect(spec, &settings)?),
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
        let n = self
            .client
            .upload_file(path, local, self.settings.part_size)?;
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
        match self.client.get_range(path, offset, len) {
            Ok(b) if b.len() as u64 == len => Ok(b),
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
        self.client.size(path)
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
