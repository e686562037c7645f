//! Copies blobs of the store into packs with several threads.
//!
//! Copying a blob is a read from the store, a BLAKE3 check against its digest and a
//! write into a pack: two copies through the page cache and a hash pass, nearly all
//! CPU when the data is cached. One thread doing it all was the limit of a full
//! backup, so [`BlobCopier`] runs a few workers, each reading, checking and writing
//! into a pack of its own (blobs of one account may land in different packs: the
//! index says where each one is). A full pack is sealed ([`PackWriter::seal`]) on a
//! thread of its own while its worker goes on into the next one.
//!
//! The caller submits the jobs of one account ([`BlobCopier::submit`]), does other
//! work (finishing the previous account), then waits for their outcomes
//! ([`BlobCopier::wait`]); [`BlobCopier::seal_all`] seals every pack being written
//! before a session that references their blobs commits. Dropping the copier
//! discards the packs being written (a sealed pack no session references is garbage
//! that `zmbackup -del` collects).

use crate::error::{BackupError, Result};
use crate::pack::{Compression, PackIndex, PackWriter};
use crate::progress::Progress;
use crate::target::Target;
use mv_types::Digest;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;

/// One blob to copy: where it is in the store and what it must hash to.
pub(crate) struct CopyJob {
    pub digest: Digest,
    pub path: PathBuf,
    /// The message it belongs to and the account (for error messages).
    pub item: u32,
    pub email: Arc<str>,
}

/// What copying one account's blobs came to.
#[derive(Debug, Default)]
pub(crate) struct CopyOutcome {
    pub blobs: u64,
    pub bytes: u64,
    /// The account's own problem (a blob unreadable or damaged): it fails, others go on.
    pub failed: Option<BackupError>,
    /// The session was aborted while the account was being copied.
    pub aborted: bool,
    /// The blobs written (into packs being written or sealed).
    pub digests: Vec<Digest>,
}

/// A pack sealed by a worker: its id and index, for the pool.
pub(crate) type Sealed = (String, PackIndex);

enum Msg {
    Copy(CopyJob),
    /// Seal the pack being written (and wait for the one being sealed), then answer.
    Seal,
}

enum Event {
    Copied {
        digest: Digest,
        len: u64,
    },
    Failed {
        error: BackupError,
    },
    Cancelled,
    Sealed(Sealed),
    /// Writing the target failed: fatal to the run.
    Fatal(BackupError),
    /// A worker finished a [`Msg::Seal`].
    SealDone,
}

pub(crate) struct BlobCopier {
    /// Not bounded: an account's jobs (a path and a digest each) are queued at
    /// once, so that the caller can go on while they are copied.
    jobs: Option<Sender<Msg>>,
    events: Receiver<Event>,
    /// Jobs submitted and not answered yet.
    outstanding: usize,
    workers: Vec<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
}

impl BlobCopier {
    /// Starts `workers` threads writing packs of about `pack_size` content bytes.
    pub fn start(
        target: Arc<dyn Target>,
        compression: Compression,
        pack_size: u64,
        workers: usize,
    ) -> Result<BlobCopier> {
        let (jobs, queue) = std::sync::mpsc::channel::<Msg>();
        let queue = Arc::new(Mutex::new(queue));
        let (events_tx, events) = std::sync::mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let workers = workers.max(1);
        let seal_barrier = Arc::new(Barrier::new(workers));
        let mut handles = Vec::new();
        for n in 0..workers {
            let w = Worker {
                target: target.clone(),
                compression,
                pack_size,
                queue: queue.clone(),
                events: events_tx.clone(),
                cancel: cancel.clone(),
                seal_barrier: seal_barrier.clone(),
                writer: None,
                sealing: None,
            };
            let h = std::thread::Builder::new()
                .name(format!("mv-backup-copy-{n}"))
                .spawn(move || w.run())
                .map_err(|e| BackupError::Invalid(format!("cannot start a thread: {e}")))?;
            handles.push(h);
        }
        Ok(BlobCopier {
            jobs: Some(jobs),
            events,
            outstanding: 0,
            workers: handles,
            cancel,
        })
    }

