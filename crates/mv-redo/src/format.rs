//! The on-disk format of redo log files: a 64-byte file header followed by records.
//! All integers are little-endian. CRCs are CRC-32C (Castagnoli), as computed by the
//! `crc32c` crate (initial value 0, i.e. the standard CRC-32C of the bytes).
//!
//! # File header (64 bytes, at offset 0)
//!
//! | offset | size | field        | meaning                                                    |
//! |-------:|-----:|--------------|------------------------------------------------------------|
//! |      0 |    8 | magic        | `4D 56 52 45 44 4F 00 01` = `"MVREDO\0\x01"`               |
//! |      8 |    4 | version      | u32, header version, = 1                                   |
//! |     12 |    4 | flags        | u32, bit 0 = closed (set at rollover); other bits 0        |
//! |     16 |    8 | sequence     | u64, the file's sequence number (≥ 1, +1 per file)         |
//! |     24 |    8 | created_ms   | i64, creation time, UTC milliseconds since the epoch       |
//! |     32 |    8 | first_lsn    | u64, LSN the first record of this file has (or would have) |
//! |     40 |    8 | last_lsn     | u64, LSN of the last record; 0 until closed                |
//! |     48 |    8 | closed_ms    | i64, close time, UTC ms; 0 until closed                    |
//! |     56 |    4 | reserved     | zero                                                       |
//! |     60 |    4 | header_crc   | u32, CRC-32C of bytes 0..60                                |
//!
//! The header is written once when the file is created (through a temporary file,
//! fsync, rename, directory fsync, so `redo.log` never has a partial header) and
//! rewritten in place once, at rollover, with the closed flag, `last_lsn` and
//! `closed_ms` (64 bytes inside the first sector, followed by an fsync). A closed file
//! with no records has `last_lsn = first_lsn - 1` (rollover never archives such a file,
//! but the reader accepts it).
//!
//! # Record (at offset 64 and following, back to back, no padding)
//!
//! | offset | size | field           | meaning                                                |
//! |-------:|-----:|-----------------|--------------------------------------------------------|
//! |      0 |    4 | len             | u32, length of the body (bytes 8..8+len), 40..=256 MiB |
//! |      4 |    4 | crc             | u32, CRC-32C of the body                               |
//! |  body: |      |                 |                                                        |
//! |      8 |    2 | op_type         | u16, [`Op::op_type`] (1 = PutBlob ... 18 = SetCalendarItem) |
//! |     10 |    1 | payload_version | u8, = 1                                                |
//! |     11 |    1 | flags           | u8, = 0 (reserved)                                     |
//! |     12 |    8 | lsn             | u64, log sequence number, ≥ 1, strictly increasing     |
//! |     20 |    8 | txn             | u64, transaction id                                    |
//! |     28 |    8 | timestamp_ms    | i64, UTC milliseconds                                  |
//! |     36 |    4 | mailbox         | u32, mailbox id (0 = none, e.g. PutBlob)               |
//! |     40 |    8 | change          | u64, the mailbox's change number (0 = none)            |
//! |     48 |    n | payload         | the op's CBOR payload ([`Op::encode_payload`]), n = len - 40 |
//!
//! A record is thus 48 + n bytes on disk. A reader checks, in order: `len` in range
//! (else "bad length"), the whole record present (else "truncated"), the CRC, then the
//! contents: payload version 1, flags 0, known op type, LSN ≥ 1, a payload that decodes
//! as exactly one CBOR item for that op type with no trailing bytes; and across records
//! of a file: LSNs strictly increasing, ≥ the header's `first_lsn` and, in a closed
//! file, ending exactly at `last_lsn`.
//!
//! Torn tail vs. damage: a truncated record, a bad length or a CRC mismatch is a torn
//! tail when no plausible record (length in range, payload version 1, flags 0, known
//! op type, LSN above the last good one, CRC matching) starts anywhere after it; it is
//! damage otherwise. A record whose CRC matches but whose contents are invalid is
//! always damage (it was written like that; truncating it could drop an acknowledged
//! record).

