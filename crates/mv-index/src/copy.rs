//! A mailbox's index as a backup holds it (`meta.json` and the segment files),
//! opened in memory and never updated: searching inside backups narrows a rebuilt
//! mailbox's messages with the index the backed-up mailbox had.
//!
//! The copy may describe the mailbox a little before or after the rebuilt state
//! (the backup copies the index after the database snapshot), so a caller checks
//! exactly every candidate and every message the copy does not describe as it is
//! ([`IndexCopy::describes`]).

use crate::IndexError;
use crate::fields::{FORMAT, Fields};
use crate::mailbox_index::Payload;
use crate::query::text_query;
use mv_store::Item;
use mv_store::search::Term;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tantivy::collector::DocSetCollector;
use tantivy::directory::RamDirectory;
use tantivy::{Directory, Index, IndexReader, ReloadPolicy};

/// What the copy holds of one message: enough to tell the same content from a
/// replaced one (a draft saved again keeps its item id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Described {
    size: u64,
    date: i64,
}

pub struct IndexCopy {
    fields: Fields,
    reader: IndexReader,
    change: u64,
    docs: HashMap<u32, Described>,
    /// Names the copy in errors.
    name: PathBuf,
}

impl IndexCopy {
    /// Opens the files of an index copy (`meta.json` among them), checked against
    /// their checksums. `name` names the copy in errors.
    pub fn open(name: &str, files: Vec<(String, Vec<u8>)>) -> Result<IndexCopy, IndexError> {
        let name = PathBuf::from(name);
        let err = IndexError::tantivy(&name);
        let damaged = |what: String| IndexError::Damaged {
            path: name.clone(),
            what,
        };
        let dir = RamDirectory::create();
        for (file, data) in &files {
            if file.contains('/') || file.starts_with('.') {
                return Err(damaged(format!("unexpected file name {file:?}")));
            }
            dir.atomic_write(Path::new(file), data)
                .map_err(|source| IndexError::Io {
                    path: name.join(file),
                    source,
                })?;
        }
        let index = Index::open(dir).map_err(&err)?;
        let fields = Fields::new();
        if index.schema() != fields.schema {
            return Err(damaged("its schema is not this version's".into()));
        }
        let metas = index.load_metas().map_err(&err)?;
        let payload: Payload = metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(|| damaged("no commit record (change number)".into()))?;
        if payload.format != FORMAT {
            return Err(damaged(format!(
                "format {}, expected {FORMAT}",
                payload.format
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
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(&err)?;
        let mut docs = HashMap::new();
        for seg in reader.searcher().segment_readers() {
            let ff = seg.fast_fields();
            let (id, size, date) = (
                ff.u64("id").map_err(&err)?,
                ff.u64("size").map_err(&err)?,
                ff.i64("date").map_err(&err)?,
            );
            for doc in seg.doc_ids_alive() {
                let Some(i) = id.first(doc) else {
                    return Err(damaged(format!("document {doc} has no item id")));
                };
                docs.insert(
                    i as u32,
                    Described {
                        size: size.first(doc).unwrap_or(0),
                        date: date.first(doc).unwrap_or(0),
                    },
                );
            }
        }
        Ok(IndexCopy {
            fields,
            reader,
            change: payload.change,
            docs,
            name: name.clone(),
        })
    }

    /// The change number of the mailbox the copy was made of.
    pub fn change(&self) -> u64 {
        self.change
    }

    /// Whether the copy holds `item` as it is: the same item id with the same size
    /// and date. A message it does not describe must be checked exactly.
    pub fn describes(&self, item: &Item) -> bool {
        self.docs.get(&item.id).is_some_and(|d| {
            d.size == item.size && d.date == mv_store::search::effective_date(item)
        })
    }

    /// The item ids whose text may match `terms` (a superset; documents flagged
    /// for verification included). `None` when no term is textual: the copy
    /// narrows nothing.
    pub fn candidates(&self, terms: &[Term]) -> Result<Option<HashSet<u32>>, IndexError> {
        let Some(query) = text_query(&self.fields, terms) else {
            return Ok(None);
        };
        let err = IndexError::tantivy(&self.name);
        let searcher = self.reader.searcher();
        let found = searcher
            .search(query.as_ref(), &DocSetCollector)
            .map_err(&err)?;
        let mut columns = Vec::new();
        for seg in searcher.segment_readers() {
            columns.push(seg.fast_fields().u64("id").map_err(&err)?);
        }
        let mut ids = HashSet::with_capacity(found.len());
        for d in found {
            let id = columns
                .get(d.segment_ord as usize)
                .and_then(|c| c.first(d.doc_id))
                .ok_or_else(|| IndexError::Damaged {
                    path: self.name.clone(),
                    what: format!("document {d:?} has no item id"),
                })?;
            ids.insert(id as u32);
        }
        Ok(Some(ids))
    }
}
