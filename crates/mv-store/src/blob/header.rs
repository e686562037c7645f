//! The header section of a stored message, read without reading its body.

use super::{BlobError, BlobStore, io_err};
use std::fs;
use std::path::Path;

impl BlobStore {
    /// The bytes of a blob up to and including the first empty line (CRLF CRLF or
    /// LF LF), read in chunks; the whole blob if there is none.
    pub fn read_header(&self, path: &Path) -> Result<Vec<u8>, BlobError> {
        use std::io::Read;
        let mut f = fs::File::open(path).map_err(io_err(path))?;
        let mut out = Vec::with_capacity(8192);
        let mut chunk = [0u8; 8192];
        loop {
            let n = f.read(&mut chunk).map_err(io_err(path))?;
            if n == 0 {
                return Ok(out);
            }
            // Search from a little before the new bytes: the empty line may span reads.
            let from = out.len().saturating_sub(3);
            out.extend_from_slice(&chunk[..n]);
            let found = if from == 0 {
                header_end(&out)
            } else {
                // Starts at a line end or before it: only "\n\n" / "\n\r\n" count.
                header_end_after(&out[from..])
            };
            if let Some(end) = found {
                out.truncate(from + end);
                return Ok(out);
            }
        }
    }
}

/// The length of the header section at the start of `b` (through the empty line).
/// `b` is searched from its start for an empty line after a line end; a message
/// that starts with an empty line has an empty header.
fn header_end(b: &[u8]) -> Option<usize> {
    if b.starts_with(b"\r\n") {
        return Some(2);
    }
    if b.starts_with(b"\n") {
        return Some(1);
    }
    header_end_after(b)
}

/// Like [`header_end`], without the empty-header case (for a slice that starts
/// inside the header).
fn header_end_after(b: &[u8]) -> Option<usize> {
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_read_up_to_the_empty_line() {
        let dir = tempfile::tempdir().unwrap();
        let bs = BlobStore::open(dir.path()).unwrap();
        let p = dir.path().join("m");
        let mut long = b"Subject: x\r\nX-Pad: ".to_vec();
        // The empty line straddles the first 8 KiB read.
        long.resize(8190, b'a');
        long.extend_from_slice(b"\r\n\r\nbody\r\n");
        for (raw, want) in [
            (&b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore"[..], 14),
            (b"A: 1\n\nbody", 6),
            (b"\r\nbody only\r\n\r\n", 2),
            (b"no empty line at all", 20),
            (&long[..], 8194),
        ] {
            std::fs::write(&p, raw).unwrap();
            assert_eq!(bs.read_header(&p).unwrap(), &raw[..want]);
        }
    }
}
