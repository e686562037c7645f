//! `sessions/<label>/session.xml`: what a session holds, and its status.
//!
//! ```xml
//! <session formatVersion="1" label="full-20140605.080023.296" type="full"
//!          status="completed" started="1401955223296" ended="1401955262144"
//!          startedUtc="2014-06-05T08:00:23.296Z" endedUtc="..." server="mail1">
//!   <options compression="stored" blobs="true" hsmBlobs="true" searchIndex="false"
//!            sharedBlobs="true"/>
//!   <redo first="53" last="57"/>
//!   <redoLogs><log seq="53" name="redo-...-seq53.log" firstLsn=".." lastLsn=".."
//!                  closed=".." size=".." blake3=".."/></redoLogs>
//!   <accounts count="1"><account email="u@d" zimbraId=".." mailboxId="7"
//!             status="completed" change="812" redoSeq="53" redoLsn="9120"/></accounts>
//!   <errors count="0"/>
//!   <files count="5"><file path="accounts/.../meta.xml" size=".." blake3=".."/></files>
//!   <stats blobsNew=".." blobsShared=".." blobBytesNew=".." bytesWritten=".." packs=".."/>
//! </session>
//! <!-- blake3:... -->
//! ```
//!
//! Times are UTC milliseconds (the `*Utc` attributes are for people). `files` lists
//! every file of the session with its size and BLAKE3, so `verify` can check them;
//! `redo` is the range of redo log sequences the session covers: for a full, the
//! sequences current when its mailboxes were snapshotted (replay starts there); for
//! an incremental, the sequences of the logs it holds.

use crate::error::Result;
use crate::label::{Label, SessionKind};
use crate::pack::Compression;
use crate::xml::{Element, XmlFile, XmlWriter};
use mv_types::UtcMillis;

mod lookup;
mod meta;

use lookup::Found;
pub use lookup::Lookup;

pub use meta::AccountMeta;

/// The newest format this code reads and writes. A session that uses nothing of
/// format 2 (an incremental, or a full without accounts) is still written as 1.
pub const FORMAT_VERSION: u32 = 2;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SessionStatus {
    Completed,
    CompletedWithErrors,
    Aborted,
}

impl SessionStatus {
    fn token(self) -> &'static str {
        match self {
            SessionStatus::Completed => "completed",
            SessionStatus::CompletedWithErrors => "completedWithErrors",
            SessionStatus::Aborted => "aborted",
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        match s {
            "completed" => Some(SessionStatus::Completed),
            "completedWithErrors" => Some(SessionStatus::CompletedWithErrors),
            "aborted" => Some(SessionStatus::Aborted),
            _ => None,
        }
    }

    /// What `zmbackupquery` prints.
    pub fn display(self) -> &'static str {
        match self {
            SessionStatus::Completed => "completed",
            SessionStatus::CompletedWithErrors => "completed (with errors)",
            SessionStatus::Aborted => "completed (aborted by command)",
        }
    }
}

/// One account's outcome in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// Backed up; usable for restore.
    Completed,
    /// Failed (the error is in `errors`); nothing of it is in the session.
    Error,
    /// Not reached because the session was aborted.
    Skipped,
}

impl AccountState {
    fn token(self) -> &'static str {
        match self {
            AccountState::Completed => "completed",
            AccountState::Error => "error",
            AccountState::Skipped => "skipped",
        }
    }
    fn from_token(s: &str) -> Option<Self> {
        match s {
            "completed" => Some(AccountState::Completed),
            "error" => Some(AccountState::Error),
            "skipped" => Some(AccountState::Skipped),
            _ => None,
        }
    }
}

/// An account in a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionAccount {
    pub email: String,
    pub zimbra_id: String,
    pub mailbox_id: u32,
    pub state: AccountState,
    /// Full sessions: the snapshot's change number and redo position.
    pub change: Option<u64>,
    pub redo_seq: Option<u64>,
    pub redo_lsn: Option<u64>,
    /// Format 2 fulls: the account's `meta.xml` content, kept in session.xml
    /// (`<account ...><meta .../></account>`) instead of a file of its own.
    #[serde(skip)]
    pub meta: Option<AccountMeta>,
}

