//! Dovecot 2.3 LMTP (Debian packages dovecot-core, dovecot-lmtpd) as the peer of
//! the LMTP scenario: the shared config (`peers/dovecot-lmtp.conf.in`) rendered
//! into a fresh directory, Maildirs, default fsync settings (`mail_fsync =
//! optimized`: a delivered message is fsynced before the 250). It must run as root
//! (the master drops to the `vmail` user to deliver; Dovecot refuses uid 0).
//! The IMAP scenario runs the same setup with `peers/dovecot-imap.conf.in`
//! (package dovecot-imapd, which `scripts/bench` installs when missing).

use super::{
    Availability, LmtpTarget, RunningServer, compare_ids, find_program, free_port, is_root,
};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const CONFIG_TEMPLATE: &str = include_str!("../../peers/dovecot-lmtp.conf.in");
pub const INSTALL: &str = "apt-get install -y dovecot-core dovecot-lmtpd";
pub const IMAP_CONFIG_TEMPLATE: &str = include_str!("../../peers/dovecot-imap.conf.in");
pub const IMAP_PACKAGE: &str = "dovecot-imapd";
/// Appended to the IMAP config for the peer with full-text search.
pub const FTS_XAPIAN_CONFIG: &str = include_str!("../../peers/dovecot-fts-xapian.conf.in");
pub const FTS_XAPIAN_PACKAGE: &str = "dovecot-fts-xapian";
const USER: &str = "vmail";

pub struct Dovecot {
    dovecot: Option<PathBuf>,
    doveadm: Option<PathBuf>,
}

impl Default for Dovecot {
    fn default() -> Self {
        Dovecot::detect()
    }
}

impl Dovecot {
    /// Finds `dovecot` and `doveadm` on PATH (or in the sbin directories).
    pub fn detect() -> Dovecot {
        Dovecot {
            dovecot: find_program("dovecot"),
            doveadm: find_program("doveadm"),
        }
    }

    /// A Dovecot at explicit paths (tests use a path that does not exist).
    pub fn at(dovecot: &Path, doveadm: &Path) -> Dovecot {
        Dovecot {
            dovecot: dovecot.is_file().then(|| dovecot.to_path_buf()),
            doveadm: doveadm.is_file().then(|| doveadm.to_path_buf()),
        }
    }

    fn lmtp_installed() -> bool {
        ["/usr/lib/dovecot/lmtp", "/usr/libexec/dovecot/lmtp"]
            .iter()
            .any(|p| Path::new(p).is_file())
    }
}

/// The LMTP config with `@DIR@` and `@PORT@` replaced.
pub fn render_config(dir: &Path, port: u16) -> String {
    render(CONFIG_TEMPLATE, dir, port)
}

fn render(template: &str, dir: &Path, port: u16) -> String {
    template
        .replace("@DIR@", &dir.display().to_string())
        .replace("@PORT@", &port.to_string())
}

impl Dovecot {
    fn imap_installed() -> bool {
        ["/usr/lib/dovecot/imap", "/usr/libexec/dovecot/imap"]
            .iter()
            .any(|p| Path::new(p).is_file())
    }

    /// Whether Dovecot IMAP can run here (`scripts/bench` installs the package
    /// when missing).
    pub fn imap_availability(&self) -> Availability {
        self.availability_of(
            Dovecot::imap_installed(),
            IMAP_PACKAGE,
            "the master runs as root and serves mail as the vmail user",
        )
    }

    /// Whether Dovecot with one protocol's package (`installed`, `package`) can run
    /// here; `why_root` says what needs root.
    fn availability_of(&self, installed: bool, package: &str, why_root: &str) -> Availability {
        let (Some(dovecot), Some(_)) = (&self.dovecot, &self.doveadm) else {
            return Availability::NotInstalled {
                install: format!("apt-get install -y dovecot-core {package}"),
            };
        };
        if !installed {
            return Availability::NotInstalled {
                install: format!("apt-get install -y {package}"),
            };
        }
        if !is_root() {
            return Availability::NeedsRoot {
                why: why_root.into(),
            };
        }
        let version = Command::new(dovecot)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Availability::Available { version }
    }

    /// A fresh Dovecot IMAP server in `dir`; each account's password is `x`.
    pub fn start_imap(&self, dir: &Path, accounts: &[String]) -> anyhow::Result<RunningDovecot> {
        self.launch(dir, accounts, IMAP_CONFIG_TEMPLATE, b"* OK")
    }

    fn fts_xapian_installed() -> bool {
        ["/usr/lib/dovecot/modules", "/usr/lib64/dovecot/modules"]
            .iter()
            .any(|d| Path::new(d).join("lib21_fts_xapian_plugin.so").is_file())
    }

    /// Whether Dovecot IMAP with the fts-xapian plugin can run here.
    pub fn imap_fts_availability(&self) -> Availability {
        match self.imap_availability() {
            Availability::Available { .. } if !Dovecot::fts_xapian_installed() => {
                Availability::NotInstalled {
                    install: format!("apt-get install -y {FTS_XAPIAN_PACKAGE}"),
                }
            }
            Availability::Available { version } => Availability::Available {
                version: format!(
                    "{version} with {FTS_XAPIAN_PACKAGE} {}",
                    fts_xapian_version()
                ),
            },
            other => other,
        }
    }

    /// [`Dovecot::start_imap`] with full-text search by fts-xapian
    /// (`peers/dovecot-fts-xapian.conf.in`).
    pub fn start_imap_fts(
        &self,
        dir: &Path,
        accounts: &[String],
    ) -> anyhow::Result<RunningDovecot> {
        let template = format!("{IMAP_CONFIG_TEMPLATE}{FTS_XAPIAN_CONFIG}");
        self.launch(dir, accounts, &template, b"* OK")
    }
}

