//! [`Run`]: what the sessions of one backup run share (the target, the pool,
//! the blob copier, the catalog), and the files every session has
//! (`ldap/ldap.bak`, `sys/`).

use super::{Aborter, BackupOptions, LDAP_DUMP, SessionBuilder, Source};
use crate::catalog::Catalog;
use crate::copier::{BlobCopier, CopyJob, CopyOutcome};
use crate::error::Result;
use crate::label::Label;
use crate::pack::{PackIndex, Pool};
use crate::progress::Progress;
use crate::run::FileIndex;
use crate::target::Target;
use crate::xml::XmlWriter;
use mv_types::{Digest, UtcMillis};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// A pack is sealed: its blobs move from pending to the pool.
fn add_sealed(
    pending: &mut HashSet<Digest>,
    pool: &mut Pool,
    sealed: &mut Vec<String>,
    id: String,
    index: &PackIndex,
) {
    for e in &index.entries {
        pending.remove(&e.digest);
    }
    pool.add_sealed(id.clone(), index);
    sealed.push(id);
}

/// State shared by the sessions of one run.
pub(crate) struct Run<'a> {
    pub source: &'a Source<'a>,
    pub target: &'a dyn Target,
    /// The same target, for the thread that seals packs.
    pub(super) shared_target: Arc<dyn Target>,
    pub opts: &'a BackupOptions,
    pub progress: &'a dyn Progress,
    pub aborter: Aborter,
    pub pool: Pool,
    /// The threads copying blobs into packs (started on the first blob to copy).
    pub(super) copier: Option<BlobCopier>,
    /// Blobs in the packs being written or sealed (not in the pool yet).
    pub(super) pending: HashSet<Digest>,
    /// Packs sealed since the session began.
    pub sealed: Vec<String>,
    pub shared_blobs: bool,
    pub keep_time: Duration,
    /// `sys/` holds the server's secrets (see `BackupOptions::secrets`).
    pub secrets: bool,
    /// The target's sessions: as they were when the run started, plus those it
    /// committed.
    pub catalog: Catalog,
    /// The files of the session an unchanged account's files are reused from.
    pub prev_files: Option<(Label, FileIndex)>,
}

impl Run<'_> {
    pub fn now(&self) -> UtcMillis {
        self.opts.clock.now()
    }

    /// True if the blob is already in the target (or being written by this run).
    pub fn have_blob(&self, d: &Digest) -> bool {
        self.pending.contains(d) || self.pool.contains(d)
    }

    /// Queues one account's blobs (distinct digests the target lacks) for copying
    /// into packs; [`Run::wait_blobs`] collects the outcome.
    pub fn submit_blobs(&mut self, jobs: Vec<CopyJob>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        if self.copier.is_none() {
            self.copier = Some(BlobCopier::start(
                self.shared_target.clone(),
                self.opts.compression,
                self.opts.pack_size,
                BlobCopier::default_workers(),
            )?);
        }
        self.copier.as_mut().expect("just started").submit(jobs)
    }

    /// Waits for the blobs submitted; each one copied counts as held from then on
    /// ([`Run::have_blob`]). The outer error is fatal (the target failed).
    pub fn wait_blobs(&mut self) -> Result<CopyOutcome> {
        let Some(copier) = self.copier.as_mut() else {
            return Ok(CopyOutcome::default());
        };
        let (pending, pool, sealed) = (&mut self.pending, &mut self.pool, &mut self.sealed);
        let aborter = &mut self.aborter;
        let out = copier.wait(self.progress, &mut || aborter.requested(), &mut |(
            id,
            index,
        )| {
            add_sealed(pending, pool, sealed, id, &index)
        })?;
        // (A blob whose pack was sealed already is in the pool too: harmless.)
        self.pending.extend(out.digests.iter().copied());
        Ok(out)
    }

    /// Seals every pack being written and waits for every seal (before a session
    /// that references their blobs commits).
    pub fn seal(&mut self) -> Result<()> {
        if let Some(copier) = self.copier.as_mut() {
            let (pending, pool, sealed) = (&mut self.pending, &mut self.pool, &mut self.sealed);
            copier.seal_all(&mut |(id, index)| add_sealed(pending, pool, sealed, id, &index))?;
        }
        self.pending.clear();
        Ok(())
    }

    /// After a fatal error: drops the packs being written and waits for those
    /// being sealed (a sealed pack no session references is garbage that
    /// `zmbackup -del` collects; a zip without its index is removed by the next
    /// operation).
    pub(super) fn discard_writes(&mut self) {
        self.copier = None;
    }

    /// `ldap/ldap.bak` and `sys/` of a session.
    pub fn write_system(&self, sb: &mut SessionBuilder) -> Result<()> {
        let (ldif, global, server) = {
            let d = self.source.dir();
            (
                d.export_ldif()?,
                d.global_explicit()?,
                d.get_server(self.source.server_name).ok(),
            )
        };
        self.put_directory_dump(sb, ldif.as_bytes())?;
        let mut w = XmlWriter::new();
        w.open("config", &[]);
        w.open("global", &[]);
        for (k, vs) in &global {
            for v in vs {
                w.leaf("attr", &[("name", k.clone()), ("value", v.clone())]);
            }
        }
        w.close();
        if let Some(s) = server {
            w.open(
                "server",
                &[("name", s.name.clone()), ("zimbraId", s.id.clone())],
            );
            for (k, vs) in &s.attrs {
                for v in vs {
                    w.leaf("attr", &[("name", k.clone()), ("value", v.clone())]);
                }
            }
            w.close();
        }
        sb.put("sys/config.xml", &w.finish())?;
        crate::identity::back_up(self.source.store.home(), sb, self.secrets)
    }

    /// `ldap/ldap.bak`, a piece of the session that wrote it: the newest
    /// session's when the directory is the same (named again, nothing written:
    /// at 10,000 accounts the dump is ~3 MB, and most sessions find the
    /// directory unchanged), else a new piece of this session.
    fn put_directory_dump(&self, sb: &mut SessionBuilder, ldif: &[u8]) -> Result<()> {
        let newest = self
            .catalog
            .sessions()
            .rev()
            .find_map(|s| s.file(LDAP_DUMP))
            .filter(|f| {
                f.from.is_some()
                    && f.size == ldif.len() as u64
                    && f.blake3 == blake3::hash(ldif).to_hex().as_str()
            });
        match newest {
            Some(f) => {
                sb.keep_piece(f);
                Ok(())
            }
            None => sb.put_piece(LDAP_DUMP, ldif),
        }
    }

    /// Writes session.xml and makes the session visible, then updates accounts.xml.
    pub fn commit(&mut self, sb: SessionBuilder, session: &crate::Session) -> Result<()> {
        self.target
            .commit_session(&sb.label.to_string(), &session.to_xml())?;
        self.catalog.add_committed(session.clone());
        if let Err(e) =
            crate::accounts_xml::write_accounts_xml(self.target, &self.catalog, self.now())
        {
            tracing::error!("accounts.xml could not be rewritten (it is rebuilt later): {e}");
        }
        Ok(())
    }
}
