//! Reading redo log files: the header, then every record with its place in the file,
//! validated as described in [`crate::format`]. Used by recovery (open), dump, replay
//! and backups; a reader never repairs anything, it reports the first damage and stops.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use mv_types::Lsn;

use crate::error::RedoError;
use crate::format::{self, DecodeError, FileHeader, HEADER_LEN, RECORD_PREFIX_LEN, Record};

/// A record and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub record: Record,
    pub path: PathBuf,
    /// The sequence of the file (from its header).
    pub sequence: u64,
    /// Byte offset of the record (its length field) in the file.
    pub offset: u64,
    /// Length of the record on disk, prefix included.
    pub len: u64,
}

/// What went wrong at one place of a file, before it becomes a [`RedoError`]: recovery
/// needs to know whether it looks like a torn write.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub offset: u64,
    pub kind: FaultKind,
}

#[derive(Debug, Clone)]
pub(crate) enum FaultKind {
    Decode(DecodeError),
    /// A well-formed record in the wrong place (LSN order, outside the header's range).
    Order(String),
    Io(String),
}

impl FaultKind {
    pub fn is_tear_candidate(&self) -> bool {
        matches!(self, FaultKind::Decode(e) if e.is_tear_candidate())
    }

    pub fn reason(&self) -> String {
        match self {
            FaultKind::Decode(e) => e.to_string(),
            FaultKind::Order(s) | FaultKind::Io(s) => s.clone(),
        }
    }
}

/// Where the bytes come from: a file (read through a window, so a reader of a 1 GB
/// log holds about one record in memory) or a buffer (recovery, fuzzing, tests).
enum Source {
    File {
        file: File,
        len: u64,
        window: Vec<u8>,
        window_start: u64,
    },
    Mem(Vec<u8>),
}

/// Read-ahead size of the file window.
const WINDOW: usize = 256 * 1024;

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Mem(b) => b.len() as u64,
        }
    }

    /// Up to `n` bytes at `off` (fewer at end of file). Allocates at most what the
    /// file still holds, whatever `n` an untrusted length field asks for.
    fn get(&mut self, off: u64, n: usize) -> std::io::Result<&[u8]> {
        let total = self.len();
        let n = n.min(total.saturating_sub(off) as usize);
        match self {
            Source::Mem(b) => {
                let start = (off as usize).min(b.len());
                Ok(&b[start..start + n])
            }
            Source::File {
                file,
                window,
                window_start,
                ..
            } => {
                let have =
                    off >= *window_start && off + n as u64 <= *window_start + window.len() as u64;
                if !have {
                    let want = n.max(WINDOW).min(total.saturating_sub(off) as usize);
                    window.clear();
                    window.resize(want, 0);
                    file.read_exact_at(window, off)?;
                    *window_start = off;
                }
                let s = (off - *window_start) as usize;
                Ok(&window[s..s + n])
            }
        }
    }
}

/// Reads one redo log file record by record. Yields `Err` once at the first damage
/// (with the file and offset) and then ends.
pub struct RedoFileReader {
    path: PathBuf,
    header: FileHeader,
    src: Source,
    offset: u64,
    last_lsn: Option<u64>,
    done: bool,
}

impl RedoFileReader {
    /// Opens a file and validates its header.
    pub fn open(path: &Path) -> Result<Self, RedoError> {
        let file = File::open(path).map_err(RedoError::io(path))?;
        let len = file.metadata().map_err(RedoError::io(path))?.len();
        let mut src = Source::File {
            file,
            len,
            window: Vec::new(),
            window_start: 0,
        };
        let header_bytes = src.get(0, HEADER_LEN).map_err(RedoError::io(path))?;
        let header = FileHeader::decode(header_bytes).map_err(|reason| RedoError::BadHeader {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Self::with_source(path.to_path_buf(), header, src))
    }

    /// Reads a file's bytes already in memory; `path` only names it in errors. This is
    /// what the fuzz target and recovery use: no filesystem involved.
    pub fn from_bytes(path: PathBuf, bytes: Vec<u8>) -> Result<Self, RedoError> {
        let header = match FileHeader::decode(&bytes) {
            Ok(h) => h,
            Err(reason) => return Err(RedoError::BadHeader { path, reason }),
        };
        Ok(Self::with_source(path, header, Source::Mem(bytes)))
    }

    fn with_source(path: PathBuf, header: FileHeader, src: Source) -> Self {
        RedoFileReader {
            path,
            header,
            src,
            offset: HEADER_LEN as u64,
            last_lsn: None,
            done: false,
        }
    }

    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of the next record to read (after the last good one once an error or
    /// the end was reached).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// LSN of the last good record read so far.
    pub fn last_lsn(&self) -> Option<Lsn> {
        self.last_lsn.map(Lsn)
    }

    /// The whole file when reading from memory.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match &self.src {
            Source::Mem(b) => Some(b),
            Source::File { .. } => None,
        }
    }

