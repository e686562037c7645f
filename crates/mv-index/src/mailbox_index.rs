//! One mailbox's index: open (or rebuild when missing or damaged), bring up to the
//! mailbox's change number, and answer candidate queries.

use crate::IndexError;
use crate::fields::{FORMAT, Fields};
use mv_store::ItemKind;
use mv_store::{Item, Store};
use mv_types::MailboxId;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tantivy::collector::DocSetCollector;
use tantivy::query::Query;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

/// Heap of the one indexing thread (tantivy's minimum is 15 MB); past it a segment
/// is flushed.
const WRITER_HEAP: usize = 20_000_000;

/// Messages indexed between progress updates and abort checks.
const BATCH: usize = 200;

/// What a commit records: the index holds the mailbox exactly as of `change`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) format: u32,
    pub(crate) mailbox: u32,
    pub(crate) change: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReindexState {
    /// Nothing running; the index is as of `indexed_change`.
    Idle,
    Running,
}

/// Progress of the latest (or current) indexing run of a mailbox, as
/// `zmprov rim USER status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReindexStatus {
    pub mailbox_id: u32,
    pub state: ReindexState,
    /// Whether the run rebuilds from scratch (else it is incremental).
    pub rebuild: bool,
    pub succeeded: u64,
    /// Messages indexed without their text (blob unreadable); they are still found,
    /// by verification against the store.
    pub failed: u64,
    pub remaining: u64,
    pub indexed_change: u64,
    /// The mailbox's change number when the status was taken: the index is
    /// up to date when the two are equal.
    pub mailbox_change: u64,
    /// Rebuilds from scratch since the server started (damage, restore, `start`).
    pub rebuilds: u64,
    /// The latest index failure seen (damage found, failed update); cleared by
    /// `rim start`.
    pub last_error: Option<String>,
}

/// One indexed message, as [`MailboxIndex::documents`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedDoc {
    pub id: u32,
    pub folder: u32,
    pub flags: u32,
}

struct Open {
    index: Index,
    reader: IndexReader,
    change: u64,
}

pub struct MailboxIndex {
    id: MailboxId,
    dir: PathBuf,
    fields: Fields,
    state: Mutex<Option<Open>>,
    status: Mutex<ReindexStatus>,
    /// See [`MailboxIndex::last_used`].
    last_used: std::sync::atomic::AtomicU64,
}

/// The change number of the index in `dir` (mailbox `id`), from its last commit
/// record; None without a readable index of this format and mailbox.
pub(crate) fn disk_change(dir: &Path, id: MailboxId) -> Option<u64> {
    let meta = std::fs::read(dir.join("meta.json")).ok()?;
    let meta: serde_json::Value = serde_json::from_slice(&meta).ok()?;
    let payload: Payload = serde_json::from_str(meta.get("payload")?.as_str()?).ok()?;
    (payload.format == FORMAT && payload.mailbox == id.0).then_some(payload.change)
}

