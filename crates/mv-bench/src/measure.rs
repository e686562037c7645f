//! Running one command-line tool as a measured step: wall time, bytes written from
//! the kernel's own accounting of the child (`wait4` rusage `ru_oublock`, the
//! task's `write_bytes` / 512), and peak RSS sampled from `/proc/PID/status`
//! (`VmHWM`, every 10 ms). Not `ru_maxrss`: it keeps the high-water mark of the
//! memory the child had before `exec`, i.e. this (large) process's. The
//! time optionally includes a `syncfs` of the destination afterwards, so that a
//! tool that leaves its output in the page cache (tar, restic) is timed until its
//! result is on disk like one that fsyncs itself (mailvault, borg).

use anyhow::{Context, bail};
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one measured command did.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Wall time from spawn to exit (plus the syncfs, when asked for).
    pub secs: f64,
    /// Peak resident set of the child (`None` if it ended before the first sample).
    pub peak_rss_bytes: Option<u64>,
    /// Bytes the child caused to be written to storage.
    pub write_bytes: u64,
    pub stdout: String,
    pub stderr: String,
}

/// `syncfs` of the filesystem holding `dir`: its dirty data reaches the disk.
pub fn syncfs(dir: &Path) -> anyhow::Result<()> {
    mv_home::syncfs(dir).with_context(|| format!("syncfs {}", dir.display()))
}

fn read_back(mut f: std::fs::File) -> String {
    let mut s = Vec::new();
    let _ = f.rewind();
    let _ = f.read_to_end(&mut s);
    String::from_utf8_lossy(&s).into_owned()
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.trim_end().lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Runs `cmd` to completion and measures it; `sync_after`: the directory whose
/// filesystem is synced (inside the timed part). A non-zero exit is an error that
/// carries the end of the tool's stderr.
pub fn run(cmd: &mut Command, what: &str, sync_after: Option<&Path>) -> anyhow::Result<Measured> {
    // Output goes to unlinked temporary files: a pipe could fill and stall the tool.
    let out = tempfile::tempfile()?;
    let err = tempfile::tempfile()?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id() as libc::pid_t;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = None;
            // spawn() returned after the exec: every sample is the tool's own memory.
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = crate::sysinfo::peak_rss(pid as u32) {
                    peak = peak.max(Some(v));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which
    // std's Child is never asked to wait for afterwards.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: valid pointers to locals; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    stop.store(true, Ordering::Relaxed);
    let peak_rss_bytes = sampler.join().unwrap_or(None);
    if r != pid {
        bail!("{what}: wait4 failed: {}", std::io::Error::last_os_error());
    }
    if let Some(dir) = sync_after {
        syncfs(dir)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let (stdout, stderr) = (read_back(out), read_back(err));
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let how = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        bail!(
            "{what} failed ({how}): {}{}",
            tail(&stderr, 8),
            if stderr.trim().is_empty() {
                tail(&stdout, 8)
            } else {
                String::new()
            }
        );
    }
    Ok(Measured {
        secs,
        peak_rss_bytes,
        write_bytes: ru.ru_oublock.max(0) as u64 * 512,
        stdout,
        stderr,
    })
}

/// Total apparent size of the regular files below `paths`, each file once however
/// many hard links it has (the store links one blob into several mailboxes);
/// symlinks are not followed.
pub fn tree_bytes(paths: &[&Path]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(md) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if md.is_dir() {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.flatten().map(|e| walk(&e.path(), seen)).sum()
        } else if md.is_file() && seen.insert((md.dev(), md.ino())) {
            md.len()
        } else {
            0
        }
    }
    let mut seen = std::collections::HashSet::new();
    paths.iter().map(|p| walk(p, &mut seen)).sum()
}

/// Path (relative to `root`) and BLAKE3 of every regular file below `root/sub` for
/// each `sub`, sorted: two trees with the same list hold the same bytes.
pub fn tree_digests(root: &Path, subs: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
        let md = std::fs::symlink_metadata(p).with_context(|| format!("{}", p.display()))?;
        if md.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(root, &e?.path(), out)?;
            }
        } else if md.is_file() {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let rel = p.strip_prefix(root).unwrap_or(p).display().to_string();
            out.push((rel, blake3::hash(&bytes).to_hex().to_string()));
        }
        Ok(())
    }
    let mut out = Vec::new();
    for s in subs {
        walk(root, &root.join(s), &mut out)?;
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_and_reports_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        let m = run(
            Command::new("sh").args([
                "-c",
                &format!(
                    "head -c 3000000 /dev/zero > {}; ln {0} {0}.link; sleep 0.1; echo done",
                    f.display()
                ),
            ]),
            "writer",
            Some(dir.path()),
        )
        .unwrap();
        assert_eq!(m.stdout.trim(), "done");
        // The shell's own memory, far below this test process's.
        assert!(
            m.peak_rss_bytes.is_some_and(|r| r > 0 && r < 64 << 20),
            "{m:?}"
        );
        assert!(m.write_bytes <= 3_000_000 + (1 << 20), "{m:?}");
        assert!(m.secs > 0.0);
        assert_eq!(
            tree_bytes(&[dir.path()]),
            3_000_000,
            "a hard link counts once"
        );
        let e = run(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            "failer",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exit status 3") && e.contains("broken"), "{e}");
    }
}