    /// The next record, or the fault that stops the file.
    pub(crate) fn next_raw(&mut self) -> Option<Result<Located, Fault>> {
        if self.done {
            return None;
        }
        let r = self.read_one();
        match &r {
            None | Some(Err(_)) => self.done = true,
            Some(Ok(_)) => {}
        }
        r
    }

    fn read_one(&mut self) -> Option<Result<Located, Fault>> {
        let off = self.offset;
        let end = self.src.len();
        let fault = |kind| Some(Err(Fault { offset: off, kind }));
        if off >= end {
            // A closed file must end exactly at the LSN its header promises; anything
            // else means records are missing (a truncated copy of an archive).
            if self.header.closed {
                let expected = self.header.last_lsn.0;
                let got = self.last_lsn.unwrap_or(self.header.first_lsn.0 - 1);
                if got != expected {
                    return fault(FaultKind::Order(format!(
                        "file is closed at LSN {expected} but its last record has LSN {got}: \
                         records are missing from the end"
                    )));
                }
            }
            return None;
        }
        let prefix = match self.src.get(off, RECORD_PREFIX_LEN) {
            Ok(p) => p,
            Err(e) => return fault(FaultKind::Io(e.to_string())),
        };
        let need = match prefix.len() {
            RECORD_PREFIX_LEN => {
                let len = u32::from_le_bytes(prefix[0..4].try_into().expect("4 bytes")) as usize;
                RECORD_PREFIX_LEN.saturating_add(len)
            }
            _ => RECORD_PREFIX_LEN,
        };
        // Bound what we fetch by the format's maximum, so a garbage length field does
        // not make us read (or allocate) more than one maximal record.
        let need = need.min(RECORD_PREFIX_LEN + format::MAX_BODY_LEN + 1);
        let buf = match self.src.get(off, need) {
            Ok(b) => b,
            Err(e) => return fault(FaultKind::Io(e.to_string())),
        };
        let (record, len) = match format::decode_record(buf) {
            Ok(x) => x,
            Err(e) => return fault(FaultKind::Decode(e)),
        };
        let lsn = record.lsn.0;
        if let Some(prev) = self.last_lsn
            && lsn <= prev
        {
            return fault(FaultKind::Order(format!(
                "LSN {lsn} does not follow the previous record's LSN {prev}"
            )));
        }
        if lsn < self.header.first_lsn.0 {
            return fault(FaultKind::Order(format!(
                "LSN {lsn} is below the file's first LSN {}",
                self.header.first_lsn
            )));
        }
        if self.header.closed && lsn > self.header.last_lsn.0 {
            return fault(FaultKind::Order(format!(
                "LSN {lsn} is beyond the closed file's last LSN {}",
                self.header.last_lsn
            )));
        }
        self.last_lsn = Some(lsn);
        self.offset += len as u64;
        Some(Ok(Located {
            record,
            path: self.path.clone(),
            sequence: self.header.sequence,
            offset: off,
            len: len as u64,
        }))
    }

    pub(crate) fn to_error(&self, f: Fault) -> RedoError {
        RedoError::Corrupt {
            path: self.path.clone(),
            offset: f.offset,
            reason: f.kind.reason(),
        }
    }
}

impl Iterator for RedoFileReader {
    type Item = Result<Located, RedoError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_raw()? {
            Ok(l) => Some(Ok(l)),
            Err(f) => Some(Err(self.to_error(f))),
        }
    }
}

/// Reads several files in the given order (e.g. archived logs by sequence, then
/// redo.log). A file that cannot be opened or is damaged yields its error and reading
/// goes on with the next file; the caller decides whether to stop.
pub fn read_files(paths: &[PathBuf]) -> impl Iterator<Item = Result<Located, RedoError>> + use<> {
    let paths = paths.to_vec();
    paths.into_iter().flat_map(
        |p| -> Box<dyn Iterator<Item = Result<Located, RedoError>>> {
            match RedoFileReader::open(&p) {
                Ok(r) => Box::new(r),
                Err(e) => Box::new(std::iter::once(Err(e))),
            }
        },
    )
}
