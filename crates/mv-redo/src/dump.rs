//! `zmredodump`: print (or, with `-q`, only verify) redo log files.
//!
//! One line per file, `File: <path> (sequence N)`, then one line per op in the shape
//! Zimbra administrators know:
//!
//! ```text
//! [0000f311 - 0000f350: 64 bytes; tstamp: 2010/11/19 11:21:30.852 +01:00] txn 2544 [DeleteItem] ver=1, lsn=77, tstamp=1290187290852, change=3913, mailbox=17, ids=[304, 308]
//! ```
//!
//! The bracket gives the record's first and last byte offsets (8 hex digits), its size
//! and its time in local time; `--no-offset` leaves out the offsets and size but keeps
//! the time (`[tstamp: ...] txn ...`), so dumps of the same ops in different files
//! compare equal. Then come the op's own fields (ids, folder, uid, digest, size,
//! subject, flags, names...).
//!
//! `--m ids` shows only records of those mailboxes. PutBlob content records belong to
//! no mailbox (mailbox 0) and are therefore skipped unless 0 is among the ids: which
//! mailbox uses a blob is said by the CreateMessage records, which do show (with the
//! digest). `--show-blob` prints a PutBlob's content (and a contact's vCard or an
//! appointment's iCalendar text) after its line: text escaped (`\r`, `\t`, `\\`,
//! `\x..` for other control characters), binary content as a hexdump.
//!
//! Damage stops the file: the error (file and offset) and a hexdump of the 128 bytes
//! around the bad offset are printed, and the dump goes on with the next file. At the
//! end, if any file had errors, `Files with errors:` and their list; `run` then
//! returns `Ok(false)` (the CLI exits 1).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mv_types::Digest;

use crate::archive::logs_in_dir;
use crate::error::RedoError;
use crate::ops::{self, Op};
use crate::reader::{Located, RedoFileReader};

/// The options of `zmredodump`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// `-q`: only verify; print file names and errors.
    pub quiet: bool,
    /// `--m ids`: only these mailboxes.
    pub mailboxes: Option<Vec<u32>>,
    /// `--no-offset`: leave out the offsets and sizes.
    pub no_offset: bool,
    /// `--show-blob`: print content.
    pub show_blob: bool,
}

/// Dumps `inputs` (files, or directories: their archived logs in sequence order, then
/// `redo.log`). Returns `Ok(true)` if every file was clean; `Err` only if writing to
/// `out` fails.
pub fn run(opts: &DumpOptions, inputs: &[PathBuf], out: &mut dyn Write) -> Result<bool, io::Error> {
    let mut bad: Vec<PathBuf> = Vec::new();
    for input in inputs {
        let files = if input.is_dir() {
            // The redolog directory: its archive/ first (older sequences), as
            // `zmredodump /opt/zimbra/redolog/` finds every record there.
            let archive = input.join("archive");
            let listed =
                if archive.is_dir() && input.join(crate::archive::CURRENT_LOG_NAME).is_file() {
                    logs_in_dir(&archive).and_then(|mut a| {
                        a.extend(logs_in_dir(input)?);
                        Ok(a)
                    })
                } else {
                    logs_in_dir(input)
                };
            match listed {
                Ok(f) => {
                    if f.is_empty() {
                        writeln!(out, "No redo log files in {}", input.display())?;
                    }
                    f
                }
                Err(e) => {
                    writeln!(out, "Error: {e}")?;
                    bad.push(input.clone());
                    continue;
                }
            }
        } else {
            vec![input.clone()]
        };
        for f in files {
            if !dump_file(opts, &f, out)? {
                bad.push(f);
            }
        }
    }
    if !bad.is_empty() {
        writeln!(out)?;
        writeln!(out, "Files with errors:")?;
        for b in &bad {
            writeln!(out, "  {}", b.display())?;
        }
    }
    Ok(bad.is_empty())
}

