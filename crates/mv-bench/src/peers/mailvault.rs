//! mailvault as a system under test: `mailvault serve` (the real binary) in a fresh
//! home on free loopback ports, with the accounts provisioned offline first (the
//! same `Service` the admin API runs, without the HTTP round trips).

use super::{Availability, LmtpTarget, RunningServer, compare_ids, free_port};
use anyhow::{Context, bail};
use mv_home::{Home, HomeLock};
use mv_server::{Request, Service};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mailvault {
    pub binary: PathBuf,
}

impl Mailvault {
    pub fn new(binary: PathBuf) -> Mailvault {
        Mailvault { binary }
    }

    /// The `mailvault` binary next to the running executable (target/release when
    /// run as target/release/mailvault-bench).
    pub fn sibling_binary() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let p = exe.parent()?.join("mailvault");
        p.is_file().then_some(p)
    }
}

impl LmtpTarget for Mailvault {
    fn name(&self) -> &'static str {
        "mailvault"
    }

    fn availability(&self) -> Availability {
        if self.binary.is_file() {
            Availability::Available {
                version: format!("{} ({})", env!("CARGO_PKG_VERSION"), self.binary.display()),
            }
        } else {
            Availability::NotInstalled {
                install: format!(
                    "no binary at {}: cargo build --release -p mv-cli",
                    self.binary.display()
                ),
            }
        }
    }

    fn start(&self, dir: &Path, accounts: &[String]) -> anyhow::Result<Box<dyn RunningServer>> {
        let home = self.provision(dir, accounts)?;
        Ok(Box::new(self.serve(&home, dir)?))
    }
}

impl Mailvault {
    /// A fresh home at `dir/home` with the accounts' domains and the accounts
    /// provisioned offline (no server runs afterwards).
    pub fn provision(&self, dir: &Path, accounts: &[String]) -> anyhow::Result<Home> {
        self.provision_with_password(dir, accounts, None)
    }

    /// [`Mailvault::provision`], every account with `password` (for IMAP logins).
    pub fn provision_with_password(
        &self,
        dir: &Path,
        accounts: &[String],
        password: Option<&str>,
    ) -> anyhow::Result<Home> {
        let home = Home::at(&dir.join("home"));
        home.init()?;
        let _lock = HomeLock::acquire(home.root())?;
        let (svc, _) = Service::open(&home).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut domains: Vec<&str> = accounts
            .iter()
            .filter_map(|a| a.split_once('@').map(|x| x.1))
            .collect();
        domains.sort();
        domains.dedup();
        for d in domains {
            svc.execute(Request::CreateDomain {
                name: d.to_string(),
                attrs: vec![],
            })
            .map_err(|e| anyhow::anyhow!("creating domain {d}: {e}"))?;
        }
        for a in accounts {
            svc.create_account(a, password, &[])
                .map_err(|e| anyhow::anyhow!("creating account {a}: {e}"))?;
        }
        svc.store()
            .checkpoint()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(home)
    }

    /// Runs `mailvault serve` on `home` (on fresh loopback ports) until it is ready;
    /// its stderr goes to `log_dir/mailvault.stderr`.
    pub fn serve(&self, home: &Home, log_dir: &Path) -> anyhow::Result<RunningMailvault> {
        let (lmtp, admin) = (free_port()?, free_port()?);
        let mut cfg = home.open()?;
        cfg.set("lmtp_bind_port", &lmtp.to_string())?;
        cfg.set("admin_bind_port", &admin.to_string())?;
        let imap = free_port()?;
        cfg.set("imap_bind_port", &imap.to_string())?;
        // Benchmarks log in over loopback without TLS, as with the peers.
        cfg.set("imap_cleartext_login_enabled", "true")?;
        cfg.set("imaps_bind_port", &free_port()?.to_string())?;
        cfg.save(&home.localconfig_path())?;
        let log = log_dir.join("mailvault.stderr");
        let stderr = std::fs::File::create(&log)?;
        let mut child = Command::new(&self.binary)
            .arg("--home")
            .arg(home.root())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("mailvault ready") => break,
                Some(Ok(_)) => {}
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = std::fs::read_to_string(&log).unwrap_or_default();
                    bail!("mailvault serve exited before it was ready: {}", err.trim());
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("mailvault serve did not start within 120 s");
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(RunningMailvault {
            child,
            home: Home::at(home.root()),
            addr: SocketAddr::from(([127, 0, 0, 1], lmtp)),
            imap_addr: SocketAddr::from(([127, 0, 0, 1], imap)),
        })
    }

