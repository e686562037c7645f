//! The log: `tracing` events to `log/mailbox.log` through [`LogFile`], a writer of
//! our own rather than `tracing-appender`, because a log write must never fail the
//! caller: on a full disk the line is dropped and counted, and the first line
//! written once the disk has room again says how many were lost and why.
//! `tracing-appender` rotates by time only and reports write errors to stderr on
//! every line; here rotation is by size and by day with a kept count.
//!
//! Lines are plain text (timestamp, level, target, fields; no ANSI colour) or JSON
//! lines (`log_format = json`). Warnings also go to stderr, coloured only when it
//! is a terminal.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How the log file is written; from the local config (`log_*` keys).
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes (0: never by size).
    pub max_bytes: u64,
    /// Rotated files kept (`mailbox.log.2026-12-07`, `.1`, ...); older ones are removed.
    pub keep: usize,
    /// Only the server rotates; the command-line tools append to the same file.
    pub rotate: bool,
}

/// The log file writer. Cheap to share: one mutex around the open file.
pub struct LogFile {
    settings: LogSettings,
    state: Mutex<State>,
}

struct State {
    file: Option<File>,
    size: u64,
    /// The day (UTC, `YYYY-MM-DD`) the open file's lines belong to.
    day: String,
    /// Lines lost since the last successful write, and the first error.
    dropped: u64,
    error: Option<String>,
    /// A failed write may have left half a line: the next write starts a new one.
    torn: bool,
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

impl LogFile {
    pub fn new(settings: LogSettings) -> LogFile {
        LogFile {
            settings,
            state: Mutex::new(State {
                file: None,
                size: 0,
                day: today(),
                dropped: 0,
                error: None,
                torn: false,
            }),
        }
    }

    fn open(&self) -> std::io::Result<(File, u64)> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.settings.path)?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    /// Writes one formatted line; never fails (a lost line is counted instead).
    pub fn write_line(&self, line: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let day = today();
        if self.settings.rotate
            && st.file.is_some()
            && (day != st.day
                || (self.settings.max_bytes > 0
                    && st.size + line.len() as u64 > self.settings.max_bytes))
        {
            let old_day = std::mem::replace(&mut st.day, day);
            st.file = None;
            // A failed rotation leaves the file as it is; lines keep going to it.
            let _ = rotate(&self.settings.path, &old_day, self.settings.keep);
        }
        if st.file.is_none() {
            match self.open() {
                Ok((f, size)) => {
                    st.file = Some(f);
                    st.size = size;
                }
                Err(e) => return lost(&mut st, &e),
            }
        }
        let mut pending = Vec::new();
        if st.torn {
            pending.push(b'\n');
        }
        if st.dropped > 0 {
            pending.extend_from_slice(
                format!(
                    "{} WARN mailvault::log: {} log lines were dropped because {} could not be written ({}); logging resumed\n",
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    st.dropped,
                    self.settings.path.display(),
                    st.error.as_deref().unwrap_or("unknown error"),
                )
                .as_bytes(),
            );
        }
        pending.extend_from_slice(line);
        let file = st.file.as_mut().expect("opened above");
        match file.write_all(&pending) {
            Ok(()) => {
                st.size += pending.len() as u64;
                st.dropped = 0;
                st.error = None;
                st.torn = false;
            }
            Err(e) => {
                // Part of the buffer may be in the file; the size is re-read on reopen.
                st.torn = true;
                st.file = None;
                lost(&mut st, &e);
            }
        }
    }
}

fn lost(st: &mut State, e: &std::io::Error) {
    st.dropped += 1;
    mv_server::metrics::LOG_LINES_DROPPED.fetch_add(1, Ordering::Relaxed);
    if st.error.is_none() {
        st.error = Some(e.to_string());
    }
}

/// `mailbox.log` → `mailbox.log.DAY` (`.DAY.N` when taken), then removes the
/// oldest rotated files beyond `keep`.
fn rotate(path: &Path, day: &str, keep: usize) -> std::io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("mailbox.log")
        .to_string();
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut target = dir.join(format!("{name}.{day}"));
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{name}.{day}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &target)?;
    let prefix = format!("{name}.");
    let mut rotated: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    rotated.sort();
    let excess = rotated.len().saturating_sub(keep);
    for (_, p) in rotated.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// One event's line, buffered by the formatter and handed over whole.