    /// The number of worker threads for this machine: two per core, 4 to 8. The
    /// work mostly waits on the disk (small files read from a cold cache), so more
    /// threads than cores keep more reads in flight: a cold first full of the
    /// medium bench corpus on 2 cores took 9.7-10.3 s with 2 workers, 8.5-8.8 s
    /// with 4, 8.2-8.7 s with 8.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .saturating_mul(2)
            .clamp(4, 8)
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|j| j.send(msg).ok())
            .ok_or_else(|| BackupError::Invalid("the blob copy threads stopped".into()))
    }

    fn next_event(&self) -> Result<Event> {
        self.events
            .recv()
            .map_err(|_| BackupError::Invalid("the blob copy threads stopped".into()))
    }

    /// Queues one account's blobs (distinct digests) and returns at once; the
    /// caller may do other work, then collects the outcome with [`Self::wait`].
    pub fn submit(&mut self, jobs: Vec<CopyJob>) -> Result<()> {
        for job in jobs {
            self.send(Msg::Copy(job))?;
            self.outstanding += 1;
        }
        Ok(())
    }

    /// Waits for every job submitted. `abort` is asked between outcomes: once it
    /// says yes, or once a blob fails, the jobs not yet started are dropped.
    /// `sealed` is told of each pack sealed meanwhile. The outer error is fatal
    /// (the target failed).
    pub fn wait(
        &mut self,
        progress: &dyn Progress,
        abort: &mut dyn FnMut() -> bool,
        sealed: &mut dyn FnMut(Sealed),
    ) -> Result<CopyOutcome> {
        let mut out = CopyOutcome::default();
        let mut fatal = None;
        while self.outstanding > 0 {
            if out.failed.is_some() || out.aborted || fatal.is_some() {
                // Jobs still queued are answered without being copied.
                self.cancel.store(true, Ordering::SeqCst);
            }
            match self.next_event()? {
                Event::Copied { digest, len } => {
                    self.outstanding -= 1;
                    out.blobs += 1;
                    out.bytes += len;
                    progress.bytes(len);
                    out.digests.push(digest);
                }
                Event::Failed { error } => {
                    self.outstanding -= 1;
                    out.failed.get_or_insert(error);
                }
                Event::Cancelled => self.outstanding -= 1,
                Event::Sealed(s) => sealed(s),
                Event::Fatal(e) => {
                    fatal.get_or_insert(e);
                }
                Event::SealDone => {}
            }
            if !out.aborted && abort() {
                out.aborted = true;
            }
        }
        self.cancel.store(false, Ordering::SeqCst);
        match fatal {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// [`Self::submit`] then [`Self::wait`].
    #[cfg(test)]
    pub fn copy(
        &mut self,
        jobs: Vec<CopyJob>,
        progress: &dyn Progress,
        abort: &mut dyn FnMut() -> bool,
        sealed: &mut dyn FnMut(Sealed),
    ) -> Result<CopyOutcome> {
        self.submit(jobs)?;
        self.wait(progress, abort, sealed)
    }

    /// Seals every pack being written and waits for every seal.
    pub fn seal_all(&mut self, sealed: &mut dyn FnMut(Sealed)) -> Result<()> {
        for _ in 0..self.workers.len() {
            self.send(Msg::Seal)?;
        }
        let mut done = 0;
        let mut fatal = None;
        while done < self.workers.len() {
            match self.next_event()? {
                Event::Sealed(s) => sealed(s),
                Event::SealDone => done += 1,
                Event::Fatal(e) => {
                    fatal.get_or_insert(e);
                }
                // Only `copy` submits copies, and it waits for all of them.
                Event::Copied { .. } | Event::Failed { .. } | Event::Cancelled => {}
            }
        }
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for BlobCopier {
    fn drop(&mut self) {
        // Closing the queue stops the workers; each drops the pack it was writing
        // and waits for the one it was sealing.
        self.cancel.store(true, Ordering::SeqCst);
        self.jobs = None;
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

struct Worker {
    target: Arc<dyn Target>,
    compression: Compression,
    pack_size: u64,
    queue: Arc<Mutex<Receiver<Msg>>>,
    events: Sender<Event>,
    cancel: Arc<AtomicBool>,
    seal_barrier: Arc<Barrier>,
    writer: Option<PackWriter>,
    /// The previous pack of this worker, being sealed while the next one fills.
    sealing: Option<JoinHandle<()>>,
}

impl Worker {
    fn run(mut self) {
        loop {
            let msg = {
                let q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                q.recv()
            };
            match msg {
                Ok(Msg::Copy(job)) => self.copy(job),
                Ok(Msg::Seal) => {
                    if let Err(e) = self.seal_in_background() {
                        let _ = self.events.send(Event::Fatal(e));
                    }
                    self.join_sealing();
                    // One Seal per worker is queued: waiting here for the others
                    // keeps this worker from taking a second one.
                    self.seal_barrier.wait();
                    let _ = self.events.send(Event::SealDone);
                }
                Err(_) => break,
            }
        }
        if let Some(w) = self.writer.take() {
            w.discard();
        }
        self.join_sealing();
    }

    fn copy(&mut self, job: CopyJob) {
        let digest = job.digest;
        if self.cancel.load(Ordering::SeqCst) {
            let _ = self.events.send(Event::Cancelled);
            return;
        }
        let bytes = match read_checked(&job) {
            Ok(b) => b,
            Err(error) => {
                let _ = self.events.send(Event::Failed { error });
                return;
            }
        };
        match self.add(digest, &bytes) {
            Ok(()) => {
                let _ = self.events.send(Event::Copied {
                    digest,
                    len: bytes.len() as u64,
                });
            }
            Err(e) => {
                // The pack cannot be written: the run stops.
                let _ = self.events.send(Event::Fatal(e));
                let _ = self.events.send(Event::Cancelled);
            }
        }
    }

    fn add(&mut self, digest: Digest, data: &[u8]) -> Result<()> {
        if self.writer.is_none() {
            self.writer = Some(PackWriter::new(self.target.as_ref(), self.compression)?);
        }
        let w = self.writer.as_mut().expect("just created");
        w.add(digest, data)?;
        if w.raw_bytes() >= self.pack_size {
            self.seal_in_background()?;
        }
        Ok(())
    }

    /// Hands the full pack to a thread that seals it; at most one per worker.
    fn seal_in_background(&mut self) -> Result<()> {
        self.join_sealing();
        if let Some(w) = self.writer.take() {
            if w.is_empty() {
                w.discard();
                return Ok(());
            }
            let target = self.target.clone();
            let events = self.events.clone();
            let h = std::thread::Builder::new()
                .name("mv-backup-seal".into())
                .spawn(move || {
                    let _ = events.send(match w.seal(target.as_ref()) {
                        Ok(s) => Event::Sealed(s),
                        Err(e) => Event::Fatal(e),
                    });
                })
                .map_err(|e| BackupError::Invalid(format!("cannot start a thread: {e}")))?;
            self.sealing = Some(h);
        }
        Ok(())
    }

    fn join_sealing(&mut self) {
        if let Some(h) = self.sealing.take()
            && h.join().is_err()
        {
            let _ = self.events.send(Event::Fatal(BackupError::Invalid(
                "the thread sealing a pack panicked".into(),
            )));
        }
    }
}

/// Reads a blob of the store and checks it against its digest.
fn read_checked(job: &CopyJob) -> Result<Vec<u8>> {
    let bytes = std::fs::read(&job.path).map_err(|e| {
        BackupError::Invalid(format!(
            "message {} of {}: cannot read its blob {}: {e}",
            job.item,
            job.email,
            job.path.display()
        ))
    })?;
    let found = Digest::of(&bytes);
    if found != job.digest {
        return Err(BackupError::Invalid(format!(
            "message {} of {}: blob {} is damaged (expected digest {}, found {found}); not backed up",
            job.item,
            job.email,
            job.path.display(),
            job.digest
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use crate::target::FsTarget;
    use std::collections::HashSet;

    /// `n` distinct blobs (distinct across directories too).
    fn blobs(dir: &std::path::Path, n: usize) -> Vec<CopyJob> {
        (0..n)
            .map(|i| {
                let data = format!("blob {i} of {} ", dir.display()).repeat(100 + i);
                let path = dir.join(format!("{i}.msg"));
                std::fs::write(&path, &data).unwrap();
                CopyJob {
                    digest: Digest::of(data.as_bytes()),
                    path,
                    item: i as u32,
                    email: "u@d.test".into(),
                }
            })
            .collect()
    }

    #[test]
    fn every_copied_blob_is_in_a_sealed_pack_with_several_workers() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let target: Arc<dyn Target> = Arc::new(FsTarget::open(dest.path()).unwrap());
        // Small packs: several seal while copying, the rest at seal_all.
        let mut c = BlobCopier::start(target, Compression::Stored, 4000, 3).unwrap();
        let mut sealed: Vec<Sealed> = Vec::new();
        let mut copied = HashSet::new();
        for round in 0..3 {
            let dir = src.path().join(round.to_string());
            std::fs::create_dir(&dir).unwrap();
            let jobs = blobs(&dir, 40);
            let want: HashSet<Digest> = jobs.iter().map(|j| j.digest).collect();
            let out = c
                .copy(jobs, &NoProgress, &mut || false, &mut |s| sealed.push(s))
                .unwrap();
            assert!(out.failed.is_none() && !out.aborted);
            assert_eq!(out.blobs, 40);
            assert_eq!(out.digests.iter().copied().collect::<HashSet<_>>(), want);
            copied.extend(want);
            c.seal_all(&mut |s| sealed.push(s)).unwrap();
        }
        let in_packs: HashSet<Digest> = sealed
            .iter()
            .flat_map(|(_, idx)| idx.entries.iter().map(|e| e.digest))
            .collect();
        assert_eq!(in_packs, copied);
        assert!(sealed.len() >= 3, "{} packs", sealed.len());
    }

    #[test]
    fn a_damaged_blob_fails_the_account_and_names_the_message() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let target: Arc<dyn Target> = Arc::new(FsTarget::open(dest.path()).unwrap());
        let mut c = BlobCopier::start(target, Compression::Stored, 1 << 20, 2).unwrap();
        let jobs = blobs(src.path(), 10);
        std::fs::write(&jobs[7].path, "flipped").unwrap();
        let out = c
            .copy(jobs, &NoProgress, &mut || false, &mut |_| {})
            .unwrap();
        let e = out.failed.expect("a failure").to_string();
        assert!(
            e.contains("message 7 of u@d.test") && e.contains("damaged"),
            "{e}"
        );
        // The copier goes on with the next account.
        let dir = src.path().join("next");
        std::fs::create_dir(&dir).unwrap();
        let out = c
            .copy(blobs(&dir, 5), &NoProgress, &mut || false, &mut |_| {})
            .unwrap();
        assert!(out.failed.is_none());
        assert_eq!(out.blobs, 5);
        c.seal_all(&mut |_| {}).unwrap();
    }

    #[test]
    fn an_abort_stops_the_account_early() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let target: Arc<dyn Target> = Arc::new(FsTarget::open(dest.path()).unwrap());
        let mut c = BlobCopier::start(target, Compression::Stored, 1 << 20, 2).unwrap();
        let mut asked = 0;
        let out = c
            .copy(
                blobs(src.path(), 500),
                &NoProgress,
                &mut || {
                    asked += 1;
                    asked > 3
                },
                &mut |_| {},
            )
            .unwrap();
        assert!(out.aborted);
        assert!(out.blobs < 500, "{} copied", out.blobs);
    }
}
