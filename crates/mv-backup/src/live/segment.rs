//! A shipped segment: a byte range of one redo log file holding whole,
//! CRC-checked records, behind a small manifest saying what it covers.
//!
//! ```text
//! bytes  field
//!   8    magic "MVSEG\0\0\x01"
//!   8    redo log sequence
//!   8    start: byte offset of the range in the redo log file (0: the range
//!        begins with the file's 64-byte header, as it was while the file was open)
//!   8    length of the range
//!   8    first LSN
//!   8    last LSN
//!   4    record count
//!   4    reserved, zero
//!   8    timestamp of the last record (UTC milliseconds)
//!  32    BLAKE3 of the range
//!   4    the first 4 bytes of the BLAKE3 of the 96 bytes above
//!   n    the range
//! ```
//!
//! The manifest's check bytes find a damaged manifest, the BLAKE3 a torn or
//! truncated range; every record is then decoded again with its own CRC. The
//! segments of one sequence, laid end to end from offset 0, are a prefix of that
//! redo log file: readers rebuild an open log from them
//! ([`super::assemble`]). Redo records carry message content (`PutBlob`), so a
//! segment needs no blob of its own.

use mv_redo::format::{self, FileHeader, HEADER_LEN as FILE_HEADER_LEN};
use mv_types::UtcMillis;

pub const MAGIC: [u8; 8] = *b"MVSEG\0\0\x01";
/// Length of the manifest before the range.
pub const MANIFEST_LEN: usize = 100;

/// What a segment covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    pub sequence: u64,
    pub start: u64,
    pub len: u64,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub records: u32,
    pub last_time: UtcMillis,
    pub blake3: [u8; 32],
}

impl Manifest {
    /// Offset just past the range in the redo log file.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// What a walk over a range of whole records found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walk {
    /// Bytes of whole records (the file header included when the range starts at 0).
    pub len: usize,
    pub records: u32,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub last_time: i64,
}

/// Walks the whole records at the start of `data` (which begins at `start` in
/// the log file), stopping before the first incomplete one, the first whose LSN
/// is above `upto`, or at `max_records`. With `strict`, anything but whole
/// records to the end is an error (a stored segment); otherwise an incomplete
/// or bad record just ends the walk (the live log's tail being written).
pub fn walk(
    data: &[u8],
    start: u64,
    sequence: u64,
    upto: u64,
    strict: bool,
) -> Result<Walk, String> {
    let mut w = Walk::default();
    let mut at = 0usize;
    if start == 0 {
        let h = FileHeader::decode(data).map_err(|e| format!("redo log header: {e}"))?;
        if h.sequence != sequence {
            return Err(format!(
                "redo log header says sequence {}, the segment {sequence}",
                h.sequence
            ));
        }
        at = FILE_HEADER_LEN;
    } else if (start as usize) < FILE_HEADER_LEN {
        return Err(format!("starts at {start}, inside the redo log header"));
    }
    let mut prev = 0u64;
    while at < data.len() {
        let (rec, len) = match format::decode_record(&data[at..]) {
            Ok(x) => x,
            Err(e) if strict => {
                return Err(format!(
                    "record at offset {} of the redo log: {e}",
                    start + at as u64
                ));
            }
            Err(_) => break,
        };
        if rec.lsn.0 > upto {
            if strict {
                return Err(format!("record LSN {} past the manifest", rec.lsn));
            }
            break;
        }
        if rec.lsn.0 <= prev {
            return Err(format!(
                "record at offset {}: LSN {} after LSN {prev}",
                start + at as u64,
                rec.lsn
            ));
        }
        prev = rec.lsn.0;
        if w.records == 0 {
            w.first_lsn = rec.lsn.0;
        }
        w.records += 1;
        w.last_lsn = rec.lsn.0;
        w.last_time = rec.timestamp.0;
        at += len;
        w.len = at;
    }
    if w.records == 0 {
        w.len = at.min(data.len());
    }
    Ok(w)
}

/// A segment object: manifest, then the range.
pub fn encode(m: &Manifest, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(MANIFEST_LEN + data.len());
    b.extend_from_slice(&MAGIC);
    for v in [m.sequence, m.start, m.len, m.first_lsn, m.last_lsn] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&m.records.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&m.last_time.0.to_le_bytes());
    b.extend_from_slice(&m.blake3);
    let check = manifest_check(&b);
    b.extend_from_slice(&check);
    debug_assert_eq!(b.len(), MANIFEST_LEN);
    b.extend_from_slice(data);
    b
}

fn manifest_check(head: &[u8]) -> [u8; 4] {
    let h = blake3::hash(head);
    h.as_bytes()[..4].try_into().expect("4 bytes")
}

/// Builds the manifest of a range that [`walk`] found whole.
pub fn manifest_for(sequence: u64, start: u64, data: &[u8], w: &Walk) -> Manifest {
    Manifest {
        sequence,
        start,
        len: data.len() as u64,
        first_lsn: w.first_lsn,
        last_lsn: w.last_lsn,
        records: w.records,
        last_time: UtcMillis(w.last_time),
        blake3: *blake3::hash(data).as_bytes(),
    }
}

/// Parses a segment object and checks everything it claims: the manifest's
/// CRC, the range's length and BLAKE3, and every record (CRC, decoding, LSN
/// order, count and LSN range). The error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<(Manifest, &[u8]), String> {
    if bytes.len() < MANIFEST_LEN {
        return Err(format!(
            "{} bytes, shorter than the {MANIFEST_LEN}-byte manifest (truncated)",
            bytes.len()
        ));
    }
    if bytes[0..8] != MAGIC {
        return Err("not a redo segment (bad magic)".into());
    }
    let head = &bytes[..MANIFEST_LEN];
    if manifest_check(&head[..96]) != head[96..100] {
        return Err("manifest checksum mismatch (damaged)".into());
    }
    let u = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    let m = Manifest {
        sequence: u(8),
        start: u(16),
        len: u(24),
        first_lsn: u(32),
        last_lsn: u(40),
        records: u32::from_le_bytes(head[48..52].try_into().expect("4 bytes")),
        last_time: UtcMillis(u(56) as i64),
        blake3: head[64..96].try_into().expect("32 bytes"),
    };
    let data = &bytes[MANIFEST_LEN..];
    if data.len() as u64 != m.len {
        return Err(format!(
            "range of {} bytes, the manifest says {} (truncated or torn)",
            data.len(),
            m.len
        ));
    }
    if *blake3::hash(data).as_bytes() != m.blake3 {
        return Err("range checksum mismatch (torn or damaged)".into());
    }
    let w = walk(data, m.start, m.sequence, m.last_lsn, true)?;
    if w.len != data.len()
        || w.records != m.records
        || w.first_lsn != m.first_lsn
        || w.last_lsn != m.last_lsn
    {
        return Err(format!(
            "holds {} records (LSN {} to {}), the manifest says {} (LSN {} to {})",
            w.records, w.first_lsn, w.last_lsn, m.records, m.first_lsn, m.last_lsn
        ));
    }
    Ok((m, data))
}

/// The file header of an open log, whatever the bytes read said: a header read
/// while the writer closed the file may already carry the closed flag, and
/// the segments of a sequence describe the file as it was while open.
pub fn open_header(data: &mut [u8]) -> Result<(), String> {
    let mut h = FileHeader::decode(data).map_err(|e| format!("redo log header: {e}"))?;
    if h.closed {
        h.closed = false;
        h.last_lsn = mv_types::Lsn(0);
        h.closed_at = UtcMillis(0);
        data[..FILE_HEADER_LEN].copy_from_slice(&h.encode());
    }
    Ok(())
}
