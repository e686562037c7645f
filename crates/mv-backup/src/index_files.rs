//! The search index of an account in a full backup (`<account>/index/...`), unless
//! `--exclude SearchIndex`. The index is derived data: trouble reading it is noted
//! and never fails the account, and a restore rebuilds the index from the restored
//! mailbox (it gets a new mailbox id, and a rebuild is exact), so these files serve
//! inspection and manual recovery, as Zimbra's `index/` directory does.
//!
//! A consistent copy without stopping the indexer: `meta.json` is read first and
//! only the files of the segments it lists are copied. Committed segment files never
//! change; if a merge removes one meanwhile, the copy starts over (a few times).
//!
//! In the session: `index/meta.json` as it is, and the segment files in one
//! stored zip, `index/segments.zip` (`unzip` extracts them beside meta.json). One
//! file instead of a score per account: creating thousands of small files costs a
//! full backup more than their bytes do.

use crate::error::Result;
use crate::run::SessionBuilder;
use std::path::Path;

const ATTEMPTS: usize = 3;
/// The segment files of the index, in the session.
pub(crate) const SEGMENTS_ZIP: &str = "segments.zip";

/// Copies the index in `dir` into the session under `rel_dir`. Returns the bytes
/// copied, or a note saying why nothing was (no index yet, unreadable).
pub(crate) fn put_index(
    sb: &mut SessionBuilder<'_>,
    dir: &Path,
    rel_dir: &str,
) -> Result<std::result::Result<u64, String>> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match read_consistent(dir) {
            Ok(None) => return Ok(Err(format!("no search index in {}", dir.display()))),
            Ok(Some((meta, segments))) => {
                let zip = zip_files(&segments)
                    .map_err(|e| crate::error::BackupError::Invalid(format!("index zip: {e}")))?;
                sb.put_piece(&format!("{rel_dir}/{SEGMENTS_ZIP}"), &zip)?;
                sb.put_piece(&format!("{rel_dir}/meta.json"), &meta)?;
                return Ok(Ok((zip.len() + meta.len()) as u64));
            }
            Err(e) => last = e,
        }
    }
    Ok(Err(format!(
        "search index {} not copied: {last}",
        dir.display()
    )))
}

/// Index files by name, with their bytes.
type Files = Vec<(String, Vec<u8>)>;

/// The files in a zip archive, stored (index files compress little).
fn zip_files(files: &Files) -> zip::result::ZipResult<Vec<u8>> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        z.start_file(name.as_str(), options)?;
        z.write_all(data)?;
    }
    Ok(z.finish()?.into_inner())
}

/// `meta.json` and the files of the segments it lists, read in memory (an index is
/// small next to the mail it describes). `None` when there is no index.
fn read_consistent(dir: &Path) -> std::result::Result<Option<(Vec<u8>, Files)>, String> {
    let meta = match std::fs::read(dir.join("meta.json")) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("meta.json: {e}")),
    };
    let parsed: serde_json::Value =
        serde_json::from_slice(&meta).map_err(|e| format!("meta.json: {e}"))?;
    // Segment files are named after the segment id without its hyphens.
    let segments: Vec<String> = parsed["segments"]
        .as_array()
        .ok_or("meta.json lists no segments")?
        .iter()
        .filter_map(|s| s["segment_id"].as_str())
        .map(|id| id.replace('-', ""))
        .collect();
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    for e in entries {
        let e = e.map_err(|e| e.to_string())?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !segments.iter().any(|s| name.starts_with(s.as_str())) {
            continue;
        }
        let data = std::fs::read(e.path()).map_err(|e| format!("{name}: {e}"))?;
        files.push((name, data));
    }
    files.sort();
    Ok(Some((meta, files)))
}

/// The files of a `segments.zip`, by name.
pub(crate) fn unzip(zip: &[u8]) -> zip::result::ZipResult<Files> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip))?;
    let mut out = Vec::with_capacity(z.len());
    for n in 0..z.len() {
        let mut f = z.by_index(n)?;
        let mut data = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut data)?;
        out.push((f.name()?.into_owned(), data));
    }
    Ok(out)
}