use mv_types::{ChangeNumber, Lsn, MailboxId, TxnId, UtcMillis};

use crate::ops::{Op, OpDecodeError};

/// `"MVREDO\0\x01"`: the first 8 bytes of every redo log file.
pub const MAGIC: [u8; 8] = *b"MVREDO\0\x01";
/// The header version this build writes and reads.
pub const HEADER_VERSION: u32 = 1;
/// Size of the file header.
pub const HEADER_LEN: usize = 64;
/// Header flag bit: the file was closed by a rollover.
pub const FLAG_CLOSED: u32 = 1;
/// `len` + `crc` in front of every record body.
pub const RECORD_PREFIX_LEN: usize = 8;
/// The fixed part of a record body (op type .. change).
pub const BODY_FIXED_LEN: usize = 40;
/// The smallest possible record on disk (empty payload).
pub const MIN_RECORD_LEN: usize = RECORD_PREFIX_LEN + BODY_FIXED_LEN;
/// Largest body accepted; a length above this is corruption, not a record.
pub const MAX_BODY_LEN: usize = 256 << 20;
/// The payload version this build writes and reads.
pub const PAYLOAD_VERSION: u8 = 1;

/// The header at the start of every redo log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub sequence: u64,
    pub created_at: UtcMillis,
    pub first_lsn: Lsn,
    pub closed: bool,
    /// LSN of the file's last record; `Lsn(0)` until closed.
    pub last_lsn: Lsn,
    /// `UtcMillis(0)` until closed.
    pub closed_at: UtcMillis,
}

impl FileHeader {
    /// The header of a new, open file.
    pub fn new(sequence: u64, created_at: UtcMillis, first_lsn: Lsn) -> Self {
        FileHeader {
            sequence,
            created_at,
            first_lsn,
            closed: false,
            last_lsn: Lsn(0),
            closed_at: UtcMillis(0),
        }
    }

    /// True if the file holds at least one record (known only for closed files).
    pub fn has_records(&self) -> bool {
        self.closed && self.last_lsn.0 >= self.first_lsn.0
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        let flags = if self.closed { FLAG_CLOSED } else { 0 };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_at.0.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_lsn.0.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_lsn.0.to_le_bytes());
        b[48..56].copy_from_slice(&self.closed_at.0.to_le_bytes());
        // 56..60 reserved, zero.
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates a header. The error is a reason for
    /// [`crate::RedoError::BadHeader`], which the caller completes with the path.
    pub fn decode(b: &[u8]) -> Result<FileHeader, String> {
        if b.len() < HEADER_LEN {
            return Err(format!(
                "file is {} bytes long, shorter than the {HEADER_LEN}-byte header",
                b.len()
            ));
        }
        if b[0..8] != MAGIC {
            return Err(format!(
                "not a mailvault redo log (magic {:02x?}, expected {:02x?})",
                &b[0..8],
                MAGIC
            ));
        }
        let stored = u32_at(b, 60);
        let computed = crc32c::crc32c(&b[0..60]);
        if stored != computed {
            return Err(format!(
                "header checksum mismatch (stored {stored:08x}, computed {computed:08x})"
            ));
        }
        let version = u32_at(b, 8);
        if version != HEADER_VERSION {
            return Err(format!(
                "unsupported header version {version} (this build reads version {HEADER_VERSION})"
            ));
        }
        let flags = u32_at(b, 12);
        if flags & !FLAG_CLOSED != 0 {
            return Err(format!("unknown header flags {flags:#x}"));
        }
        if u32_at(b, 56) != 0 {
            return Err("reserved header bytes are not zero".into());
        }
        let h = FileHeader {
            sequence: u64_at(b, 16),
            created_at: UtcMillis(i64_at(b, 24)),
            first_lsn: Lsn(u64_at(b, 32)),
            closed: flags & FLAG_CLOSED != 0,
            last_lsn: Lsn(u64_at(b, 40)),
            closed_at: UtcMillis(i64_at(b, 48)),
        };
        if h.sequence == 0 {
            return Err("sequence 0 (sequences start at 1)".into());
        }
        if h.first_lsn.0 == 0 {
            return Err("first LSN 0 (LSNs start at 1)".into());
        }
        if h.closed {
            if h.last_lsn.0 < h.first_lsn.0 - 1 {
                return Err(format!(
                    "closed with last LSN {} before first LSN {}",
                    h.last_lsn, h.first_lsn
                ));
            }
        } else if h.last_lsn.0 != 0 || h.closed_at.0 != 0 {
            return Err("open file with a last LSN or close time set".into());
        }
        Ok(h)
    }
}

