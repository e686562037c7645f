//! What a restore run reads from the target and writes of it: redo logs checked
//! against what their session recorded, the blob pool, and the blob files it
//! restores (each content written once per run, hard-linked after).

use super::*;

impl RestoreRun {
    /// Whether the file at `path` is the log `l` a session recorded: same size,
    /// same BLAKE3 (sessions from before checksums were recorded: size only).
    pub(super) fn intact_log(
        &mut self,
        path: &std::path::Path,
        l: &crate::session::RedoLogFile,
    ) -> bool {
        let key = (path.to_path_buf(), l.blake3.clone());
        if let Some(ok) = self.checked_logs.get(&key) {
            return *ok;
        }
        let ok = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == l.size)
            && (l.blake3.is_empty()
                || std::fs::File::open(path)
                    .and_then(|mut f| {
                        let mut h = blake3::Hasher::new();
                        std::io::copy(&mut f, &mut h)?;
                        Ok(h.finalize().to_hex().as_str() == l.blake3)
                    })
                    .unwrap_or(false));
        self.checked_logs.insert(key, ok);
        ok
    }

    pub(super) fn pool(&mut self, target: &dyn Target) -> Result<&Pool> {
        if self.pool.is_none() {
            self.pool = Some(Pool::load(target)?);
        }
        Ok(self.pool.as_ref().expect("loaded above"))
    }

    /// Writes blobs this run has not restored yet from the pool, on worker threads
    /// in pack order, and remembers where each went. Returns the bytes written.
    pub(super) fn write_blobs(
        &mut self,
        source: &Source,
        target: &dyn Target,
        blobs: &[(Digest, PathBuf)],
    ) -> Result<u64> {
        if blobs.is_empty() {
            return Ok(0);
        }
        let pool = self.pool(target)?;
        let mut jobs = Vec::with_capacity(blobs.len());
        for (digest, dest) in blobs {
            jobs.push((pool.find(digest)?, digest, dest));
        }
        // Packs are read front to back, as they were written.
        jobs.sort_by(|a, b| (&a.0.pack, a.0.offset).cmp(&(&b.0.pack, b.0.offset)));
        let dirs: std::collections::BTreeSet<&std::path::Path> =
            blobs.iter().filter_map(|(_, p)| p.parent()).collect();
        for dir in dirs {
            std::fs::create_dir_all(dir).map_err(BackupError::io(dir.display()))?;
        }
        let store = source.store.blobs();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let failed = std::sync::Mutex::new(None);
        let workers = crate::copier::BlobCopier::default_workers().min(jobs.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((loc, digest, dest)) = jobs.get(i) else {
                            return;
                        };
                        let written = read_at(target, loc, digest).and_then(|data| {
                            bytes
                                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                            store
                                .write_unpublished(dest, &data)
                                .map_err(|e| mv_store::StoreError::from(e).into())
                        });
                        if let Err(e) = written {
                            failed.lock().expect("no panic holds it").get_or_insert(e);
                            // The others stop at their next blob.
                            next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().expect("no panic holds it") {
            return Err(e);
        }
        for (digest, dest) in blobs {
            self.restored.insert(*digest, dest.clone());
        }
        Ok(bytes.into_inner())
    }

    /// Puts the blob `digest` at `dest`: a hard link to a file this run already
    /// restored with that content, else written from the pool. Not synced here:
    /// the mailbox is made durable as a whole before it goes live.
    pub(super) fn place_blob(
        &mut self,
        source: &Source,
        target: &dyn Target,
        digest: &Digest,
        dest: &std::path::Path,
    ) -> Result<()> {
        let blobs = source.store.blobs();
        if let Some(from) = self.restored.get(digest) {
            match blobs.link_or_copy(from, dest) {
                Ok(()) => return Ok(()),
                // Removed since (a failed account's cleanup): write it again.
                Err(e) => tracing::debug!("restore: no link from {}: {e}", from.display()),
            }
        }
        let data = self.pool(target)?.read(target, digest)?;
        blobs
            .write_at(dest, &data)
            .map_err(mv_store::StoreError::from)?;
        self.restored.insert(*digest, dest.to_path_buf());
        Ok(())
    }
}
