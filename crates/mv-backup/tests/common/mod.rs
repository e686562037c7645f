//! A home with a store and a directory, for backup tests, backing up to a
//! filesystem target or to an S3 target on a real (in-process) S3-compatible server.
#![allow(dead_code)]

pub mod s3;

use mv_backup::{
    BackupOptions, BackupReport, FsTarget, NoProgress, S3Settings, S3Target, SessionKind, Source,
    Target,
};
use mv_directory::{Account, Directory};
use mv_home::Home;
use mv_store::{DeliverOptions, Store, StoreOptions};
use mv_types::MailboxId;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SERVER: &str = "mail.test";

/// Runs each named test body (a `fn(Fx)`) twice: `fs::NAME` against a filesystem
/// target, `s3::NAME` against an S3 target.
#[macro_export]
macro_rules! on_both_targets {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $( #[test] fn $name() { super::$name(super::common::Fx::new()) } )*
        }
        mod s3 {
            $( #[test] fn $name() { super::$name(super::common::Fx::new_s3()) } )*
        }
    };
}

/// Multipart part size of test S3 targets: S3's (and s3s-fs's) smallest.
pub const TEST_PART_SIZE: usize = mv_backup::target::MIN_PART_SIZE;

pub struct Fx {
    pub dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub home: Home,
    pub store: Store,
    pub directory: Mutex<Directory>,
    /// Where the target's objects are, as files (for an S3 target: the server's
    /// storage of the bucket prefix).
    pub target_dir: PathBuf,
    pub s3: Option<s3::S3Server>,
}

impl Fx {
    pub fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        Self::at(dir)
    }

    /// Backs up to `s3://mv-backups/backups` on a server of its own.
    pub fn new_s3() -> Fx {
        let mut fx = Fx::new();
        let server = s3::S3Server::start(&fx.root.join("s3"));
        fx.target_dir = server.object_file("backups");
        fx.s3 = Some(server);
        fx
    }

    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// Settings for an S3 target on this fixture's server.
    pub fn s3_settings(&self) -> S3Settings {
        let server = self.s3.as_ref().expect("an S3 fixture");
        let mut s = S3Settings::new(self.root.join("scratch"));
        s.endpoint = Some(server.endpoint.clone());
        s.region = Some("us-east-1".into());
        s.access_key = Some(s3::ACCESS_KEY.into());
        s.secret_key = Some(s3::SECRET_KEY.into());
        s.allow_http = true;
        s.settle = Duration::from_millis(200);
        s.lease = Duration::from_secs(10);
        s.part_size = TEST_PART_SIZE;
        s
    }

    /// The file holding a target object (to damage it, or to measure it).
    pub fn object_file(&self, path: &str) -> PathBuf {
        self.target_dir.join(path)
    }

    pub fn at(dir: tempfile::TempDir) -> Fx {
        let mut fx = Self::open(dir.path());
        fx.directory
            .lock()
            .unwrap()
            .create_domain("d.test", &[])
            .unwrap();
        fx.dir = Some(dir);
        fx
    }

    /// Opens the home under `root` (created if needed), recovering its store.
    pub fn open(root: &std::path::Path) -> Fx {
        let home = Home::at(&root.join("home"));
        home.init().unwrap();
        let directory = Directory::open_home(&home).unwrap();
        directory.ensure_server(SERVER).unwrap();
        let (store, _) = Store::open(&home, StoreOptions::for_home(&home)).unwrap();
        let target_dir = root.join("target");
        Fx {
            dir: None,
            root: root.to_path_buf(),
            home,
            store,
            directory: Mutex::new(directory),
            target_dir,
            s3: None,
        }
    }

    pub fn source(&self) -> Source<'_> {
        Source {
            store: &self.store,
            directory: &self.directory,
            server_name: SERVER,
        }
    }

    /// A fresh handle on the target (its byte counter starts at 0).
    pub fn target(&self) -> Arc<dyn Target> {
        match &self.s3 {
            Some(server) => {
                Arc::new(S3Target::open(&server.url("backups"), self.s3_settings()).unwrap())
            }
            None => Arc::new(FsTarget::open(&self.target_dir).unwrap()),
        }
    }

    pub fn account(&self, email: &str) -> Account {
        let a = self
            .directory
            .lock()
            .unwrap()
            .create_account(email, None, &[])
            .unwrap();
        self.account_mailbox(a)
    }

    pub fn find_account(&self, email: &str) -> Account {
        self.directory.lock().unwrap().get_account(email).unwrap()
    }

    fn account_mailbox(&self, a: Account) -> Account {
        self.store
            .create_mailbox(a.mailbox_id, &a.id, &a.email)
            .unwrap();
        a
    }

    pub fn deliver(&self, raw: &[u8], to: &[&Account]) {
        let ids: Vec<MailboxId> = to.iter().map(|a| a.mailbox_id).collect();
        self.store
            .deliver(raw, &ids, &DeliverOptions::default())
            .unwrap();
    }

    pub fn opts(&self, kind: SessionKind) -> BackupOptions {
        let mut o = BackupOptions::new(kind);
        o.lock_wait = Duration::from_secs(5);
        o.min_free_space = Some("0".into());
        o.keep_time = Some(Duration::ZERO);
        o
    }

    pub fn backup(&self, kind: SessionKind) -> BackupReport {
        self.backup_with(self.opts(kind))
    }

    pub fn backup_with(&self, opts: BackupOptions) -> BackupReport {
        let t = self.target();
        mv_backup::backup(&self.source(), t, opts, &NoProgress).unwrap()
    }

    /// The file behind a session's `rel`, wherever the session keeps it (an
    /// account file of a format 2 full is under `pieces/`).
    pub fn file_of(&self, label: &mv_backup::Label, rel: &str) -> PathBuf {
        let catalog = mv_backup::Catalog::load(self.target().as_ref()).unwrap();
        let s = catalog.get(label).unwrap().session().unwrap().clone();
        self.target_dir.join(s.object_path(rel))
    }

    pub fn session_path(&self, label: &mv_backup::Label, rel: &str) -> PathBuf {
        self.target_dir
            .join("sessions")
            .join(label.to_string())
            .join(rel)
    }
}

/// A message of about `size` bytes, unique by `tag`.
pub fn message(tag: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: sender@example.com\r\nTo: someone@example.com\r\nSubject: message {tag}\r\n\
         Message-ID: <{tag}@example.com>\r\nDate: Thu, 05 Jun 2014 01:00:23 -0700\r\n\r\n"
    )
    .into_bytes();
    let mut x: u64 = tag.bytes().fold(1469598103934665603, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    });
    while m.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.extend_from_slice(format!("{tag} line {:016x}\r\n", x).as_bytes());
    }
    m
}

/// Sum of the sizes of every file under a directory.
pub fn du(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                total += du(&e.path());
            } else {
                total += md.len();
            }
        }
    }
    total
}

/// A small xorshift generator for kill timings: `rand(n)` is in `0..n`. Seeded
/// with the process id, so each run of a crash test kills at other moments.
pub fn kill_timer(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed ^ std::process::id() as u64;
    move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}