/// An archived redo log held by an incremental session (`redologs/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedoLogFile {
    pub seq: u64,
    pub name: String,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub closed: UtcMillis,
    pub size: u64,
    pub blake3: String,
}

/// A file of the session, for verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub blake3: String,
    /// Format 2: the file is an account file kept outside the session, at
    /// `pieces/<from>/<path>`, written by the full `from` (this session, or an
    /// earlier one whose copy of the account did not change since). `None`: at
    /// `sessions/<label>/<path>`.
    pub from: Option<Label>,
}

impl FileEntry {
    /// The target object holding this file of `session`.
    pub fn object_path(&self, session: &Label) -> String {
        match &self.from {
            Some(from) => piece_path(from, &self.path),
            None => format!("sessions/{session}/{}", self.path),
        }
    }
}

/// `pieces/<label>/<rel>`: an account file written by the full `label`, kept
/// beside the sessions so that later fulls can refer to it (see
/// `docs/ARCHITECTURE.md`, Backups).
pub fn piece_path(label: &Label, rel: &str) -> String {
    format!("pieces/{label}/{rel}")
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionError {
    pub account: Option<String>,
    pub message: String,
}

/// What was included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SessionOptions {
    pub compression: Compression,
    pub blobs: bool,
    pub hsm_blobs: bool,
    pub search_index: bool,
    pub shared_blobs: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            compression: Compression::Stored,
            blobs: true,
            hsm_blobs: true,
            search_index: false,
            shared_blobs: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionStats {
    pub blobs_new: u64,
    pub blobs_shared: u64,
    pub blob_bytes_new: u64,
    pub bytes_written: u64,
    pub packs: Vec<String>,
}

/// A session as session.xml describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub label: Label,
    pub status: SessionStatus,
    pub started: UtcMillis,
    pub ended: UtcMillis,
    pub server: String,
    pub options: SessionOptions,
    pub redo: Option<(u64, u64)>,
    pub redo_logs: Vec<RedoLogFile>,
    pub accounts: Vec<SessionAccount>,
    pub errors: Vec<SessionError>,
    pub files: Vec<FileEntry>,
    pub stats: SessionStats,
    /// Positions of `accounts` and `files` by id, built on first lookup.
    #[serde(skip)]
    pub lookup: Lookup,
}

/// `accounts/<id[0:3]>/<id[3:6]>/<zimbraId>`: where an account's files are in a session.
pub fn account_dir(zimbra_id: &str) -> String {
    let a = zimbra_id.get(0..3).unwrap_or(zimbra_id);
    let b = zimbra_id.get(3..6).unwrap_or("");
    if b.is_empty() {
        format!("accounts/{a}/_/{zimbra_id}")
    } else {
        format!("accounts/{a}/{b}/{zimbra_id}")
    }
}

fn b(v: bool) -> String {
    v.to_string()
}

impl Session {
    pub fn kind(&self) -> SessionKind {
        self.label.kind
    }

    /// Accounts whose backup in this session is usable.
    pub fn completed_accounts(&self) -> impl Iterator<Item = &SessionAccount> {
        self.accounts
            .iter()
            .filter(|a| a.state == AccountState::Completed)
    }

    pub fn account(&self, zimbra_id: &str) -> Option<&SessionAccount> {
        match self.lookup.account(
            zimbra_id,
            self.accounts.iter().map(|a| a.zimbra_id.as_str()),
            self.files.iter().map(|f| f.path.as_str()),
        ) {
            // The position is checked: an entry changed in place falls back to a scan.
            Found::At(i) => match self.accounts.get(i) {
                Some(a) if a.zimbra_id == zimbra_id => Some(a),
                _ => self.accounts.iter().find(|a| a.zimbra_id == zimbra_id),
            },
            Found::Absent => None,
            Found::Scan => self.accounts.iter().find(|a| a.zimbra_id == zimbra_id),
        }
    }