/// The installed fts-xapian package's version (from dpkg), or "".
fn fts_xapian_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", FTS_XAPIAN_PACKAGE])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn ensure_vmail_user() -> anyhow::Result<()> {
    let exists = Command::new("id")
        .arg("-u")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        return Ok(());
    }
    let useradd = find_program("useradd").context("useradd not found (package passwd)")?;
    let st = Command::new(useradd)
        .args(["-r", "-M", "-s", "/usr/sbin/nologin", USER])
        .status()?;
    if !st.success() {
        bail!("useradd {USER} failed: {st}");
    }
    Ok(())
}

fn run(cmd: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {}", cmd.display()))?;
    if !out.status.success() {
        bail!(
            "{} {}: {}{}",
            cmd.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl LmtpTarget for Dovecot {
    fn name(&self) -> &'static str {
        "Dovecot"
    }

    fn availability(&self) -> Availability {
        self.availability_of(
            Dovecot::lmtp_installed(),
            "dovecot-lmtpd",
            "the master runs as root and delivers as the vmail user",
        )
    }

    fn start(&self, dir: &Path, accounts: &[String]) -> anyhow::Result<Box<dyn RunningServer>> {
        Ok(Box::new(self.launch(
            dir,
            accounts,
            CONFIG_TEMPLATE,
            b"220",
        )?))
    }
}

impl Dovecot {
    /// Starts the master with `template` rendered into `dir`; ready when it has
    /// written its pid and the listener greets with `greeting`.
    fn launch(
        &self,
        dir: &Path,
        accounts: &[String],
        template: &str,
        greeting: &[u8],
    ) -> anyhow::Result<RunningDovecot> {
        let (Some(dovecot), Some(doveadm)) = (self.dovecot.clone(), self.doveadm.clone()) else {
            bail!("Dovecot: peer not installed ({INSTALL})");
        };
        ensure_vmail_user()?;
        // vmail must reach the Maildirs: every ancestor needs o+x.
        for anc in dir.ancestors().skip(1) {
            let mode = std::fs::metadata(anc)?.permissions().mode();
            if mode & 0o001 == 0 {
                bail!(
                    "{} is not searchable by other users (mode {mode:o}); the vmail user cannot reach the Maildirs (use --dir elsewhere)",
                    anc.display()
                );
            }
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        let port = free_port()?;
        let conf = dir.join("dovecot.conf");
        std::fs::write(&conf, render(template, dir, port))?;
        let users: String = accounts
            .iter()
            .map(|a| format!("{a}:{{PLAIN}}x\n"))
            .collect();
        std::fs::write(dir.join("users"), users)?;
        run(
            Path::new("chown"),
            &["-R", "vmail:vmail", &dir.join("mail").display().to_string()],
        )?;
        let conf_s = conf.display().to_string();
        // Not `output()`: the daemon inherits the pipes and would keep them open.
        let start_log = std::fs::File::create(dir.join("dovecot.start.log"))?;
        let st = Command::new(&dovecot)
            .args(["-c", &conf_s])
            .stdin(std::process::Stdio::null())
            .stdout(start_log.try_clone()?)
            .stderr(start_log)
            .status()
            .context("starting Dovecot")?;
        if !st.success() {
            let msg = std::fs::read_to_string(dir.join("dovecot.start.log")).unwrap_or_default();
            bail!("dovecot -c {conf_s}: {st}: {}", msg.trim());
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut server = RunningDovecot {
            doveadm,
            conf: conf_s,
            dir: dir.to_path_buf(),
            addr,
            master: 0,
            stopped: false,
        };
        // Ready when the master has written its pid and the listener greets.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pid = std::fs::read_to_string(dir.join("run/master.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            if let Some(pid) = pid
                && let Ok(mut s) = std::net::TcpStream::connect(addr)
            {
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut buf = vec![0u8; greeting.len()];
                if s.read_exact(&mut buf).is_ok() && buf == greeting {
                    server.master = pid;
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("Dovecot did not start within 30 s; log:\n{}", log_tail(dir));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

pub struct RunningDovecot {
    doveadm: PathBuf,
    conf: String,
    dir: PathBuf,
    addr: SocketAddr,
    master: u32,
    stopped: bool,
}

impl RunningDovecot {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn master_pid(&self) -> u32 {
        self.master
    }

    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        run(&self.doveadm, &["-c", &self.conf, "stop"])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Path::new(&format!("/proc/{}", self.master)).exists() {
            if Instant::now() > deadline {
                bail!("Dovecot (pid {}) did not stop within 60 s", self.master);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// The Message-ID (no brackets) in the header of a stored message.
fn message_id(path: &Path) -> anyhow::Result<String> {
    let mut head = vec![0u8; 16 * 1024];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    let text = String::from_utf8_lossy(&head[..n]);
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.is_empty() {
            break;
        }
        if line.len() > 11 && line[..11].eq_ignore_ascii_case("message-id:") {
            return Ok(line[11..].trim().trim_matches(['<', '>']).to_string());
        }
    }
    bail!("{}: no Message-ID header", path.display())
}

impl RunningServer for RunningDovecot {
    fn lmtp_addr(&self) -> SocketAddr {
        self.addr
    }

    fn pid(&self) -> u32 {
        self.master
    }

    fn stop_and_verify(
        mut self: Box<Self>,
        expected: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<usize> {
        self.stop()?;
        let mail = self.dir.join("mail");
        compare_ids("Dovecot", expected, |account| {
            let mut ids = Vec::new();
            for sub in ["new", "cur"] {
                let d = mail.join(account).join(sub);
                let Ok(rd) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in rd {
                    ids.push(message_id(&e?.path())?);
                }
            }
            Ok(ids)
        })
    }
}

impl Drop for RunningDovecot {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