    /// `mailvault --home HOME ARGS...` (the product CLI, as a user runs it).
    pub fn command(&self, home: &Path) -> Command {
        let mut c = Command::new(&self.binary);
        // Times on the command line are local time: make local time UTC.
        c.env("TZ", "UTC").arg("--home").arg(home);
        c
    }
}

/// Every message of every account of a stopped home: account address ->
/// sorted (Message-ID without brackets, BLAKE3 of the stored bytes). Two homes
/// with equal maps hold the same messages byte for byte.
pub type MessageDigests = BTreeMap<String, Vec<(String, String)>>;

pub fn message_digests(home: &Home) -> anyhow::Result<MessageDigests> {
    per_account_messages(home, |read, items| {
        let mut v = Vec::with_capacity(items.len());
        for i in items {
            let bytes = read(i)?;
            v.push((
                i.message_id.trim_matches(['<', '>']).to_string(),
                blake3::hash(&bytes).to_hex().to_string(),
            ));
        }
        Ok(v)
    })
}

/// Where every message of every account of a stopped home is and how it is
/// marked: account address -> sorted (folder id, IMAP UID, Message-ID, flags,
/// tags). Two homes whose mailboxes went through the same changes have equal maps.
pub type MailboxStates = BTreeMap<String, Vec<(u32, u32, String, u32, Vec<u32>)>>;

pub fn mailbox_states(home: &Home) -> anyhow::Result<MailboxStates> {
    per_account_messages(home, |_, items| {
        Ok(items
            .iter()
            .map(|i| {
                (
                    i.folder_id,
                    i.imap_uid,
                    i.message_id.clone(),
                    i.flags,
                    i.tags.clone(),
                )
            })
            .collect())
    })
}

/// A message's stored bytes.
type ReadBlob<'a> = &'a dyn Fn(&mv_store::Item) -> anyhow::Result<Vec<u8>>;

/// `f` over the messages of each account of a stopped home (with a reader of
/// their bytes); its results sorted.
fn per_account_messages<T: Ord>(
    home: &Home,
    mut f: impl FnMut(ReadBlob, &[mv_store::Item]) -> anyhow::Result<Vec<T>>,
) -> anyhow::Result<BTreeMap<String, Vec<T>>> {
    let _lock = HomeLock::acquire(home.root())?;
    let (svc, _) = Service::open(home).map_err(|e| anyhow::anyhow!("{e}"))?;
    let accounts = svc
        .directory()
        .list_accounts(None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = BTreeMap::new();
    for a in accounts {
        let items = svc
            .store()
            .mailbox(a.mailbox_id)
            .items(None, Some(mv_store::ItemKind::Message))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let read = |i: &mv_store::Item| {
            svc.store()
                .read_blob(a.mailbox_id, i)
                .map_err(|e| anyhow::anyhow!("{}: item {}: {e}", a.email, i.id))
        };
        let mut v = f(&read, &items)?;
        v.sort();
        out.insert(a.email.clone(), v);
    }
    Ok(out)
}

pub struct RunningMailvault {
    child: Child,
    home: Home,
    addr: SocketAddr,
    imap_addr: SocketAddr,
}

impl RunningMailvault {
    /// The cleartext IMAP listener (LOGIN allowed).
    pub fn imap_addr(&self) -> SocketAddr {
        self.imap_addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (a crash: no shutdown path runs), then waits for the process.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits (up to 120 s) for a clean exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_mut()
    }

    fn stop_mut(&mut self) -> anyhow::Result<()> {
        // SAFETY: sending a signal has no memory effects in this process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("mailvault did not stop within 120 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            bail!("mailvault serve exited with {status} after SIGTERM");
        }
        Ok(())
    }
}

impl RunningServer for RunningMailvault {
    fn lmtp_addr(&self) -> SocketAddr {
        self.addr
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop_and_verify(
        mut self: Box<Self>,
        expected: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<usize> {
        self.stop_mut()?;
        let _lock = HomeLock::acquire(self.home.root())?;
        let (svc, _) = Service::open(&self.home).map_err(|e| anyhow::anyhow!("{e}"))?;
        compare_ids("mailvault", expected, |account| {
            let mbox = svc
                .mailbox_of(account)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let items = svc
                .store()
                .mailbox(mbox)
                .items(None, Some(mv_store::ItemKind::Message))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(items
                .into_iter()
                .map(|i| i.message_id.trim_matches(['<', '>']).to_string())
                .collect())
        })
    }
}

impl Drop for RunningMailvault {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