    /// The file entry of `rel`, if the session holds it.
    pub fn file(&self, rel: &str) -> Option<&FileEntry> {
        match self.lookup.file(
            rel,
            self.accounts.iter().map(|a| a.zimbra_id.as_str()),
            self.files.iter().map(|f| f.path.as_str()),
        ) {
            Found::At(i) => match self.files.get(i) {
                Some(f) if f.path == rel => Some(f),
                _ => self.files.iter().find(|f| f.path == rel),
            },
            Found::Absent => None,
            Found::Scan => self.files.iter().find(|f| f.path == rel),
        }
    }

    /// The target object holding the session's file `rel` (an account file of a
    /// format 2 full lives under `pieces/`, every other under the session).
    pub fn object_path(&self, rel: &str) -> String {
        match self.file(rel) {
            Some(f) => f.object_path(&self.label),
            None => format!("sessions/{}/{rel}", self.label),
        }
    }

    /// What a full recorded of an account: from session.xml (format 2) or its
    /// `meta.xml` (format 1).
    pub fn account_meta(
        &self,
        target: &dyn crate::target::Target,
        zimbra_id: &str,
    ) -> Result<AccountMeta> {
        if let Some(m) = self.account(zimbra_id).and_then(|a| a.meta.as_ref()) {
            return Ok(m.clone());
        }
        let path = format!(
            "sessions/{}/{}/meta.xml",
            self.label,
            account_dir(zimbra_id)
        );
        AccountMeta::parse(&format!("{}/{path}", target.url()), &target.get(&path)?)
    }

    /// The format this session needs: 2 when it keeps account files in `pieces/`
    /// or account metadata in session.xml, else 1 (readable by older versions).
    fn format_version(&self) -> u32 {
        if self.files.iter().any(|f| f.from.is_some())
            || self.accounts.iter().any(|a| a.meta.is_some())
        {
            2
        } else {
            1
        }
    }

    pub fn to_xml(&self) -> Vec<u8> {
        let mut w = XmlWriter::new();
        w.open(
            "session",
            &[
                ("formatVersion", self.format_version().to_string()),
                ("label", self.label.to_string()),
                ("type", self.label.kind.as_str().to_string()),
                ("status", self.status.token().to_string()),
                ("started", self.started.0.to_string()),
                ("ended", self.ended.0.to_string()),
                ("startedUtc", self.started.rfc3339()),
                ("endedUtc", self.ended.rfc3339()),
                ("server", self.server.clone()),
            ],
        );
        let o = &self.options;
        w.leaf(
            "options",
            &[
                ("compression", o.compression.as_str().to_string()),
                ("blobs", b(o.blobs)),
                ("hsmBlobs", b(o.hsm_blobs)),
                ("searchIndex", b(o.search_index)),
                ("sharedBlobs", b(o.shared_blobs)),
            ],
        );
        if let Some((first, last)) = self.redo {
            w.leaf(
                "redo",
                &[("first", first.to_string()), ("last", last.to_string())],
            );
        }
        w.open("redoLogs", &[("count", self.redo_logs.len().to_string())]);
        for l in &self.redo_logs {
            w.leaf(
                "log",
                &[
                    ("seq", l.seq.to_string()),
                    ("name", l.name.clone()),
                    ("firstLsn", l.first_lsn.to_string()),
                    ("lastLsn", l.last_lsn.to_string()),
                    ("closed", l.closed.0.to_string()),
                    ("size", l.size.to_string()),
                    ("blake3", l.blake3.clone()),
                ],
            );
        }
        w.close();
        w.open("accounts", &[("count", self.accounts.len().to_string())]);
        for a in &self.accounts {
            let mut attrs = vec![
                ("email", a.email.clone()),
                ("zimbraId", a.zimbra_id.clone()),
                ("mailboxId", a.mailbox_id.to_string()),
                ("status", a.state.token().to_string()),
            ];
            if let Some(c) = a.change {
                attrs.push(("change", c.to_string()));
            }
            if let Some(s) = a.redo_seq {
                attrs.push(("redoSeq", s.to_string()));
            }
            if let Some(l) = a.redo_lsn {
                attrs.push(("redoLsn", l.to_string()));
            }
            match &a.meta {
                None => w.leaf("account", &attrs),
                Some(m) => {
                    w.open("account", &attrs);
                    w.leaf("meta", &m.inline_attrs());
                    w.close();
                }
            }
        }
        w.close();
        w.open("errors", &[("count", self.errors.len().to_string())]);
        for e in &self.errors {
            let mut attrs = Vec::new();
            if let Some(a) = &e.account {
                attrs.push(("account", a.clone()));
            }
            attrs.push(("message", e.message.clone()));
            w.leaf("error", &attrs);
        }
        w.close();
        w.open("files", &[("count", self.files.len().to_string())]);
        for f in &self.files {
            let mut attrs = vec![
                ("path", f.path.clone()),
                ("size", f.size.to_string()),
                ("blake3", f.blake3.clone()),
            ];
            if let Some(from) = &f.from {
                attrs.push(("from", from.to_string()));
            }
            w.leaf("file", &attrs);
        }
        w.close();
        let s = &self.stats;
        w.leaf(
            "stats",
            &[
                ("blobsNew", s.blobs_new.to_string()),
                ("blobsShared", s.blobs_shared.to_string()),
                ("blobBytesNew", s.blob_bytes_new.to_string()),
                ("bytesWritten", s.bytes_written.to_string()),
                ("packs", s.packs.join(" ")),
            ],
        );
        w.finish()
    }