fn dump_file(opts: &DumpOptions, path: &Path, out: &mut dyn Write) -> io::Result<bool> {
    let reader = match RedoFileReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "File: {}", path.display())?;
            report_error(out, path, &e)?;
            return Ok(false);
        }
    };
    writeln!(
        out,
        "File: {} (sequence {})",
        path.display(),
        reader.header().sequence
    )?;
    // With a mailbox filter a message's content (a PutBlob of mailbox 0) is
    // shown under the selected CreateMessage that stores it, as Zimbra shows an
    // item's blob with its op.
    let mut blobs: HashMap<[u8; 32], Vec<u8>> = HashMap::new();
    let mut blob_txn = None;
    for item in reader {
        match item {
            Ok(l) => {
                if opts.quiet {
                    continue;
                }
                if let Some(m) = &opts.mailboxes {
                    if opts.show_blob {
                        if blob_txn != Some(l.record.txn) {
                            blobs.clear();
                            blob_txn = Some(l.record.txn);
                        }
                        if let Op::PutBlob(b) = &l.record.op {
                            blobs.insert(b.digest, b.data.clone());
                        }
                    }
                    if !m.contains(&l.record.mailbox.0) {
                        continue;
                    }
                }
                writeln!(out, "{}", op_line(&l, opts.no_offset))?;
                if opts.show_blob {
                    match &l.record.op {
                        Op::CreateMessage(c) if opts.mailboxes.is_some() => {
                            if let Some(data) = blobs.get(&c.digest) {
                                match &c.prefix {
                                    Some(p) => write_blob(out, &[p.as_slice(), data].concat())?,
                                    None => write_blob(out, data)?,
                                }
                            }
                        }
                        op => write_content(out, op)?,
                    }
                }
            }
            Err(e) => {
                report_error(out, path, &e)?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn report_error(out: &mut dyn Write, path: &Path, e: &RedoError) -> io::Result<()> {
    writeln!(out, "Error: {e}")?;
    if let Some(offset) = e.offset() {
        write_damage_hexdump(out, path, offset)?;
    }
    Ok(())
}

/// Up to 128 bytes around `offset` (from 64 before it, 16-aligned), the line holding
/// it marked with `>`.
fn write_damage_hexdump(out: &mut dyn Write, path: &Path, offset: u64) -> io::Result<()> {
    let Ok(f) = File::open(path) else {
        return Ok(());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = offset.saturating_sub(64) & !15;
    let end = (start + 128).min(len);
    if end <= start {
        writeln!(
            out,
            "  (offset {offset:#010x} is at or past the end of the {len}-byte file)"
        )?;
        return Ok(());
    }
    let mut buf = vec![0u8; (end - start) as usize];
    if f.read_exact_at(&mut buf, start).is_err() {
        return Ok(());
    }
    writeln!(out, "Bytes around offset {offset:08x}:")?;
    write_hexdump(out, &buf, start, Some(offset))
}

/// 16 bytes per line: `> 0000f300  4d 56 ... 00  |MV..............|`.
pub fn write_hexdump(
    out: &mut dyn Write,
    bytes: &[u8],
    base: u64,
    mark: Option<u64>,
) -> io::Result<()> {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let at = base + (i as u64) * 16;
        let marked = mark.is_some_and(|m| m >= at && m < at + 16);
        let mut hex = String::with_capacity(48);
        for (j, b) in chunk.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
            }
            hex.push_str(&format!("{b:02x} "));
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(
            out,
            "{} {at:08x}  {hex:<49} |{ascii}|",
            if marked { '>' } else { ' ' }
        )?;
    }
    Ok(())
}

/// One op's line (see the module docs).
pub fn op_line(l: &Located, no_offset: bool) -> String {
    let r = &l.record;
    let tstamp = r.timestamp.display_local();
    let head = if no_offset {
        format!("[tstamp: {tstamp}]")
    } else {
        format!(
            "[{:08x} - {:08x}: {} bytes; tstamp: {tstamp}]",
            l.offset,
            l.offset + l.len - 1,
            l.len
        )
    };
    let fields = op_fields(&r.op);
    format!(
        "{head} txn {} [{}] ver={}, lsn={}, tstamp={}, change={}, mailbox={}{}{fields}",
        r.txn,
        r.op.name(),
        crate::format::PAYLOAD_VERSION,
        r.lsn,
        r.timestamp.0,
        r.change,
        r.mailbox,
        if fields.is_empty() { "" } else { ", " },
    )
}

/// The op-specific part of a dump line.
pub fn op_fields(op: &Op) -> String {
    match op {
        Op::PutBlob(b) => format!("digest={}, size={}", Digest(b.digest), b.data.len()),
        Op::CreateMailbox(m) => format!(
            "account={}, email={}, uidvalidity={}",
            m.account_id, m.email, m.uid_validity
        ),
        Op::DeleteMailbox(m) => match m.replaced_by {
            Some(by) => format!(
                "account={}, replacedBy={by}, restoredFrom={}, toMailbox={}, toChange={}, \
                 restoredChange={}{}",
                m.account_id,
                m.restored_from.as_deref().unwrap_or("?"),
                m.restored_to_mailbox.unwrap_or(0),
                m.restored_to_change.unwrap_or(0),
                m.restored_change.unwrap_or(0),
                if m.skip_deletes == Some(true) {
                    ", skipDeletes"
                } else {
                    ""
                }
            ),
            None => format!("account={}", m.account_id),
        },
        Op::RenameMailbox(m) => format!("email={}", m.new_email),
        Op::CreateFolder(f) => format!(
            "id={}, parent={}, name={:?}, view={}, uidvalidity={}",
            f.id, f.parent_id, f.name, f.view, f.uid_validity
        ),
        Op::RenameFolder(f) => format!(
            "id={}, name={:?}, parent={}",
            f.id, f.new_name, f.new_parent_id
        ),
        Op::DeleteFolder(f) => format!("folders={:?}, ids={:?}", f.folder_ids, f.item_ids),
        Op::CreateTag(t) => format!("id={}, name={:?}, color={}", t.id, t.name, t.color),
        Op::RenameTag(t) => format!("id={}, name={:?}", t.id, t.new_name),
        Op::DeleteTag(t) => format!("id={}", t.id),
        Op::CreateMessage(m) => {
            let mut s = format!(
                "id={}, folder={}, uid={}, digest={}, size={}, received={}, flags={}, tags={:?}",
                m.id,
                m.folder_id,
                m.imap_uid,
                Digest(m.digest),
                m.size,
                m.received_ms,
                flag_text(m.flags),
                m.tags
            );
            let e = &m.envelope;
            for (k, v) in [
                ("subject", &e.subject),
                ("from", &e.from),
                ("to", &e.to),
                ("cc", &e.cc),
                ("messageId", &e.message_id),
            ] {
                if !v.is_empty() {
                    s.push_str(&format!(", {k}={v:?}"));
                }
            }
            if e.date_ms != 0 {
                s.push_str(&format!(", date={}", e.date_ms));
            }
            if let Some(p) = &m.prefix {
                s.push_str(&format!(", prefix={}", p.len()));
            }
            s
        }
        Op::SetFlags(f) => {
            let items: Vec<String> = f
                .items
                .iter()
                .map(|(id, fl)| format!("{id}:{}", flag_text(*fl)))
                .collect();
            format!("items=[{}]", items.join(", "))
        }
        Op::SetTags(t) => {
            let items: Vec<String> = t
                .items
                .iter()
                .map(|(id, tags)| format!("{id}:{tags:?}"))
                .collect();
            format!("items=[{}]", items.join(", "))
        }
        Op::MoveItems(m) => {
            let items: Vec<String> = m
                .items
                .iter()
                .map(|(id, uid)| format!("{id}(uid {uid})"))
                .collect();
            format!("folder={}, items=[{}]", m.to_folder_id, items.join(", "))
        }
        Op::CopyItems(c) => {
            let items: Vec<String> = c
                .items
                .iter()
                .map(|(src, new, uid)| format!("{src}->{new}(uid {uid})"))
                .collect();
            format!("folder={}, items=[{}]", c.to_folder_id, items.join(", "))
        }
        Op::DeleteItems(d) => {
            let keep = match d.keep_until_ms {
                Some(t) => format!(", dumpster until {t}"),
                None => String::new(),
            };
            if d.folder_id == 0 {
                format!("ids={:?}{keep}", d.ids)
            } else {
                format!("folder={}, ids={:?}{keep}", d.folder_id, d.ids)
            }
        }
        Op::PutContact(c) => format!(
            "id={}, folder={}, name={:?}, vcard={} bytes",
            c.id,
            c.folder_id,
            c.name,
            c.vcard.len()
        ),
        Op::SetCalendarItem(a) => format!(
            "id={}, folder={}, uid={:?}, sequence={}, dtstamp={}, summary={:?}, replaces={}, ics={} bytes",
            a.id,
            a.folder_id,
            a.uid,
            a.sequence,
            a.dtstamp_ms,
            a.summary,
            a.replaces,
            a.ics.len()
        ),
        Op::SetSubscription(sub) => format!("name={:?}, subscribed={}", sub.name, sub.subscribed),
        Op::RecoverDeleted(r) => {
            let items: Vec<String> = r
                .items
                .iter()
                .map(|(id, folder, uid)| format!("{id}->folder {folder} uid {uid}"))
                .collect();
            format!("items=[{}]", items.join(", "))
        }
        Op::PurgeDumpster(p) => format!("ids={:?}", p.ids),
    }
}

/// `5(\Seen \Flagged)`; unknown bits show in the number only.
fn flag_text(f: u32) -> String {
    let names: Vec<&str> = [
        (ops::flags::SEEN, "\\Seen"),
        (ops::flags::ANSWERED, "\\Answered"),
        (ops::flags::FLAGGED, "\\Flagged"),
        (ops::flags::DELETED, "\\Deleted"),
        (ops::flags::DRAFT, "\\Draft"),
    ]
    .iter()
    .filter(|(bit, _)| f & bit != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        f.to_string()
    } else {
        format!("{f}({})", names.join(" "))
    }
}

/// `--show-blob`: the content an op carries, after its line.
fn write_content(out: &mut dyn Write, op: &Op) -> io::Result<()> {
    let bytes: &[u8] = match op {
        Op::PutBlob(b) => &b.data,
        Op::PutContact(c) => c.vcard.as_bytes(),
        Op::SetCalendarItem(a) => a.ics.as_bytes(),
        _ => return Ok(()),
    };
    write_blob(out, bytes)
}

/// The content as it was stored, byte for byte, between Zimbra's markers: cut
/// it out and it can be delivered again (`zmlmtpinject`, or any LMTP client).
/// The newline before the end marker is not part of the content.
fn write_blob(out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    writeln!(out, "<START OF BLOB>")?;
    out.write_all(bytes)?;
    writeln!(out)?;
    writeln!(out, "<END OF BLOB>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::{RedoConfig, RedoLog};
    use mv_types::UtcMillis;

    fn run_to_string(opts: &DumpOptions, inputs: &[PathBuf]) -> (bool, String) {
        let mut out = Vec::new();
        let clean = run(opts, inputs, &mut out).unwrap();
        (clean, String::from_utf8(out).unwrap())
    }

    /// Archive with sequence 1 (every sample op, mailbox 17, and one op of mailbox 9),
    /// then redo.log (sequence 2) with one DeleteItem of mailbox 17.
    fn sample_home() -> (tempfile::TempDir, RedoConfig) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let (log, _) = RedoLog::open(cfg.clone()).unwrap();
        let mut recs: Vec<_> = sample_ops()
            .into_iter()
            .map(|op| rec(17, 3913, op))
            .collect();
        recs[0].mailbox = mv_types::MailboxId(0);
        recs.push(rec(9, 1, folder("other mailbox")));
        put(&log, recs);
        log.rollover().unwrap().unwrap();
        put(&log, vec![rec(17, 3914, sample_ops()[15].clone())]);
        (dir, cfg)
    }

    #[test]
    fn lines_look_like_zimbra_s() {
        let (_dir, cfg) = sample_home();
        let redolog = cfg.log_path.parent().unwrap().to_path_buf();
        let (clean, text) = run_to_string(&DumpOptions::default(), std::slice::from_ref(&redolog));
        assert!(clean, "{text}");
        // The redolog dir: its archive/ (sequence 1) first, then redo.log.
        let all: Vec<&str> = text.lines().collect();
        assert!(
            all[0].starts_with("File: ") && all[0].ends_with("(sequence 1)"),
            "{text}"
        );
        let at = all
            .iter()
            .position(|l| *l == format!("File: {} (sequence 2)", cfg.log_path.display()))
            .unwrap_or_else(|| panic!("no redo.log in {text}"));
        let lines = &all[at..];
        assert_eq!(lines.len(), 2, "{text}");
        let ts = UtcMillis(T0).display_local();
        let len = 48 + sample_ops()[15].encode_payload().len();
        assert_eq!(
            lines[1],
            format!(
                "[00000040 - {:08x}: {len} bytes; tstamp: {ts}] txn 2544 [DeleteItem] ver=1, lsn=20, \
                 tstamp=1290187290852, change=3914, mailbox=17, ids=[304, 308]",
                64 + len - 1
            )
        );
        let (_, text) = run_to_string(
            &DumpOptions {
                no_offset: true,
                ..Default::default()
            },
            &[redolog],
        );
        assert!(text.lines().last().unwrap().starts_with(&format!(
            "[tstamp: {ts}] txn 2544 [DeleteItem] ver=1, lsn=20, tstamp=1290187290852"
        )));

        // The archive: every op type, each with its fields.
        let (clean, text) = run_to_string(
            &DumpOptions::default(),
            std::slice::from_ref(&cfg.archive_dir),
        );
        assert!(clean);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 19);
        assert!(lines[0].ends_with("-seq1.log (sequence 1)"), "{}", lines[0]);
        for (line, want) in lines[1..].iter().zip([
            "[PutBlob] ver=1, lsn=1, tstamp=1290187290852, change=3913, mailbox=0, digest=",
            "[CreateMailbox] ver=1, lsn=2, tstamp=1290187290852, change=3913, mailbox=17, account=5b2d-acct, email=user1@example.com, uidvalidity=9",
            "[DeleteMailbox] ver=1, lsn=3, tstamp=1290187290852, change=3913, mailbox=17, account=5b2d-acct",
            "[RenameMailbox] ver=1, lsn=4, tstamp=1290187290852, change=3913, mailbox=17, email=user2@example.com",
            "[CreateFolder] ver=1, lsn=5, tstamp=1290187290852, change=3913, mailbox=17, id=300, parent=1, name=\"Projects\", view=message, uidvalidity=7",
            "[RenameFolder] ver=1, lsn=6, tstamp=1290187290852, change=3913, mailbox=17, id=300, name=\"Old projects\", parent=2",
            "[DeleteFolder] ver=1, lsn=7, tstamp=1290187290852, change=3913, mailbox=17, folders=[300, 301], ids=[400]",
            "[CreateTag] ver=1, lsn=8, tstamp=1290187290852, change=3913, mailbox=17, id=64, name=\"urgent\", color=3",
            "[RenameTag] ver=1, lsn=9, tstamp=1290187290852, change=3913, mailbox=17, id=64, name=\"later\"",
            "[DeleteTag] ver=1, lsn=10, tstamp=1290187290852, change=3913, mailbox=17, id=64",
            "[CreateMessage] ver=1, lsn=11, tstamp=1290187290852, change=3913, mailbox=17, id=256, folder=2, uid=1, digest=",
            "[SetFlags] ver=1, lsn=12, tstamp=1290187290852, change=3913, mailbox=17, items=[256:1(\\Seen), 257:0]",
            "[SetTags] ver=1, lsn=13, tstamp=1290187290852, change=3913, mailbox=17, items=[256:[64, 65], 257:[]]",
            "[MoveItems] ver=1, lsn=14, tstamp=1290187290852, change=3913, mailbox=17, folder=3, items=[256(uid 7)]",
            "[CopyItems] ver=1, lsn=15, tstamp=1290187290852, change=3913, mailbox=17, folder=5, items=[256->258(uid 3)]",
            "[DeleteItem] ver=1, lsn=16, tstamp=1290187290852, change=3913, mailbox=17, ids=[304, 308]",
            "[PutContact] ver=1, lsn=17, tstamp=1290187290852, change=3913, mailbox=17, id=500, folder=7, name=\"Ann\", vcard=32 bytes",
            "[SetCalendarItem] ver=1, lsn=18, tstamp=1290187290852, change=3913, mailbox=17, id=600, folder=10, uid=\"uid-1@x\", sequence=2, dtstamp=1290187290852, summary=\"Lunch\", replaces=0, ics=32 bytes",
            "[CreateFolder] ver=1, lsn=19, tstamp=1290187290852, change=1, mailbox=9, id=300",
        ]) {
            assert!(line.contains(want), "{line}\n  should contain\n{want}");
        }
        let msg = lines[11];
        assert!(msg.contains("size=53, received=1290187290852, flags=5(\\Seen \\Flagged), tags=[64], subject=\"hi\", from=\"a@b\", prefix=20"), "{msg}");
        assert!(lines[1].ends_with(", size=33"));
    }

    #[test]
    fn subscription_fields() {
        let op = Op::SetSubscription(crate::ops::SetSubscription {
            name: "Projects/2026".into(),
            subscribed: false,
        });
        assert_eq!(op_fields(&op), "name=\"Projects/2026\", subscribed=false");
        let back = Op::decode_payload(op.op_type(), &op.encode_payload()).unwrap();
        assert_eq!(back, op);
    }

    #[test]
    fn quiet_mailbox_filter_and_show_blob() {
        let (_dir, cfg) = sample_home();
        let inputs = [cfg.archive_dir.clone(), cfg.log_path.clone()];
        let (clean, text) = run_to_string(
            &DumpOptions {
                quiet: true,
                ..Default::default()
            },
            &inputs,
        );
        assert!(clean);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| l.starts_with("File: ")));

        let only9 = DumpOptions {
            mailboxes: Some(vec![9]),
            ..Default::default()
        };
        let (_, text) = run_to_string(&only9, &inputs);
        let ops: Vec<&str> = text.lines().filter(|l| !l.starts_with("File: ")).collect();
        assert_eq!(ops.len(), 1, "{text}");
        assert!(ops[0].contains("mailbox=9, id=300"));

        // PutBlob belongs to mailbox 0: skipped unless 0 is asked for.
        let m17 = DumpOptions {
            mailboxes: Some(vec![17]),
            ..Default::default()
        };
        let (_, text) = run_to_string(&m17, &inputs);
        assert_eq!(
            text.lines().filter(|l| l.contains("mailbox=17")).count(),
            18
        );
        assert!(!text.contains("[PutBlob]"));
        let m0 = DumpOptions {
            mailboxes: Some(vec![0]),
            show_blob: true,
            ..Default::default()
        };
        let (_, text) = run_to_string(&m0, &inputs);
        assert!(text.contains("[PutBlob]"));
        assert!(
            text.contains(
                "<START OF BLOB>\nSubject: hi\r\nFrom: a@b\r\n\r\nhello\r\n\n<END OF BLOB>\n"
            ),
            "{text}"
        );
        // Filtered by mailbox, the content comes with the message stored from it.
        let m17_blob = DumpOptions {
            mailboxes: Some(vec![17]),
            show_blob: true,
            ..Default::default()
        };
        let (_, text) = run_to_string(&m17_blob, &inputs);
        let create = text
            .find("[CreateMessage]")
            .expect("a CreateMessage of mailbox 17");
        // The message's own header lines come first, as it is stored.
        assert!(
            text[create..].contains("\n<START OF BLOB>\nReturn-Path: <a@b>\r\nSubject: hi\r\n"),
            "{text}"
        );
        assert!(!text.contains("[PutBlob]"));
    }

    #[test]
    fn binary_blobs_come_out_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let (log, _) = RedoLog::open(cfg.clone()).unwrap();
        put(&log, vec![rec(0, 0, blob(&[0, 1, 2, 0xff, b'A']))]);
        let mut bytes = Vec::new();
        run(
            &DumpOptions {
                show_blob: true,
                ..Default::default()
            },
            std::slice::from_ref(&cfg.log_path),
            &mut bytes,
        )
        .unwrap();
        let block = b"<START OF BLOB>\n\x00\x01\x02\xff\x41\n<END OF BLOB>\n";
        assert!(
            bytes.windows(block.len()).any(|w| w == block),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    #[test]
    fn damage_is_hexdumped_and_listed_and_the_dump_goes_on() {
        let (_dir, cfg) = sample_home();
        let archive = crate::list_archive(&cfg.archive_dir).unwrap()[0]
            .path
            .clone();
        let locs: Vec<_> = RedoFileReader::open(&archive)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let bad = &locs[5];
        let mut bytes = std::fs::read(&archive).unwrap();
        bytes[(bad.offset + 30) as usize] ^= 0x55;
        std::fs::write(&archive, &bytes).unwrap();
        let missing = cfg.archive_dir.join("redo-20101119.172130.852-seq99.log");

        let inputs = [archive.clone(), missing.clone(), cfg.log_path.clone()];
        let (clean, text) = run_to_string(&DumpOptions::default(), &inputs);
        assert!(!clean);
        let lines: Vec<&str> = text.lines().collect();
        let err = lines.iter().position(|l| l.starts_with("Error: ")).unwrap();
        assert_eq!(
            lines[err],
            format!(
                "Error: corrupt redo log {} at offset {} (0x{:08x}): record checksum mismatch {}",
                archive.display(),
                bad.offset,
                bad.offset,
                lines[err].rsplit_once("mismatch ").unwrap().1
            )
        );
        // The five records before it were printed.
        assert_eq!(lines[1..err].len(), 5);
        assert_eq!(
            lines[err + 1],
            format!("Bytes around offset {:08x}:", bad.offset)
        );
        let dump: Vec<&str> = lines[err + 2..]
            .iter()
            .take_while(|l| l.starts_with([' ', '>']))
            .copied()
            .collect();
        assert_eq!(dump.len(), 8, "{text}");
        let marked: Vec<&&str> = dump.iter().filter(|l| l.starts_with('>')).collect();
        assert_eq!(marked.len(), 1);
        let line_at = u64::from_str_radix(&marked[0][2..10], 16).unwrap();
        assert!(
            line_at <= bad.offset && bad.offset < line_at + 16,
            "{}",
            marked[0]
        );
        assert!(dump[0].starts_with(&format!("  {:08x}  ", (bad.offset - 64) & !15)));
        // The dump went on: the missing file's error, then redo.log's op.
        assert!(text.contains(&format!(
            "File: {}\nError: I/O error on {}",
            missing.display(),
            missing.display()
        )));
        assert!(text.contains("(sequence 2)\n["));
        let tail: Vec<&str> = lines.iter().rev().take(3).rev().copied().collect();
        assert_eq!(
            tail,
            [
                "Files with errors:".to_string(),
                format!("  {}", archive.display()),
                format!("  {}", missing.display())
            ]
        );
        // -q reports the same errors.
        let (clean, text) = run_to_string(
            &DumpOptions {
                quiet: true,
                ..Default::default()
            },
            &inputs,
        );
        assert!(!clean);
        assert!(text.contains("Files with errors:"));
        assert!(!text.contains("[CreateMailbox]"));
    }
}