impl MailboxIndex {
    pub(crate) fn new(id: MailboxId, dir: PathBuf) -> MailboxIndex {
        MailboxIndex {
            id,
            dir,
            fields: Fields::new(),
            state: Mutex::new(None),
            status: Mutex::new(ReindexStatus {
                mailbox_id: id.0,
                state: ReindexState::Idle,
                rebuild: false,
                succeeded: 0,
                failed: 0,
                remaining: 0,
                indexed_change: 0,
                mailbox_change: 0,
                rebuilds: 0,
                last_error: None,
            }),
            last_used: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn status(&self) -> ReindexStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Marks a rebuild as started (so that `status` right after `start` says so);
    /// false if one is already running.
    pub fn mark_running(&self) -> bool {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if s.state == ReindexState::Running {
            return false;
        }
        s.state = ReindexState::Running;
        s.rebuild = true;
        s.succeeded = 0;
        s.failed = 0;
        s.last_error = None;
        true
    }

    /// The change number the index on disk is at, from its last commit record
    /// (None without a readable index). Does not open or repair the index.
    pub fn disk_change(&self) -> Option<u64> {
        disk_change(&self.dir, self.id)
    }

    /// Whether the index is open in this process (a search or an update is
    /// using it, or used it and it was not closed since).
    pub fn is_open(&self) -> bool {
        match self.state.try_lock() {
            Ok(g) => g.is_some(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().is_some(),
            Err(std::sync::TryLockError::WouldBlock) => true,
        }
    }

    /// Closes the index (its reader, mapped segments and files) unless it is in
    /// use; the next search or update opens it again.
    pub fn close(&self) {
        let mut g = match self.state.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        *g = None;
    }

    /// When the index was last used (milliseconds since the Unix epoch).
    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_status(&self, f: impl FnOnce(&mut ReindexStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn lock(&self) -> MutexGuard<'_, Option<Open>> {
        self.last_used.store(
            mv_types::UtcMillis::now().0.max(0) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the index up to the mailbox's current change number (incremental;
    /// a missing, damaged or foreign index is rebuilt). Returns the indexed change.
    pub fn update(&self, store: &Store) -> Result<u64, IndexError> {
        self.update_until(store, &|| false)
    }

    /// [`MailboxIndex::update`] that gives up between batches once `stop` says
    /// so (a server shutting down): what was added since the last commit is
    /// dropped, the index stays at its last committed change (the next run goes
    /// on from there), and no segment merge is started.
    pub fn update_until(&self, store: &Store, stop: &dyn Fn() -> bool) -> Result<u64, IndexError> {
        let mut g = self.lock();
        self.update_locked(&mut g, store, false, stop)
    }

    /// Drops the index and indexes the mailbox from scratch.
    pub fn rebuild(&self, store: &Store) -> Result<u64, IndexError> {
        let mut g = self.lock();
        self.update_locked(&mut g, store, true, &|| false)
    }

    /// One retry after dropping the index: an index fault is never fatal while the
    /// store can rebuild it.
    fn update_locked(
        &self,
        g: &mut Option<Open>,
        store: &Store,
        rebuild: bool,
        stop: &dyn Fn() -> bool,
    ) -> Result<u64, IndexError> {
        if rebuild {
            self.drop_index(g)?;
        }
        let r = self.try_update(g, store, stop);
        let r = match r {
            Err(e) if e.is_index_fault() => {
                tracing::warn!("mailbox {}: {e}; rebuilding the search index", self.id);
                self.set_status(|s| s.last_error = Some(e.to_string()));
                self.drop_index(g)?;
                self.try_update(g, store, stop)
            }
            r => r,
        };
        self.set_status(|s| {
            s.state = ReindexState::Idle;
            s.remaining = 0;
            if let Err(e) = &r {
                s.last_error = Some(e.to_string());
            }
        });
        r
    }

    fn drop_index(&self, g: &mut Option<Open>) -> Result<(), IndexError> {
        *g = None;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(IndexError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        }
        self.set_status(|s| s.rebuilds += 1);
        Ok(())
    }

    fn try_update(
        &self,
        g: &mut Option<Open>,
        store: &Store,
        stop: &dyn Fn() -> bool,
    ) -> Result<u64, IndexError> {
        // The index directory vanished under an open index (a restore swapped the
        // mailbox in and dropped it): reopen, which rebuilds.
        if g.is_some() && !self.dir.join("meta.json").is_file() {
            *g = None;
        }
        if g.is_none() {
            *g = Some(self.open_or_create()?);
        }
        let open = g.as_mut().expect("opened above");
        let mailbox = store.mailbox(self.id);
        let mut changes = mailbox.changes_since(open.change)?;
        if changes.applied_change < open.change {
            // The mailbox went back in time (restored): the index describes another
            // history.
            tracing::warn!(
                "mailbox {}: search index is at change {} but the mailbox at {}; rebuilding",
                self.id,
                open.change,
                changes.applied_change
            );
            *g = None;
            self.drop_index(g)?;
            *g = Some(self.open_or_create()?);
            changes = mailbox.changes_since(0)?;
        }
        let open = g.as_mut().expect("opened above");
        let from = open.change;
        if changes.applied_change == from {
            self.set_status(|s| s.indexed_change = from);
            return Ok(from);
        }
        let messages: Vec<&Item> = changes
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Message)
            .collect();
        self.set_status(|s| {
            s.state = ReindexState::Running;
            s.rebuild = from == 0;
            s.succeeded = 0;
            s.failed = 0;
            s.remaining = messages.len() as u64;
        });
        let err = IndexError::tantivy(&self.dir);
        let mut writer: IndexWriter<TantivyDocument> = open
            .index
            .writer_with_num_threads(1, WRITER_HEAP)
            .map_err(&err)?;
        for id in &changes.deleted {
            writer.delete_term(self.fields.id_term(*id));
        }
        for chunk in messages.chunks(BATCH) {
            if stop() {
                // Uncommitted: dropping the writer discards the batch.
                drop(writer);
                return Ok(from);
            }
            let (mut ok, mut failed) = (0, 0);
            for item in chunk {
                writer.delete_term(self.fields.id_term(item.id));
                let text = match store.read_blob(self.id, item) {
                    Ok(raw) => Some(mv_store::mime::message_text(&raw)),
                    Err(e) => {
                        tracing::warn!(
                            "mailbox {} item {}: indexed without its text: {e}",
                            self.id,
                            item.id
                        );
                        None
                    }
                };
                if text.is_some() {
                    ok += 1;
                } else {
                    failed += 1;
                }
                writer
                    .add_document(self.fields.document(item, text.as_ref()))
                    .map_err(&err)?;
            }
            self.set_status(|s| {
                s.succeeded += ok;
                s.failed += failed;
                s.remaining = s.remaining.saturating_sub(ok + failed);
            });
        }
        let payload = serde_json::to_string(&Payload {
            format: FORMAT,
            mailbox: self.id.0,
            change: changes.applied_change,
        })
        .expect("payload serializes");
        if stop() {
            // Commit what is done, but start no merge the shutdown would wait for.
            writer.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
        }
        let mut prepared = writer.prepare_commit().map_err(&err)?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(&err)?;
        writer.wait_merging_threads().map_err(&err)?;
        open.reader.reload().map_err(&err)?;
        open.change = changes.applied_change;
        self.set_status(|s| s.indexed_change = changes.applied_change);
        Ok(open.change)
    }

    /// Opens the index on disk after checking it (format, mailbox, checksums of
    /// every segment file, readable segments); creates an empty one when there is
    /// none. A bad index is removed and an empty one created (the caller indexes
    /// everything since change 0).
    fn open_or_create(&self) -> Result<Open, IndexError> {
        if self.dir.join("meta.json").is_file() {
            match self.open_checked() {
                Ok(o) => return Ok(o),
                Err(e) => {
                    tracing::warn!("mailbox {}: {e}; rebuilding the search index", self.id);
                    self.set_status(|s| s.last_error = Some(e.to_string()));
                    let mut none = None;
                    self.drop_index(&mut none)?;
                }
            }
        } else if self.dir.exists() {
            let mut none = None;
            self.drop_index(&mut none)?;
        }
        let io = |source| IndexError::Io {
            path: self.dir.clone(),
            source,
        };
        mv_home::durable::create_dir_all_durable(&self.dir).map_err(io)?;
        let index = Index::create_in_dir(&self.dir, self.fields.schema.clone())
            .map_err(IndexError::tantivy(&self.dir))?;
        let reader = self.reader(&index)?;
        Ok(Open {
            index,
            reader,
            change: 0,
        })
    }

    fn open_checked(&self) -> Result<Open, IndexError> {
        let err = IndexError::tantivy(&self.dir);
        let damaged = |what: String| IndexError::Damaged {
            path: self.dir.clone(),
            what,
        };
        let index = Index::open_in_dir(&self.dir).map_err(&err)?;
        if index.schema() != self.fields.schema {
            return Err(damaged("its schema is not this version's".into()));
        }
        let metas = index.load_metas().map_err(&err)?;
        let payload: Payload = metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| damaged("no commit record (change number)".into()))?;
        if payload.format != FORMAT || payload.mailbox != self.id.0 {
            return Err(damaged(format!(
                "format {} of mailbox {}, expected format {FORMAT} of mailbox {}",
                payload.format, payload.mailbox, self.id.0
            )));
        }
        let bad = index.validate_checksum().map_err(&err)?;
        if !bad.is_empty() {
            let mut names: Vec<String> = bad.iter().map(|p| p.display().to_string()).collect();
            names.sort();
            return Err(damaged(format!(
                "checksum mismatch in {}",
                names.join(", ")
            )));
        }
        // Opening the segment readers fails on a missing or truncated file.
        let reader = self.reader(&index)?;
        Ok(Open {
            index,
            reader,
            change: payload.change,
        })
    }

    fn reader(&self, index: &Index) -> Result<IndexReader, IndexError> {
        index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(IndexError::tantivy(&self.dir))
    }

    /// Brings the index up to date, then runs `query`: the item ids it yields and the
    /// change number the index is at. An index that fails is rebuilt once.
    pub(crate) fn candidates(
        &self,
        store: &Store,
        query: &dyn Query,
    ) -> Result<(HashSet<u32>, u64), IndexError> {
        let mut g = self.lock();
        self.update_locked(&mut g, store, false, &|| false)?;
        match self.run(g.as_ref().expect("updated"), query) {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!("mailbox {}: {e}; rebuilding the search index", self.id);
                self.update_locked(&mut g, store, true, &|| false)?;
                self.run(g.as_ref().expect("rebuilt"), query)
            }
        }
    }

    /// [`MailboxIndex::candidates`] for several queries against the same state of
    /// the index.
    pub(crate) fn candidates_many(
        &self,
        store: &Store,
        queries: &[&dyn Query],
    ) -> Result<(Vec<HashSet<u32>>, u64), IndexError> {
        let mut g = self.lock();
        self.update_locked(&mut g, store, false, &|| false)?;
        let run_all = |open: &Open| -> Result<(Vec<HashSet<u32>>, u64), IndexError> {
            let mut out = Vec::with_capacity(queries.len());
            for q in queries {
                out.push(self.run(open, *q)?.0);
            }
            Ok((out, open.change))
        };
        match run_all(g.as_ref().expect("updated")) {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!("mailbox {}: {e}; rebuilding the search index", self.id);
                self.update_locked(&mut g, store, true, &|| false)?;
                run_all(g.as_ref().expect("rebuilt"))
            }
        }
    }

    /// What the index holds after bringing it up to date: one entry per indexed
    /// message, by item id, and the change number it is at. (For checks and
    /// diagnostics; searches go through [`crate::Indexes`].)
    pub fn documents(&self, store: &Store) -> Result<(Vec<IndexedDoc>, u64), IndexError> {
        let mut g = self.lock();
        self.update_locked(&mut g, store, false, &|| false)?;
        let open = g.as_ref().expect("updated");
        let err = IndexError::tantivy(&self.dir);
        let searcher = open.reader.searcher();
        let mut out = Vec::new();
        for seg in searcher.segment_readers() {
            let ff = seg.fast_fields();
            let (id, folder, flags) = (
                ff.u64("id").map_err(&err)?,
                ff.u64("folder").map_err(&err)?,
                ff.u64("flags").map_err(&err)?,
            );
            for doc in seg.doc_ids_alive() {
                out.push(IndexedDoc {
                    id: id.first(doc).unwrap_or(0) as u32,
                    folder: folder.first(doc).unwrap_or(0) as u32,
                    flags: flags.first(doc).unwrap_or(0) as u32,
                });
            }
        }
        out.sort_by_key(|d| d.id);
        Ok((out, open.change))
    }

    fn run(&self, open: &Open, query: &dyn Query) -> Result<(HashSet<u32>, u64), IndexError> {
        let err = IndexError::tantivy(&self.dir);
        let searcher = open.reader.searcher();
        let docs = searcher.search(query, &DocSetCollector).map_err(&err)?;
        let mut columns = Vec::new();
        for seg in searcher.segment_readers() {
            columns.push(seg.fast_fields().u64("id").map_err(&err)?);
        }
        let mut ids = HashSet::with_capacity(docs.len());
        for d in docs {
            let id = columns
                .get(d.segment_ord as usize)
                .and_then(|c| c.first(d.doc_id))
                .ok_or_else(|| IndexError::Damaged {
                    path: self.dir.clone(),
                    what: format!("document {d:?} has no item id"),
                })?;
            ids.insert(id as u32);
        }
        Ok((ids, open.change))
    }
}