    /// Parses a session.xml; `path` names the file in errors.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Session> {
        let f = XmlFile { path };
        let root = f.parse(bytes)?;
        f.expect_root(&root, "session")?;
        let version: u32 = f.num(&root, "formatVersion")?;
        if version > FORMAT_VERSION {
            return Err(f.invalid(format!(
                "format version {version} is newer than this mailvault understands ({FORMAT_VERSION}); upgrade mailvault"
            )));
        }
        let label_s = f.req(&root, "label")?;
        let label =
            Label::parse(label_s).ok_or_else(|| f.invalid(format!("invalid label {label_s:?}")))?;
        let status_s = f.req(&root, "status")?;
        let status = SessionStatus::from_token(status_s)
            .ok_or_else(|| f.invalid(format!("invalid status {status_s:?}")))?;
        let bool_attr = |el: &Element, name: &str| -> Result<bool> {
            match f.req(el, name)? {
                "true" => Ok(true),
                "false" => Ok(false),
                v => Err(f.invalid(format!("attribute {name} is not true/false: {v:?}"))),
            }
        };
        let o = f.req_child(&root, "options")?;
        let comp = f.req(o, "compression")?;
        let options = SessionOptions {
            compression: Compression::parse(comp)
                .ok_or_else(|| f.invalid(format!("unknown compression {comp:?}")))?,
            blobs: bool_attr(o, "blobs")?,
            hsm_blobs: bool_attr(o, "hsmBlobs")?,
            search_index: bool_attr(o, "searchIndex")?,
            shared_blobs: bool_attr(o, "sharedBlobs")?,
        };
        let redo = match root.child("redo") {
            Some(r) => Some((f.num(r, "first")?, f.num(r, "last")?)),
            None => None,
        };
        let mut redo_logs = Vec::new();
        for l in f.req_child(&root, "redoLogs")?.children("log") {
            redo_logs.push(RedoLogFile {
                seq: f.num(l, "seq")?,
                name: f.req(l, "name")?.to_string(),
                first_lsn: f.num(l, "firstLsn")?,
                last_lsn: f.num(l, "lastLsn")?,
                closed: UtcMillis(f.num(l, "closed")?),
                size: f.num(l, "size")?,
                blake3: f.req(l, "blake3")?.to_string(),
            });
        }
        let mut accounts = Vec::new();
        for a in f.req_child(&root, "accounts")?.children("account") {
            let st = f.req(a, "status")?;
            let mut account = SessionAccount {
                email: f.req(a, "email")?.to_string(),
                zimbra_id: f.req(a, "zimbraId")?.to_string(),
                mailbox_id: f.num(a, "mailboxId")?,
                state: AccountState::from_token(st)
                    .ok_or_else(|| f.invalid(format!("invalid account status {st:?}")))?,
                change: f.opt_num(a, "change")?,
                redo_seq: f.opt_num(a, "redoSeq")?,
                redo_lsn: f.opt_num(a, "redoLsn")?,
                meta: None,
            };
            if let Some(m) = a.child("meta") {
                account.meta = Some(AccountMeta::from_inline(&f, m, &account, label)?);
            }
            accounts.push(account);
        }
        let mut errors = Vec::new();
        for e in f.req_child(&root, "errors")?.children("error") {
            errors.push(SessionError {
                account: e.attr("account").map(str::to_string),
                message: f.req(e, "message")?.to_string(),
            });
        }
        let mut files = Vec::new();
        for e in f.req_child(&root, "files")?.children("file") {
            let from = match e.attr("from") {
                None => None,
                Some(l) => Some(
                    Label::parse(l)
                        .ok_or_else(|| f.invalid(format!("invalid label in from: {l:?}")))?,
                ),
            };
            let path = f.req(e, "path")?.to_string();
            if from.is_some() && (path.starts_with('/') || path.split('/').any(|p| p == "..")) {
                return Err(f.invalid(format!("invalid file path {path:?}")));
            }
            files.push(FileEntry {
                path,
                size: f.num(e, "size")?,
                blake3: f.req(e, "blake3")?.to_string(),
                from,
            });
        }
        let s = f.req_child(&root, "stats")?;
        let stats = SessionStats {
            blobs_new: f.num(s, "blobsNew")?,
            blobs_shared: f.num(s, "blobsShared")?,
            blob_bytes_new: f.num(s, "blobBytesNew")?,
            bytes_written: f.num(s, "bytesWritten")?,
            packs: f
                .req(s, "packs")?
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        };
        Ok(Session {
            label,
            status,
            started: UtcMillis(f.num(&root, "started")?),
            ended: UtcMillis(f.num(&root, "ended")?),
            server: f.req(&root, "server")?.to_string(),
            options,
            redo,
            redo_logs,
            accounts,
            errors,
            files,
            stats,
            lookup: Lookup::default(),
        })
    }
}

