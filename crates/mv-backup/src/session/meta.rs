//! `accounts/<zimbraId>/meta.xml` (format 1) and, in a format 2 session.xml,
//! the same metadata inline as each account's `<meta>`: which snapshot of the
//! account a full session holds, and its counts.

use super::{SessionAccount, b};
use crate::error::Result;
use crate::label::Label;
use crate::xml::{Element, XmlFile, XmlWriter};
use mv_types::UtcMillis;

/// `meta.xml` of an account in a full session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountMeta {
    pub email: String,
    pub zimbra_id: String,
    pub mailbox_id: u32,
    pub label: String,
    pub change: u64,
    pub redo_seq: u64,
    pub redo_lsn: u64,
    pub snapshot_at: UtcMillis,
    pub started: UtcMillis,
    pub ended: UtcMillis,
    pub items: u64,
    pub messages: u64,
    /// Distinct blobs the snapshot references (and that were included).
    pub blobs: u64,
    pub blob_bytes: u64,
    pub new_blobs: u64,
    pub new_blob_bytes: u64,
    pub db_bytes: u64,
    pub blobs_included: bool,
    pub hsm_blobs_included: bool,
}

impl AccountMeta {
    /// The attributes of `<meta>` inside a format 2 session.xml's `<account>`:
    /// what `meta.xml` holds beyond the account element's own attributes.
    pub(super) fn inline_attrs(&self) -> Vec<(&'static str, String)> {
        let mut attrs = vec![
            ("takenAt", self.snapshot_at.0.to_string()),
            ("started", self.started.0.to_string()),
            ("ended", self.ended.0.to_string()),
        ];
        attrs.extend(self.count_attrs());
        attrs.extend([
            ("blobsIncluded", b(self.blobs_included)),
            ("hsmBlobsIncluded", b(self.hsm_blobs_included)),
        ]);
        attrs
    }

    /// The counts, as both files name them.
    fn count_attrs(&self) -> [(&'static str, String); 7] {
        [
            ("items", self.items.to_string()),
            ("messages", self.messages.to_string()),
            ("blobs", self.blobs.to_string()),
            ("blobBytes", self.blob_bytes.to_string()),
            ("newBlobs", self.new_blobs.to_string()),
            ("newBlobBytes", self.new_blob_bytes.to_string()),
            ("dbBytes", self.db_bytes.to_string()),
        ]
    }

    pub(super) fn from_inline(
        f: &XmlFile,
        m: &Element,
        a: &SessionAccount,
        label: Label,
    ) -> Result<AccountMeta> {
        let need = |v: Option<u64>, name: &str| {
            v.ok_or_else(|| f.invalid(format!("account {} has <meta> but no {name}", a.zimbra_id)))
        };
        let id = MetaId {
            email: a.email.clone(),
            zimbra_id: a.zimbra_id.clone(),
            mailbox_id: a.mailbox_id,
            label: label.to_string(),
            change: need(a.change, "change")?,
            redo_seq: need(a.redo_seq, "redoSeq")?,
            redo_lsn: need(a.redo_lsn, "redoLsn")?,
        };
        let parts = MetaParts {
            snapshot: m,
            counts: m,
            times: m,
            content: m,
            content_names: ["blobsIncluded", "hsmBlobsIncluded"],
        };
        AccountMeta::read(f, id, &parts)
    }

    /// The metadata of `id`'s account from the elements that hold the rest.
    fn read(f: &XmlFile, id: MetaId, p: &MetaParts) -> Result<AccountMeta> {
        let [blobs, hsm_blobs] = p.content_names;
        Ok(AccountMeta {
            email: id.email,
            zimbra_id: id.zimbra_id,
            mailbox_id: id.mailbox_id,
            label: id.label,
            change: id.change,
            redo_seq: id.redo_seq,
            redo_lsn: id.redo_lsn,
            snapshot_at: UtcMillis(f.num(p.snapshot, "takenAt")?),
            started: UtcMillis(f.num(p.times, "started")?),
            ended: UtcMillis(f.num(p.times, "ended")?),
            items: f.num(p.counts, "items")?,
            messages: f.num(p.counts, "messages")?,
            blobs: f.num(p.counts, "blobs")?,
            blob_bytes: f.num(p.counts, "blobBytes")?,
            new_blobs: f.num(p.counts, "newBlobs")?,
            new_blob_bytes: f.num(p.counts, "newBlobBytes")?,
            db_bytes: f.num(p.counts, "dbBytes")?,
            blobs_included: f.req(p.content, blobs)? == "true",
            hsm_blobs_included: f.req(p.content, hsm_blobs)? == "true",
        })
    }

    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = XmlWriter::new();
        w.open(
            "accountBackup",
            &[
                ("formatVersion", "1".to_string()),
                ("email", self.email.clone()),
                ("zimbraId", self.zimbra_id.clone()),
                ("mailboxId", self.mailbox_id.to_string()),
                ("label", self.label.clone()),
            ],
        );
        w.leaf(
            "snapshot",
            &[
                ("change", self.change.to_string()),
                ("redoSeq", self.redo_seq.to_string()),
                ("redoLsn", self.redo_lsn.to_string()),
                ("takenAt", self.snapshot_at.0.to_string()),
            ],
        );
        w.leaf("counts", &self.count_attrs());
        w.leaf(
            "times",
            &[
                ("started", self.started.0.to_string()),
                ("ended", self.ended.0.to_string()),
            ],
        );
        w.leaf(
            "content",
            &[
                ("blobs", b(self.blobs_included)),
                ("hsmBlobs", b(self.hsm_blobs_included)),
            ],
        );
        w.finish()
    }

    pub fn parse(path: &str, bytes: &[u8]) -> Result<AccountMeta> {
        let f = XmlFile { path };
        let root = f.parse(bytes)?;
        f.expect_root(&root, "accountBackup")?;
        let snap = f.req_child(&root, "snapshot")?;
        let parts = MetaParts {
            snapshot: snap,
            counts: f.req_child(&root, "counts")?,
            times: f.req_child(&root, "times")?,
            content: f.req_child(&root, "content")?,
            content_names: ["blobs", "hsmBlobs"],
        };
        let id = MetaId {
            email: f.req(&root, "email")?.to_string(),
            zimbra_id: f.req(&root, "zimbraId")?.to_string(),
            mailbox_id: f.num(&root, "mailboxId")?,
            label: f.req(&root, "label")?.to_string(),
            change: f.num(snap, "change")?,
            redo_seq: f.num(snap, "redoSeq")?,
            redo_lsn: f.num(snap, "redoLsn")?,
        };
        AccountMeta::read(&f, id, &parts)
    }
}

/// Which account and snapshot an [`AccountMeta`] describes: in `meta.xml` its
/// root and `<snapshot>`, in session.xml the `<account>` element.
struct MetaId {
    email: String,
    zimbra_id: String,
    mailbox_id: u32,
    label: String,
    change: u64,
    redo_seq: u64,
    redo_lsn: u64,
}

/// Where the rest of an [`AccountMeta`] is read: `meta.xml` groups it in child
/// elements, session.xml's `<meta>` holds it all; the content flags are named
/// differently in the two (`content_names`: the blobs', then the HSM blobs').
struct MetaParts<'e> {
    snapshot: &'e Element,
    counts: &'e Element,
    times: &'e Element,
    content: &'e Element,
    content_names: [&'static str; 2],
}
