//! LazyFS for the power-cut tests: found or built, mounted over a temporary
//! directory, cut (every write no fsync made durable is dropped), torn writes.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use crate::common::BIN;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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
    _dir: tempfile::TempDir,
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
        let mut fs = LazyFs {
            bin: bin.to_path_buf(),
            child,
            root,
            mnt,
            fifo,
            config,
            done,
            _dir: dir,
        };
        fs.wait_mounted();
        fs
    }

    fn spawn(bin: &Path, root: &Path, mnt: &Path, config: &Path) -> Child {
        let log = File::create(config.with_extension("log")).unwrap();
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
                self.child.try_wait().unwrap().is_none(),
                "LazyFS exited at start"
            );
            assert!(Instant::now() < deadline, "LazyFS did not mount");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After LazyFS crashed itself (a torn write): unmount, mount again.
    pub fn remount(&mut self) {
        self.unmount();
        self.child = Self::spawn(&self.bin, &self.root, &self.mnt, &self.config);
        self.wait_mounted();
    }

    fn unmount(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
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
                self.child.try_wait(),
                self.log_tail()
            ),
        }
    }

    /// The end of LazyFS's own log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn mounted(&self) -> bool {
        let mnt = self.mnt.to_str().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(mnt))
    }

    /// The power cut: every write no fsync made durable is gone.
    pub fn cut(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
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

impl Drop for LazyFs {
    fn drop(&mut self) {
        self.unmount();
    }
}
