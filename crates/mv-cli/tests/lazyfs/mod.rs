//! LazyFS for the power-cut tests: found or built, mounted over a temporary
//! directory, cut (every write no fsync made durable is dropped), torn writes.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use crate::common::BIN;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The LazyFS binary: `$MAILVAULT_LAZYFS`, else `<target>/lazyfs/lazyfs`, built
/// there with `../shared/tools/lazyfs/build.sh` when missing. `None` (with the
/// reason printed) where the test cannot run.
pub fn lazyfs_binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is missing".into());
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("mounting LazyFS needs root".into());
        }
        if let Some(p) = std::env::var_os("MAILVAULT_LAZYFS") {
            return Ok(PathBuf::from(p));
        }
        let target = Path::new(BIN).parent().and_then(Path::parent).unwrap();
        let bin = target.join("lazyfs/lazyfs");
        if bin.exists() {
            return Ok(bin);
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let build = repo.join("../shared/tools/lazyfs/build.sh");
        if !build.exists() {
            return Err(format!(
                "LazyFS is not built and {} is missing",
                build.display()
            ));
        }
        let out = Command::new("bash")
            .arg(&build)
            .arg(target.join("lazyfs"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building LazyFS failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(bin)
    });
    match found {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            eprintln!("SKIPPED: power-cut test not run: {why}");
            None
        }
    }
}

/// A LazyFS mount of a temporary directory.
pub struct LazyFs {
    bin: PathBuf,
    pub child: Child,
    /// The directory LazyFS shows (where its writes land, once flushed).
    pub root: PathBuf,
    pub mnt: PathBuf,
    fifo: PathBuf,
    config: PathBuf,
    /// LazyFS's "fault done" fifo, read to know a cut is complete.
    done: File,
    watchdog: Arc<Watchdog>,
    /// See [`LazyFs::exit_status`].
    exited: Option<std::process::ExitStatus>,
    _dir: tempfile::TempDir,
}

/// Keeps a test from hanging on LazyFS. LazyFS can stop answering requests (a
/// lock of its cache left held: seen under renames over files others read) —
/// all of them, or only those about one file — and then every process waiting
/// for an answer, the test's own included, waits for ever. Three checks: a
/// probe (a lookup on the mount every [`PROBE_EVERY`]) unanswered within the
/// probe limit ([`PROBE_LIMIT`]), or a thread of a child process working on the
/// mount (the server, a tool) waiting that long for an answer without a read or
/// write syscall in between, means LazyFS hung; a step past its limit
/// ([`LazyFs::watch`]) means something hung. Either way LazyFS is killed, which
/// fails every pending request of the mount (the processes waiting on it can
/// die), and the mount is detached.
struct Watchdog {
    /// The step under way and when it must be over.
    step: Mutex<Option<(String, Instant)>>,
    pid: u32,
    mnt: PathBuf,
    log: PathBuf,
    /// Set once it fired: what hung, and whether it was LazyFS itself.
    fired: Mutex<Option<(String, bool)>>,
    /// [`PROBE_LIMIT`] unless a test of the watchdog sets it.
    probe_limit: Mutex<Duration>,
    /// Whether it probes with lookups (a test of the watchdog turns them off).
    lookups: AtomicBool,
    /// Set when it starts killing LazyFS (a process waiting on it may return
    /// before `fired` is set).
    firing: AtomicBool,
    stop: AtomicBool,
}

/// How often the watchdog checks that LazyFS answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A probe unanswered this long: LazyFS hung (its answers take milliseconds;
/// an fsync of a large file under load, a second or two).
const PROBE_LIMIT: Duration = Duration::from_secs(10);