pub struct LineWriter<'a> {
    log: &'a LogFile,
    buf: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.log.write_line(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            log: self,
            buf: Vec::with_capacity(256),
        }
    }
}

/// What `init` needs from the command line and the home.
pub struct Setup<'a> {
    /// `log/` of an existing home, if there is one: the file goes there.
    pub log_dir: Option<&'a Path>,
    pub config: Option<&'a mv_home::LocalConfig>,
    /// This process is the server (it rotates the file).
    pub server: bool,
}

/// Installs the global subscriber: the file (level from `MAILVAULT_LOG`, else
/// `log_level`, default info) and stderr (warnings, or `MAILVAULT_LOG`).
pub fn init(setup: Setup<'_>) {
    let env = std::env::var("MAILVAULT_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let cfg = |k: &str| setup.config.and_then(|c| c.get(k)).map(str::to_string);
    let filter = |default: &str| {
        env.as_deref()
            .and_then(|v| EnvFilter::try_new(v).ok())
            .unwrap_or_else(|| EnvFilter::new(default))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // Its fallback is an eprintln!, which panics when stderr is a full disk.
        .log_internal_errors(false)
        .with_filter(filter("warn"));
    let file_layer = setup.log_dir.filter(|d| d.is_dir()).map(|dir| {
        let num = |k: &str| setup.config.map(|c| c.get_u64(k)).unwrap_or(0);
        let log = LogFile::new(LogSettings {
            path: dir.join("mailbox.log"),
            max_bytes: num("log_max_size_mb").saturating_mul(1 << 20),
            keep: num("log_keep").max(1) as usize,
            rotate: setup.server,
        });
        let level = cfg("log_level").unwrap_or_else(|| "info".to_string());
        let json = cfg("log_format").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        let base = tracing_subscriber::fmt::layer()
            .with_writer(log)
            .with_ansi(false)
            .log_internal_errors(false);
        // Account logger lines pass whatever the level: only a logger set with
        // `zmprov aal` emits them (mv_server::account_log).
        let file_filter = filter(&level).or(filter_fn(|m| {
            m.target()
                .starts_with(mv_server::account_log::TARGET_PREFIX)
        }));
        if json {
            base.event_format(crate::logjson::JsonLines)
                .with_filter(file_filter)
                .boxed()
        } else {
            base.with_filter(file_filter).boxed()
        }
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, max_bytes: u64, keep: usize) -> LogSettings {
        LogSettings {
            path: dir.join("mailbox.log"),
            max_bytes,
            keep,
            rotate: true,
        }
    }

    #[test]
    fn rotates_by_size_and_keeps_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(settings(dir.path(), 100, 2));
        for i in 0..20 {
            log.write_line(format!("line {i:02} {}\n", "x".repeat(30)).as_bytes());
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        let current = std::fs::read_to_string(dir.path().join("mailbox.log")).unwrap();
        assert!(current.len() <= 100, "{current}");
        assert!(current.ends_with(&format!("line 19 {}\n", "x".repeat(30))));
    }

    #[test]
    fn a_failed_write_is_counted_and_reported_once_it_works_again() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: every open fails.
        let path = dir.path().join("mailbox.log");
        std::fs::create_dir(&path).unwrap();
        let log = LogFile::new(settings(dir.path(), 0, 2));
        let before = mv_server::metrics::LOG_LINES_DROPPED.load(Ordering::Relaxed);
        log.write_line(b"lost 1\n");
        log.write_line(b"lost 2\n");
        assert!(mv_server::metrics::LOG_LINES_DROPPED.load(Ordering::Relaxed) >= before + 2);
        std::fs::remove_dir(&path).unwrap();
        log.write_line(b"kept\n");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("2 log lines were dropped because") && text.ends_with("kept\n"),
            "{text}"
        );
    }
}
