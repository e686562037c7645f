//! A home with a store and a directory, for backup tests.
#![allow(dead_code)]

use mv_backup::{BackupOptions, BackupReport, FsTarget, NoProgress, SessionKind, Source, Target};
use mv_directory::{Account, Directory};
use mv_home::Home;
use mv_store::{DeliverOptions, Store, StoreOptions};
use mv_types::MailboxId;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SERVER: &str = "mail.test";

pub struct Fx {
    pub dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub home: Home,
    pub store: Store,
    pub directory: Mutex<Directory>,
    pub target_dir: PathBuf,
}

impl Fx {
    pub fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        Self::at(dir)
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
        let mut directory = Directory::open_home(&home).unwrap();
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
    pub fn target(&self) -> Arc<FsTarget> {
        Arc::new(FsTarget::open(&self.target_dir).unwrap())
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
        let t: Arc<dyn Target> = self.target();
        mv_backup::backup(&self.source(), t, opts, &NoProgress).unwrap()
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
