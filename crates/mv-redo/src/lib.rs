//! The mailvault redo log: the write-ahead log of every mailbox change.
//!
//! - [`format`](mod@format): the file header and record layout, byte by byte, and the codec.
//! - [`RedoLog`] ([`writer`]): append with group commit, rollover, and recovery at
//!   open ([`recovery`]): torn tails are truncated, damage elsewhere is an error.
//! - [`RedoFileReader`], [`read_files`] ([`reader`]): reading files back, validated.
//! - [`archive`]: archived file names, [`list_archive`], [`check_chain`].
//! - [`continuation`]: a home restored from a backup target continuing its
//!   sequence numbers ([`continue_at`]).
//! - [`dump`] (`zmredodump`).
//! - [`ops`]: what a record carries; [`content`]: how a `PutBlob` carries its bytes.
//!
//! The contract with the store (see [`writer`] for the why):
//!
//! ```text
//! let t = log.append(records)?;   // LSNs assigned, written
//! log.wait_durable(&t)?;          // fsynced (group commit): now acknowledge
//! apply to the mailbox database;
//! drop(t);                         // released: a rollover may now close the file
//! ```
//!
//! Never call `append` or `rollover` while holding an unreleased ticket.

pub mod archive;
pub mod checkpoint;
pub mod content;
pub mod continuation;
pub mod dump;
pub mod error;
pub mod format;
pub mod ops;
pub mod reader;
pub mod recovery;
pub mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use archive::{ArchivedLog, check_chain, list_archive, logs_in_dir};
pub use checkpoint::Checkpoint;
pub use continuation::{Continuation, continue_at};
pub use dump::DumpOptions;
pub use error::RedoError;
pub use format::{DecodeError, FileHeader, Record, decode_record, encode_record};
pub use ops::Op;
pub use reader::{Located, RedoFileReader, read_files};
pub use writer::{
    AppendTicket, CheckpointHook, NewRecord, RecoveryReport, RedoConfig, RedoLog, RedoPosition,
};

/// Entry points for the fuzz target (`fuzz/fuzz_targets/redo_record.rs`) and the
/// in-tree robustness tests: arbitrary bytes through every decoder, no filesystem.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::PathBuf;

    use mv_types::{Lsn, UtcMillis};

    use crate::format::{self, FileHeader};
    use crate::reader::RedoFileReader;

    /// Must never panic, whatever `data` is.
    pub fn redo_record(data: &[u8]) {
        // 1. As one record. A record that decodes must survive a re-encode (the bytes
        //    may differ: CBOR has several encodings of one value).
        if let Ok((rec, len)) = format::decode_record(data) {
            assert!(len <= data.len());
            let mut again = Vec::new();
            format::encode_record(&rec, &mut again).expect("a decoded record re-encodes");
            let (back, _) = format::decode_record(&again).expect("a re-encoded record decodes");
            assert_eq!(back, rec);
        }
        // 2. As a whole file.
        read_all(data.to_vec());
        // 3. As the records of a file with a valid header, so that the fuzzer does not
        //    have to find a header CRC to reach the record reader.
        let mut file = FileHeader::new(1, UtcMillis(0), Lsn(1)).encode().to_vec();
        file.extend_from_slice(data);
        read_all(file.clone());
        // 4. The torn-tail scan recovery runs.
        let _ = format::find_plausible_record(&file, format::HEADER_LEN, 0);
        // 5. As a record body under a correct frame, so that the fuzzer does not have
        //    to find a CRC to reach the body and CBOR decoders.
        if (format::BODY_FIXED_LEN..=format::MAX_BODY_LEN).contains(&data.len()) {
            let mut rec = Vec::with_capacity(format::RECORD_PREFIX_LEN + data.len());
            rec.extend_from_slice(&(data.len() as u32).to_le_bytes());
            rec.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
            rec.extend_from_slice(data);
            if let Ok((r, _)) = format::decode_record(&rec) {
                let mut again = Vec::new();
                format::encode_record(&r, &mut again).expect("a decoded record re-encodes");
                assert_eq!(
                    format::decode_record(&again).expect("re-encoded decodes").0,
                    r
                );
            }
        }
    }

    fn read_all(bytes: Vec<u8>) {
        if let Ok(reader) = RedoFileReader::from_bytes(PathBuf::from("fuzz"), bytes) {
            let mut last = 0;
            for item in reader {
                match item {
                    Ok(l) => {
                        assert!(l.record.lsn.0 > last, "LSNs must be strictly increasing");
                        last = l.record.lsn.0;
                    }
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            }
        }
    }
}