/// `blobs.lst`: the digests a snapshot references, one lowercase hex digest per
/// line, sorted, no duplicates.
pub fn encode_blob_list(digests: &[mv_types::Digest]) -> Vec<u8> {
    let mut sorted = digests.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out = Vec::with_capacity(sorted.len() * 65);
    for d in sorted {
        out.extend_from_slice(d.to_hex().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Parses `blobs.lst`, strictly (a truncated last line is an error).
pub fn parse_blob_list(path: &str, bytes: &[u8]) -> Result<Vec<mv_types::Digest>> {
    let bad = |r: String| crate::BackupError::corrupt(path, r);
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        return Err(bad("truncated (no newline at the end)".into()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not text".into()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        out.push(
            line.parse()
                .map_err(|_| bad(format!("line {}: not a digest", i + 1)))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Session {
        Session {
            label: "full-20140605.080023.296".parse().unwrap(),
            status: SessionStatus::CompletedWithErrors,
            started: UtcMillis(1_401_955_223_296),
            ended: UtcMillis(1_401_955_262_144),
            server: "mail1".into(),
            options: SessionOptions::default(),
            redo: Some((53, 57)),
            redo_logs: vec![RedoLogFile {
                seq: 53,
                name: "redo-20140605.080000.000-seq53.log".into(),
                first_lsn: 1,
                last_lsn: 9,
                closed: UtcMillis(5),
                size: 100,
                blake3: "ab".into(),
            }],
            accounts: vec![SessionAccount {
                email: "u@d".into(),
                zimbra_id: "0123456789".into(),
                mailbox_id: 7,
                state: AccountState::Completed,
                change: Some(3),
                redo_seq: Some(53),
                redo_lsn: Some(10),
                meta: None,
            }],
            errors: vec![SessionError {
                account: Some("v@d".into()),
                message: "broken <blob>\nsecond line".into(),
            }],
            files: vec![FileEntry {
                path: "ldap/ldap.bak".into(),
                size: 3,
                blake3: "cd".into(),
                from: None,
            }],
            stats: SessionStats {
                blobs_new: 1,
                blobs_shared: 2,
                blob_bytes_new: 3,
                bytes_written: 4,
                packs: vec!["p1".into(), "p2".into()],
            },
            lookup: Lookup::default(),
        }
    }

    #[test]
    fn lookups_by_id_find_what_a_scan_finds() {
        let mut s = sample();
        let mut second = s.accounts[0].clone();
        second.email = "dup@d".into();
        s.accounts.push(second);
        assert_eq!(s.account("0123456789").unwrap().email, "u@d");
        assert!(s.account("nope").is_none());
        assert_eq!(s.file("ldap/ldap.bak").unwrap().size, 3);
        assert!(s.file("ldap/other").is_none());
        // Entries added after the first lookup are still found.
        s.files.push(FileEntry {
            path: "ldap/other".into(),
            size: 9,
            blake3: "ef".into(),
            from: None,
        });
        assert_eq!(s.file("ldap/other").unwrap().size, 9);
        let copy = s.clone();
        assert_eq!(copy.file("ldap/other").unwrap().size, 9);
        assert_eq!(copy, s);
    }

    #[test]
    fn session_xml_round_trips() {
        let s = sample();
        let back = Session::parse("s", &s.to_xml()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn format_2_round_trips_and_format_1_stays_1() {
        let s = sample();
        assert!(String::from_utf8_lossy(&s.to_xml()).contains("formatVersion=\"1\""));
        let mut s2 = sample();
        let label = s2.label;
        let a = &mut s2.accounts[0];
        a.meta = Some(AccountMeta {
            email: a.email.clone(),
            zimbra_id: a.zimbra_id.clone(),
            mailbox_id: a.mailbox_id,
            label: label.to_string(),
            change: 3,
            redo_seq: 53,
            redo_lsn: 10,
            snapshot_at: UtcMillis(1),
            started: UtcMillis(2),
            ended: UtcMillis(3),
            items: 4,
            messages: 5,
            blobs: 6,
            blob_bytes: 7,
            new_blobs: 8,
            new_blob_bytes: 9,
            db_bytes: 10,
            blobs_included: true,
            hsm_blobs_included: false,
        });
        s2.files.push(FileEntry {
            path: format!("{}/db/mailbox.sqlite", account_dir("0123456789")),
            size: 5,
            blake3: "ef".into(),
            from: Some("full-20140601.080023.296".parse().unwrap()),
        });
        let xml = s2.to_xml();
        assert!(String::from_utf8_lossy(&xml).contains("formatVersion=\"2\""));
        let back = Session::parse("s", &xml).unwrap();
        assert_eq!(back, s2);
        assert_eq!(
            back.object_path(&s2.files[1].path),
            "pieces/full-20140601.080023.296/accounts/012/345/0123456789/db/mailbox.sqlite"
        );
        assert_eq!(
            back.object_path("ldap/ldap.bak"),
            format!("sessions/{label}/ldap/ldap.bak")
        );
    }

    #[test]
    fn account_dir_is_zimbra_shaped() {
        assert_eq!(
            account_dir("79c2d7b5-4b5e-4a1c-8b3e-0123456789ab"),
            "accounts/79c/2d7/79c2d7b5-4b5e-4a1c-8b3e-0123456789ab"
        );
    }

    #[test]
    fn blob_lists_are_strict() {
        let d = [mv_types::Digest::of(b"b"), mv_types::Digest::of(b"a")];
        let enc = encode_blob_list(&d);
        let mut back = parse_blob_list("x", &enc).unwrap();
        back.sort();
        let mut want = d.to_vec();
        want.sort();
        assert_eq!(back, want);
        assert!(parse_blob_list("x", &enc[..enc.len() - 1]).is_err());
        assert!(parse_blob_list("x", b"").unwrap().is_empty());
    }
}
