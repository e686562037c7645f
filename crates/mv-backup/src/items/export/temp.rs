//! The temporary an export writes beside its output, and the sweep of those an
//! export that was killed left behind.
//!
//! The name says whose it is: `.<output name>.mailvault-export.<host>.<pid>.tmp`.
//! An export removes, before it starts, every such file or directory in its
//! output's directory that this machine's process `<pid>` no longer runs for
//! (a temporary of another machine sharing the directory, or of a process still
//! running, is left alone): without the sweep, each killed export of a large
//! Maildir or archive kept its partial copy forever.

use std::path::{Path, PathBuf};

const MARK: &str = ".mailvault-export.";
const SUFFIX: &str = ".tmp";

/// A name beside `path` for writing it before it is complete.
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    super::parent_of(path).join(temp_name(
        &name,
        &crate::target::hostname(),
        std::process::id(),
    ))
}

fn temp_name(output: &str, host: &str, pid: u32) -> String {
    format!(".{output}{MARK}{host}.{pid}{SUFFIX}")
}

/// The process that wrote a temporary on `host`, if `name` is one.
fn owner(name: &str, host: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    let (rest, pid) = rest.rsplit_once('.')?;
    let output = rest.strip_suffix(host)?.strip_suffix(MARK)?;
    if output.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` runs on this machine (signal 0 checks without sending;
/// EPERM: it runs, as another user).
fn running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks the process.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the temporaries of exports into `dir` whose process is gone; returns
/// what it removed. A failure to list or remove is logged and skipped: the
/// export itself does not depend on it.
pub(crate) fn sweep_stale(dir: &Path) -> Vec<PathBuf> {
    let host = crate::target::hostname();
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(
                "export: cannot list {} for stale temporaries: {e}",
                dir.display()
            );
            return removed;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| owner(n, &host)) else {
            continue;
        };
        if running(pid) {
            continue;
        }
        let path = entry.path();
        // Not followed: a symlink of that name is removed as the link.
        let r = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {
                tracing::info!(
                    "export: removed {}, left by an export that was stopped (process {pid})",
                    path.display()
                );
                removed.push(path);
            }
            Err(e) => tracing::warn!("export: cannot remove {}: {e}", path.display()),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process can have (above the kernel's limit of 2^22).
    const GONE: u32 = 999_999_999;

    #[test]
    fn a_name_is_recognised_only_with_this_host_and_a_pid() {
        let n = temp_name("hold.tgz", "box.example", 42);
        assert_eq!(n, ".hold.tgz.mailvault-export.box.example.42.tmp");
        assert_eq!(owner(&n, "box.example"), Some(42));
        assert_eq!(owner(&n, "other.example"), None);
        assert_eq!(owner(".hold.tgz.tmp42", "box.example"), None);
        assert_eq!(owner("hold.tgz", "box.example"), None);
        assert_eq!(
            owner(
                ".hold.tgz.mailvault-export.box.example.4x2.tmp",
                "box.example"
            ),
            None
        );
        assert_eq!(
            owner(".mailvault-export.box.example.42.tmp", "box.example"),
            None
        );
    }

    #[test]
    fn the_sweep_removes_dead_exports_temporaries_only() {
        let dir = tempfile::tempdir().unwrap();
        let host = crate::target::hostname();
        let dead_file = dir.path().join(temp_name("a.mbox", &host, GONE));
        std::fs::write(&dead_file, b"partial").unwrap();
        let dead_dir = dir.path().join(temp_name("Maildir", &host, GONE));
        std::fs::create_dir_all(dead_dir.join("cur")).unwrap();
        std::fs::write(dead_dir.join("cur/1.I1_0.mailvault:2,"), b"x").unwrap();
        let live = dir
            .path()
            .join(temp_name("b.mbox", &host, std::process::id()));
        std::fs::write(&live, b"being written").unwrap();
        let elsewhere = dir
            .path()
            .join(temp_name("c.mbox", "elsewhere.invalid", GONE));
        std::fs::write(&elsewhere, b"another machine's").unwrap();
        let unrelated = dir.path().join("notes.txt");
        std::fs::write(&unrelated, b"mine").unwrap();

        let mut removed = sweep_stale(dir.path());
        removed.sort();
        let mut want = vec![dead_file.clone(), dead_dir.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(!dead_file.exists() && !dead_dir.exists());
        assert!(live.exists() && elsewhere.exists() && unrelated.exists());
    }

    #[test]
    fn temp_beside_names_this_process() {
        let p = temp_beside(Path::new("/x/hold.tgz"));
        assert_eq!(p.parent(), Some(Path::new("/x")));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            owner(name, &crate::target::hostname()),
            Some(std::process::id())
        );
    }
}