impl Watchdog {
    fn start(pid: u32, mnt: &Path, log: &Path) -> Arc<Watchdog> {
        let w = Arc::new(Watchdog {
            step: Mutex::new(None),
            pid,
            mnt: mnt.to_path_buf(),
            log: log.to_path_buf(),
            fired: Mutex::new(None),
            probe_limit: Mutex::new(PROBE_LIMIT),
            lookups: AtomicBool::new(true),
            firing: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        std::thread::spawn({
            let w = w.clone();
            move || w.run()
        });
        w
    }

    fn run(&self) {
        // When the probe under way was sent (None: answered).
        let sent: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let mut last_probe = Instant::now();
        // Children's threads waiting for LazyFS: their syscall count, and since when.
        let mut waiting: HashMap<(u32, u32), (u64, Instant)> = HashMap::new();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let due = self.step.lock().unwrap().clone();
            if let Some((step, deadline)) = &due
                && Instant::now() > *deadline
            {
                self.fire(format!("{step} did not finish in time"), false);
                return;
            }
            let pending = *sent.lock().unwrap();
            let limit = *self.probe_limit.lock().unwrap();
            match pending {
                Some(t) if t.elapsed() > limit => {
                    let during = due.as_ref().map_or("no step", |(step, _)| step);
                    self.fire(
                        format!("LazyFS answered no request for {limit:?} ({during})"),
                        true,
                    );
                    return;
                }
                Some(_) => {}
                None if last_probe.elapsed() >= PROBE_EVERY => {
                    last_probe = Instant::now();
                    let now = waiting_threads(&self.mnt);
                    waiting.retain(|k, _| now.iter().any(|(t, _)| t == k));
                    for (thread, calls) in now {
                        let since = waiting.entry(thread).or_insert((calls, last_probe));
                        if since.0 != calls {
                            *since = (calls, last_probe);
                        } else if since.1.elapsed() > limit {
                            let during = due.as_ref().map_or("no step", |(step, _)| step);
                            self.fire(
                                format!(
                                    "thread {} ({}) of process {} ({}) waited {limit:?} for LazyFS \
                                     ({during})",
                                    thread.1,
                                    std::fs::read_to_string(format!(
                                        "/proc/{}/task/{}/comm",
                                        thread.0, thread.1
                                    ))
                                    .unwrap_or_default()
                                    .trim(),
                                    thread.0,
                                    command(thread.0)
                                ),
                                true,
                            );
                            return;
                        }
                    }
                    if !self.lookups.load(Ordering::Relaxed) {
                        continue;
                    }
                    *sent.lock().unwrap() = Some(last_probe);
                    // A name that does not exist: LazyFS answers each lookup
                    // (nothing cached answers for it).
                    let probe = self.mnt.join(".watchdog-probe");
                    let sent = sent.clone();
                    std::thread::spawn(move || {
                        let _ = std::fs::symlink_metadata(probe);
                        *sent.lock().unwrap() = None;
                    });
                }
                None => {}
            }
        }
    }

    fn fire(&self, what: String, lazyfs_hung: bool) {
        let what = format!(
            "{what}: LazyFS (pid {}) was killed and its mount detached; the end of its log:\n{}",
            self.pid,
            log_tail(&self.log)
        );
        eprintln!("LazyFS watchdog: {what}");
        self.firing.store(true, Ordering::Release);
        // SAFETY: kill(2) on the process id of our own child (not yet waited for).
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        // Only now: a remount must not race the detach (it could detach the new mount).
        *self.fired.lock().unwrap() = Some((what, lazyfs_hung));
    }

    /// What it fired for, once it has finished (killed LazyFS and detached
    /// the mount); `None` if it did not fire.
    fn fired(&self) -> Option<(String, bool)> {
        loop {
            let fired = self.fired.lock().unwrap().clone();
            if fired.is_some() || !self.firing.load(Ordering::Acquire) {
                return fired;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl LazyFs {
    pub fn mount(bin: &Path) -> LazyFs {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (root, mnt) = (dir.path().join("root"), dir.path().join("mnt"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let fifo = dir.path().join("faults");
        let done_path = dir.path().join("faults-done");
        for f in [&fifo, &done_path] {
            let c = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
            // SAFETY: a valid C string.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        // Opened before LazyFS starts: its own open of the writing end waits for a reader.
        let done = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&done_path)
            .unwrap();
        let config = dir.path().join("lazyfs.toml");
        std::fs::write(
            &config,
            format!(
                "[faults]\nfifo_path=\"{}\"\nfifo_path_completed=\"{}\"\n\
                 [cache]\napply_eviction=false\n[cache.simple]\ncustom_size=\"512mb\"\n\
                 blocks_per_page=1\n[filesystem]\nlog_all_operations=false\nlogfile=\"\"\n",
                fifo.display(),
                done_path.display()
            ),
        )
        .unwrap();
        let child = Self::spawn(bin, &root, &mnt, &config);
        let watchdog = Watchdog::start(child.id(), &mnt, &config.with_extension("log"));
        let mut fs = LazyFs {
            bin: bin.to_path_buf(),
            child,
            root,
            mnt,
            fifo,
            config,
            done,
            watchdog,
            exited: None,
            _dir: dir,
        };
        fs.wait_mounted();
        fs
    }

    /// Starts a step that must be over within `limit` (the next call ends it):
    /// past that, the watchdog kills LazyFS and unmounts it.
    pub fn watch(&self, step: &str, limit: Duration) {
        self.check_watchdog();
        *self.watchdog.step.lock().unwrap() = Some((step.to_string(), Instant::now() + limit));
    }

    /// How long the watchdog's probes may wait for LazyFS's answer, and
    /// whether it looks names up (or only watches the children's threads).
    pub fn set_probe(&self, limit: Duration, lookups: bool) {
        *self.watchdog.probe_limit.lock().unwrap() = limit;
        self.watchdog.lookups.store(lookups, Ordering::Relaxed);
    }

    /// Fails the test, saying which step hung, if the watchdog fired.
    pub fn check_watchdog(&self) {
        if let Some((what, _)) = self.watchdog.fired() {
            panic!("LazyFS watchdog: {what}");
        }
    }

    /// After LazyFS failed — the watchdog found it hung (not a step too slow),
    /// or it crashed (its cache's races end in a segfault too) — what happened,
    /// with LazyFS mounted again. Its death dropped every write no fsync had
    /// made durable, as a power cut does, so a test may go on as after a cut.
    /// `None` while it runs as it should.
    pub fn recover_from_failure(&mut self) -> Option<String> {
        let what = match self.watchdog.fired() {
            Some((what, true)) => what,
            Some((_, false)) => return None,
            None => {
                let status = self.exit_status()?;
                format!(
                    "LazyFS exited by itself ({status}); the end of its log:\n{}",
                    self.log_tail()
                )
            }
        };
        self.remount();
        Some(what)
    }

    fn log(&self) -> PathBuf {
        self.config.with_extension("log")
    }

    fn spawn(bin: &Path, root: &Path, mnt: &Path, config: &Path) -> Child {
        // Appended to: a restart of LazyFS keeps what the last one said.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_extension("log"))
            .unwrap();
        Command::new(bin)
            .arg(mnt)
            .arg("--config-path")
            .arg(config)
            .args(["-o", "allow_other", "-o", "modules=subdir", "-o"])
            .arg(format!("subdir={}", root.display()))
            .arg("-f")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn wait_mounted(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.mounted() {
            assert!(
                self.exit_status().is_none(),
                "LazyFS exited at start; its log:\n{}",
                self.log_tail()
            );
            assert!(Instant::now() < deadline, "LazyFS did not mount");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After LazyFS crashed itself (a torn write) or was killed: unmount, mount
    /// again, with a watchdog of its own (the step under way still watched).
    pub fn remount(&mut self) {
        self.watchdog.stop.store(true, Ordering::Relaxed);
        self.unmount();
        self.child = Self::spawn(&self.bin, &self.root, &self.mnt, &self.config);
        self.exited = None;
        let step = self.watchdog.step.lock().unwrap().clone();
        self.watchdog = Watchdog::start(self.child.id(), &self.mnt, &self.log());
        *self.watchdog.step.lock().unwrap() = step;
        self.wait_mounted();
        self.warm();
    }

    /// Looks up every file on the mount, one at a time, so that LazyFS has each
    /// in its cache before anything else touches it. LazyFS takes a file into
    /// its cache at the first access after a cut or a start, and shows the entry
    /// to other requests before it has filled in the file's size (0 until
    /// then): an fsync by name in that moment truncates the file on LazyFS's
    /// disk to its cached size, nothing, and a read in it comes back empty
    /// (`the_first_access_after_a_cut_races_nothing` shows both). A server
    /// reading old messages while a checkpoint fsyncs others hit it about one
    /// round in 100: a message made durable rounds before, found empty. Done
    /// here, with nothing else running, no first access races another request.
    pub fn warm(&self) -> usize {
        let mut files = 0;
        let mut todo = vec![self.mnt.clone()];
        while let Some(dir) = todo.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                match std::fs::symlink_metadata(e.path()) {
                    Ok(m) if m.is_dir() => todo.push(e.path()),
                    Ok(_) => files += 1,
                    Err(_) => {}
                }
            }
        }
        files
    }

    fn unmount(&mut self) {
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !unmounted && self.mounted() {
            // Busy (a process still uses it) or LazyFS gone: detached now,
            // released when the last user lets go.
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status();
        }
        // A mount seen after this is the next LazyFS's.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.mounted() {
            assert!(
                Instant::now() < deadline,
                "{} stays mounted",
                self.mnt.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a fault command (LazyFS must be running: a fifo without its reader
    /// would block the write for ever).
    pub fn fault(&mut self, command: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
        match opened {
            Ok(mut f) => f.write_all(format!("{command}\n").as_bytes()).unwrap(),
            Err(e) => panic!(
                "LazyFS is not running ({e}; exit {:?}); its log:\n{}",
                self.exit_status(),
                self.log_tail()
            ),
        }
    }

    /// How LazyFS exited, if it did (kept: a process is reaped once).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
        }
        self.exited
    }

    /// Starts LazyFS's log afresh, keeping the last one as `<log>.prev` (a
    /// failure is explained by what the round before it did, too).
    pub fn rotate_log(&self) {
        let log = self.log();
        let _ = std::fs::copy(&log, log.with_extension("log.prev"));
        // LazyFS appends: it goes on at the new end.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .map(|f| f.set_len(0));
    }

    /// Copies LazyFS's logs (this round's and the one before) into
    /// `$MAILVAULT_POWERCUT_KEEP/<name>`, when that is set.
    pub fn keep_logs(&self, name: &str) {
        let Some(dir) = std::env::var_os("MAILVAULT_POWERCUT_KEEP") else {
            return;
        };
        let dir = Path::new(&dir).join(name);
        let _ = std::fs::create_dir_all(&dir);
        let log = self.log();
        for f in [log.with_extension("log.prev"), log] {
            if let Some(n) = f.file_name() {
                let _ = std::fs::copy(&f, dir.join(n));
            }
        }
        eprintln!("LazyFS's logs kept in {}", dir.display());
    }

    /// Regular files below `dir` (under the mount) whose size on LazyFS's disk
    /// differs from what LazyFS shows, or is 0: each with its inode number,
    /// link count and both sizes.
    pub fn suspect_files(&self, dir: &Path) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let Ok(rel) = dir.strip_prefix(&self.mnt) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut todo = vec![self.root.join(rel)];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.is_dir() {
                    todo.push(p);
                    continue;
                }
                let shown = p
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|r| std::fs::metadata(self.mnt.join(r)).ok())
                    .map(|m| m.len());
                if m.len() == 0 || shown != Some(m.len()) {
                    out.push(format!(
                        "{} (inode {}, {} links): {} bytes on disk, {shown:?} through LazyFS",
                        p.display(),
                        m.ino(),
                        m.nlink(),
                        m.len()
                    ));
                }
            }
        }
        out
    }

    /// The end of LazyFS's own log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log())
    }

    fn mounted(&self) -> bool {
        let mnt = self.mnt.to_str().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(mnt))
    }

    /// The power cut: every write no fsync made durable is gone; then every
    /// file is taken into LazyFS's cache ([`Self::warm`]).
    pub fn cut(&mut self) {
        self.cut_cold();
        self.warm();
    }

    /// The power cut, without [`Self::warm`].
    pub fn cut_cold(&mut self) {
        assert!(
            self.exit_status().is_none(),
            "LazyFS stopped before the cut; its log:\n{}",
            self.log_tail()
        );
        self.fault("lazyfs::clear-cache");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match self.done.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("LazyFS fault fifo: {e}"),
            }
            if String::from_utf8_lossy(&got).contains("finished::clear-cache") {
                return;
            }
            assert!(Instant::now() < deadline, "LazyFS did not finish the cut");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The threads of this process's children that run on `mnt` (their command
/// line names it) and wait for a FUSE answer, with their count of read and
/// write syscalls (unchanged while one request waits).
fn waiting_threads(mnt: &Path) -> Vec<((u32, u32), u64)> {
    let me = std::process::id();
    let mnt = mnt.to_string_lossy();
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // The parent is the second field after the command name's ")".
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid != Some(me) || !command(pid).contains(mnt.as_ref()) {
            continue;
        }
        for t in std::fs::read_dir(p.path().join("task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(tid) = t.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
            if !wchan.contains("wait_answer") {
                continue;
            }
            let io = std::fs::read_to_string(t.path().join("io")).unwrap_or_default();
            let calls = io
                .lines()
                .filter(|l| l.starts_with("syscr:") || l.starts_with("syscw:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            out.push(((pid, tid), calls));
        }
    }
    out
}

/// A process's command line, spaces between its arguments.
fn command(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        self.watchdog.stop.store(true, Ordering::Relaxed);
        self.unmount();
    }
}