/// A redo record as read back: an op with everything that places it in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub lsn: Lsn,
    pub txn: TxnId,
    pub timestamp: UtcMillis,
    pub mailbox: MailboxId,
    pub change: ChangeNumber,
    pub op: Op,
}

/// Why bytes are not a valid record. The first three kinds are what a torn write
/// leaves behind; `Invalid` is a record whose CRC matched but whose contents do not
/// make sense, which no crash can produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated: {have} of {need} bytes present")]
    Incomplete { have: u64, need: u64 },
    #[error("bad record length {0} (a body is {BODY_FIXED_LEN}..={MAX_BODY_LEN} bytes)")]
    BadLength(u32),
    #[error("record checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("invalid record: {0}")]
    Invalid(String),
}

impl DecodeError {
    /// True for what a torn (partially persisted) write can look like.
    pub fn is_tear_candidate(&self) -> bool {
        !matches!(self, DecodeError::Invalid(_))
    }
}

/// Encodes a record (with its LSN) into `out`; returns the number of bytes added.
pub fn encode_record(rec: &Record, out: &mut Vec<u8>) -> Result<usize, crate::RedoError> {
    let start = out.len();
    encode_unsealed(
        out,
        rec.txn,
        rec.timestamp,
        rec.mailbox,
        rec.change,
        &rec.op,
    )?;
    seal_record(&mut out[start..], rec.lsn);
    Ok(out.len() - start)
}

/// Encodes a record with LSN 0 and no CRC: the writer encodes outside its lock and
/// [`seal_record`]s inside it, once the LSN is known.
pub(crate) fn encode_unsealed(
    out: &mut Vec<u8>,
    txn: TxnId,
    timestamp: UtcMillis,
    mailbox: MailboxId,
    change: ChangeNumber,
    op: &Op,
) -> Result<(), crate::RedoError> {
    let payload = op.encode_payload();
    let body_len = BODY_FIXED_LEN + payload.len();
    if body_len > MAX_BODY_LEN {
        return Err(crate::RedoError::TooLarge {
            size: body_len as u64,
            max: MAX_BODY_LEN as u64,
        });
    }
    out.reserve(RECORD_PREFIX_LEN + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // crc, set by seal_record
    out.extend_from_slice(&op.op_type().to_le_bytes());
    out.push(PAYLOAD_VERSION);
    out.push(0); // flags
    out.extend_from_slice(&[0; 8]); // lsn, set by seal_record
    out.extend_from_slice(&txn.0.to_le_bytes());
    out.extend_from_slice(&timestamp.0.to_le_bytes());
    out.extend_from_slice(&mailbox.0.to_le_bytes());
    out.extend_from_slice(&change.0.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Sets the LSN of one encoded record and computes its CRC. `rec` is exactly one
/// record from [`encode_unsealed`].
pub(crate) fn seal_record(rec: &mut [u8], lsn: Lsn) {
    rec[12..20].copy_from_slice(&lsn.0.to_le_bytes());
    let crc = crc32c::crc32c(&rec[RECORD_PREFIX_LEN..]);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Checks the frame of the record at the start of `buf` (length, presence, CRC) and
/// returns its body. Never reads past `buf` and never allocates.
pub fn check_frame(buf: &[u8]) -> Result<&[u8], DecodeError> {
    if buf.len() < RECORD_PREFIX_LEN {
        return Err(DecodeError::Incomplete {
            have: buf.len() as u64,
            need: RECORD_PREFIX_LEN as u64,
        });
    }
    let len = u32_at(buf, 0);
    if (len as usize) < BODY_FIXED_LEN || len as usize > MAX_BODY_LEN {
        return Err(DecodeError::BadLength(len));
    }
    let total = RECORD_PREFIX_LEN + len as usize;
    if buf.len() < total {
        return Err(DecodeError::Incomplete {
            have: buf.len() as u64,
            need: total as u64,
        });
    }
    let body = &buf[RECORD_PREFIX_LEN..total];
    let stored = u32_at(buf, 4);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok(body)
}

/// Decodes a record body whose CRC has been checked.
pub fn decode_body(body: &[u8]) -> Result<Record, DecodeError> {
    if body.len() < BODY_FIXED_LEN {
        return Err(DecodeError::Invalid(format!(
            "body of {} bytes is shorter than {BODY_FIXED_LEN}",
            body.len()
        )));
    }
    let op_type = u16::from_le_bytes([body[0], body[1]]);
    let version = body[2];
    if version != PAYLOAD_VERSION {
        return Err(DecodeError::Invalid(format!(
            "unsupported payload version {version} (this build reads version {PAYLOAD_VERSION})"
        )));
    }
    if body[3] != 0 {
        return Err(DecodeError::Invalid(format!(
            "unknown record flags {:#x}",
            body[3]
        )));
    }
    let lsn = u64_at(body, 4);
    if lsn == 0 {
        return Err(DecodeError::Invalid("LSN 0 (LSNs start at 1)".into()));
    }
    let payload = &body[BODY_FIXED_LEN..];
    let op =
        Op::decode_payload(op_type, payload).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    // minicbor decodes the first item and ignores what follows; our writer never
    // leaves trailing bytes, so any are damage. skip() walks the item without
    // allocating per element.
    let mut d = minicbor::Decoder::new(payload);
    match d.skip() {
        Ok(()) if d.position() == payload.len() => {}
        Ok(()) => {
            return Err(DecodeError::Invalid(format!(
                "{} trailing bytes after the {} payload",
                payload.len() - d.position(),
                op.type_name()
            )));
        }
        Err(e) => return Err(DecodeError::Invalid(e.to_string())),
    }
    Ok(Record {
        lsn: Lsn(lsn),
        txn: TxnId(u64_at(body, 12)),
        timestamp: UtcMillis(i64_at(body, 20)),
        mailbox: MailboxId(u32_at(body, 28)),
        change: ChangeNumber(u64_at(body, 32)),
        op,
    })
}

/// Decodes the record at the start of `buf`; returns it and its length on disk.
/// Never panics, and allocates only what the payload's own bytes describe (the CBOR
/// decoder grows vectors element by element, never by a declared length), so
/// untrusted input cannot make it allocate more than a small multiple of `buf.len()`.
pub fn decode_record(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
    let body = check_frame(buf)?;
    let rec = decode_body(body)?;
    Ok((rec, RECORD_PREFIX_LEN + body.len()))
}

/// True if a record that passes its CRC check plausibly starts at `buf[0]`: the cheap
/// field checks come first so that scanning garbage byte by byte rarely computes a
/// CRC. Used to tell damage in the middle of a log (a good record follows) from a
/// torn tail (nothing good follows).
pub fn plausible_record_at(buf: &[u8], lsn_above: u64) -> bool {
    if buf.len() < MIN_RECORD_LEN {
        return false;
    }
    let len = u32_at(buf, 0) as usize;
    if !(BODY_FIXED_LEN..=MAX_BODY_LEN).contains(&len) || buf.len() < RECORD_PREFIX_LEN + len {
        return false;
    }
    let op_type = u16::from_le_bytes([buf[8], buf[9]]);
    if buf[10] != PAYLOAD_VERSION || buf[11] != 0 || !is_known_op_type(op_type) {
        return false;
    }
    if u64_at(buf, 12) <= lsn_above {
        return false;
    }
    check_frame(buf).is_ok()
}

/// Finds the offset of the first plausible record starting at or after `from`.
pub fn find_plausible_record(buf: &[u8], from: usize, lsn_above: u64) -> Option<usize> {
    let last_start = buf.len().checked_sub(MIN_RECORD_LEN)?;
    (from..=last_start).find(|&p| plausible_record_at(&buf[p..], lsn_above))
}

/// Whether an op type code is one this build knows. Asks the op table itself (an
/// empty payload never decodes, but an unknown type fails differently), so there is
/// no second list of codes to keep in step.
pub fn is_known_op_type(op_type: u16) -> bool {
    !matches!(
        Op::decode_payload(op_type, &[]),
        Err(OpDecodeError::UnknownType(_))
    )
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{arb_op, pattern, sample_ops};
    use proptest::prelude::*;

    fn record(lsn: u64, op: Op) -> Record {
        Record {
            lsn: Lsn(lsn),
            txn: TxnId(42),
            timestamp: UtcMillis(1_290_187_290_852),
            mailbox: MailboxId(17),
            change: ChangeNumber(3913),
            op,
        }
    }

    fn bytes_of(r: &Record) -> Vec<u8> {
        let mut v = Vec::new();
        encode_record(r, &mut v).unwrap();
        v
    }

    /// Re-seals a record whose body was edited, so the CRC matches again.
    fn reseal(rec: &mut [u8]) {
        let crc = crc32c::crc32c(&rec[RECORD_PREFIX_LEN..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn header_round_trips_open_and_closed() {
        let open = FileHeader::new(53, UtcMillis(1_290_187_290_852), Lsn(1000));
        let b = open.encode();
        assert_eq!(&b[0..8], b"MVREDO\0\x01");
        assert_eq!(b.len(), 64);
        assert_eq!(FileHeader::decode(&b).unwrap(), open);
        let closed = FileHeader {
            closed: true,
            last_lsn: Lsn(1999),
            closed_at: UtcMillis(1_290_187_299_000),
            ..open
        };
        let b = closed.encode();
        assert_eq!(
            u32::from_le_bytes(b[12..16].try_into().unwrap()),
            FLAG_CLOSED
        );
        assert_eq!(FileHeader::decode(&b).unwrap(), closed);
        assert!(closed.has_records());
        // A closed file without records.
        let empty = FileHeader {
            last_lsn: Lsn(999),
            ..closed
        };
        assert!(!empty.has_records());
        assert_eq!(FileHeader::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn every_damaged_header_byte_is_rejected() {
        let b = FileHeader::new(3, UtcMillis(5), Lsn(9)).encode();
        for i in 0..HEADER_LEN {
            let mut d = b;
            d[i] ^= 0x40;
            assert!(FileHeader::decode(&d).is_err(), "flip at {i} accepted");
        }
        assert!(
            FileHeader::decode(&b[..63])
                .unwrap_err()
                .contains("shorter")
        );
        let mut d = b;
        d[0] = b'X';
        assert!(
            FileHeader::decode(&d)
                .unwrap_err()
                .contains("not a mailvault redo log")
        );
        // A future version, with a valid CRC: the message says so.
        let mut d = b;
        d[8] = 2;
        let crc = crc32c::crc32c(&d[0..60]);
        d[60..64].copy_from_slice(&crc.to_le_bytes());
        assert!(
            FileHeader::decode(&d)
                .unwrap_err()
                .contains("unsupported header version 2")
        );
    }

    #[test]
    fn record_layout_is_as_documented() {
        let r = record(77, sample_ops()[15].clone());
        let b = bytes_of(&r);
        let payload = r.op.encode_payload();
        assert_eq!(b.len(), MIN_RECORD_LEN + payload.len());
        assert_eq!(
            u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize,
            40 + payload.len()
        );
        assert_eq!(
            u32::from_le_bytes(b[4..8].try_into().unwrap()),
            crc32c::crc32c(&b[8..])
        );
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), 16); // DeleteItems
        assert_eq!((b[10], b[11]), (1, 0));
        assert_eq!(u64::from_le_bytes(b[12..20].try_into().unwrap()), 77);
        assert_eq!(u64::from_le_bytes(b[20..28].try_into().unwrap()), 42);
        assert_eq!(
            i64::from_le_bytes(b[28..36].try_into().unwrap()),
            1_290_187_290_852
        );
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 17);
        assert_eq!(u64::from_le_bytes(b[40..48].try_into().unwrap()), 3913);
        assert_eq!(&b[48..], &payload[..]);
    }

    #[test]
    fn every_op_type_round_trips_and_is_known() {
        for (i, op) in sample_ops().into_iter().enumerate() {
            assert_eq!(
                op.op_type() as usize,
                i + 1,
                "sample_ops is in op type order"
            );
            let r = record(i as u64 + 1, op);
            let b = bytes_of(&r);
            assert_eq!(decode_record(&b).unwrap(), (r, b.len()));
        }
        assert!((1..=21).all(is_known_op_type));
        assert!(!is_known_op_type(0) && !is_known_op_type(22) && !is_known_op_type(u16::MAX));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn records_round_trip(
            op in arb_op(),
            lsn in 1u64..,
            txn: u64,
            ts: i64,
            mailbox: u32,
            change: u64,
            trailing in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let r = Record {
                lsn: Lsn(lsn),
                txn: TxnId(txn),
                timestamp: UtcMillis(ts),
                mailbox: MailboxId(mailbox),
                change: ChangeNumber(change),
                op,
            };
            let mut b = bytes_of(&r);
            let len = b.len();
            // What follows a record (the next one) does not change how it decodes.
            b.extend_from_slice(&trailing);
            let (back, n) = decode_record(&b).unwrap();
            prop_assert_eq!(n, len);
            prop_assert_eq!(back, r);
        }
    }

    #[test]
    fn bad_frames_are_classified() {
        let r = record(5, sample_ops()[10].clone());
        let b = bytes_of(&r);
        for cut in 0..b.len() {
            assert!(
                matches!(
                    decode_record(&b[..cut]),
                    Err(DecodeError::Incomplete { .. })
                ),
                "cut {cut}"
            );
        }
        for i in RECORD_PREFIX_LEN - 4..b.len() {
            let mut d = b.clone();
            d[i] ^= 1;
            assert!(
                matches!(decode_record(&d), Err(DecodeError::Checksum { .. })),
                "flip {i}"
            );
        }
        for len in [0u32, 39, (MAX_BODY_LEN + 1) as u32, u32::MAX] {
            let mut d = b.clone();
            d[0..4].copy_from_slice(&len.to_le_bytes());
            assert_eq!(decode_record(&d).unwrap_err(), DecodeError::BadLength(len));
            assert!(DecodeError::BadLength(len).is_tear_candidate());
        }
    }

    #[test]
    fn crc_valid_but_invalid_contents_are_invalid_not_torn() {
        let b = bytes_of(&record(5, sample_ops()[15].clone()));
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "unknown op type",
                Box::new(|d: &mut Vec<u8>| d[8..10].copy_from_slice(&999u16.to_le_bytes())),
            ),
            ("payload version", Box::new(|d: &mut Vec<u8>| d[10] = 2)),
            ("flags", Box::new(|d: &mut Vec<u8>| d[11] = 1)),
            ("LSN 0", Box::new(|d: &mut Vec<u8>| d[12..20].fill(0))),
            (
                "wrong op type for the payload",
                Box::new(|d: &mut Vec<u8>| d[8..10].copy_from_slice(&1u16.to_le_bytes())),
            ),
            (
                "trailing bytes",
                Box::new(|d: &mut Vec<u8>| {
                    d.push(0);
                    let len = (d.len() - 8) as u32;
                    d[0..4].copy_from_slice(&len.to_le_bytes());
                }),
            ),
        ];
        for (what, edit) in edits {
            let mut d = b.clone();
            edit(&mut d);
            reseal(&mut d);
            let e = decode_record(&d).unwrap_err();
            assert!(matches!(e, DecodeError::Invalid(_)), "{what}: {e:?}");
            assert!(!e.is_tear_candidate());
        }
    }

    #[test]
    fn oversized_records_are_refused_on_encode() {
        let r = record(
            1,
            Op::PutBlob(crate::ops::PutBlob {
                digest: [0; 32],
                data: vec![0; MAX_BODY_LEN],
            }),
        );
        let e = encode_record(&r, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, crate::RedoError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn the_torn_tail_scan_finds_only_real_records() {
        let a = bytes_of(&record(1, sample_ops()[4].clone()));
        let b = bytes_of(&record(2, sample_ops()[15].clone()));
        let mut buf = vec![0u8; 10];
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&[0xff; 7]);
        let at_b = buf.len();
        buf.extend_from_slice(&b);
        assert_eq!(find_plausible_record(&buf, 0, 0), Some(10));
        assert_eq!(find_plausible_record(&buf, 11, 0), Some(at_b));
        // Only records above the last good LSN count.
        assert_eq!(find_plausible_record(&buf, 0, 1), Some(at_b));
        assert_eq!(find_plausible_record(&buf, 0, 2), None);
        assert_eq!(find_plausible_record(&buf[..buf.len() - 1], 11, 0), None);
        assert_eq!(find_plausible_record(&[], 0, 0), None);
    }

    /// The quick in-tree stand-in for the fuzz target: random bytes and mutations of
    /// valid records (bit flips, splices, huge length fields, CBOR headers declaring
    /// huge items) through every decoder. Must never panic.
    #[test]
    fn random_and_mutated_inputs_never_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let valid: Vec<Vec<u8>> = sample_ops()
            .into_iter()
            .enumerate()
            .map(|(i, op)| bytes_of(&record(i as u64 + 1, op)))
            .collect();
        for _ in 0..3000 {
            let len = rng.random_range(0..300);
            let mut d = pattern(rng.random(), len);
            if rng.random_bool(0.3) && d.len() >= 8 {
                // A plausible frame around garbage: reaches the CBOR decoder.
                let body_len = (d.len() - 8) as u32;
                d[0..4].copy_from_slice(&body_len.to_le_bytes());
                if d.len() >= 12 {
                    d[8..10].copy_from_slice(&rng.random_range(1u16..=18).to_le_bytes());
                    d[10] = 1;
                    d[11] = 0;
                }
                reseal(&mut d);
            }
            crate::fuzzing::redo_record(&d);
        }
        for v in &valid {
            for _ in 0..150 {
                let mut d = v.clone();
                match rng.random_range(0..5) {
                    0 => {
                        let i = rng.random_range(0..d.len());
                        d[i] ^= 1 << rng.random_range(0..8);
                    }
                    1 => d.truncate(rng.random_range(0..d.len())),
                    2 => {
                        let i = rng.random_range(0..d.len());
                        d.splice(
                            i..i,
                            valid[rng.random_range(0..valid.len())].iter().copied(),
                        );
                    }
                    3 => {
                        // A CBOR head declaring an enormous array/bytes/text/map.
                        let i = rng.random_range(48..d.len().max(49)).min(d.len());
                        let major = [0x9b, 0x5b, 0x7b, 0xbb][rng.random_range(0..4)];
                        let mut head = vec![major];
                        head.extend_from_slice(&u64::MAX.to_be_bytes());
                        d.splice(i..i, head);
                        let len = (d.len() - 8) as u32;
                        d[0..4].copy_from_slice(&len.to_le_bytes());
                    }
                    _ => {
                        let i = rng.random_range(48..d.len().max(49)).min(d.len() - 1);
                        d[i] = rng.random();
                    }
                }
                if rng.random_bool(0.7) && d.len() >= 8 {
                    reseal(&mut d);
                }
                crate::fuzzing::redo_record(&d);
                crate::fuzzing::redo_record(&[v.as_slice(), &d].concat());
            }
        }
    }
}
