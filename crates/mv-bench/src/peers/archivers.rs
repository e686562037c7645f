//! The backup tools mailvault's backup is compared with: GNU tar, restic and
//! BorgBackup (Debian packages tar, restic, borgbackup), each run as its own
//! command line on the same directories. Settings, chosen to be fair to them:
//!
//! - no compression anywhere (mailvault `--zipStore`, restic `--compression off`,
//!   borg `--compression none`, plain `tar -cf`);
//! - no encryption where it can be turned off (borg `--encryption=none`); restic
//!   always encrypts (AES-256-CTR + Poly1305), its password comes from
//!   `RESTIC_PASSWORD` in the environment;
//! - each tool's cache lives in the run's directory (`--cache-dir`, `BORG_BASE_DIR`),
//!   never in the user's home;
//! - incremental tar is GNU tar's `--listed-incremental` (one snapshot file per repo).
//!
//! A "repository" here is a directory the tool owns: the tar files and the snapshot
//! file for tar, the restic repository, the borg repository.

use super::{Availability, find_program};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The password restic is given (restic cannot run without one).
pub const RESTIC_PASSWORD: &str = "mailvault-bench";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tar,
    Restic,
    Borg,
}

#[derive(Debug, Clone)]
pub struct Archiver {
    pub kind: Kind,
    /// The program, when installed.
    pub program: Option<PathBuf>,
}

impl Archiver {
    /// The tool as found on this machine (PATH or the usual directories).
    pub fn detect(kind: Kind) -> Archiver {
        let name = match kind {
            Kind::Tar => "tar",
            Kind::Restic => "restic",
            Kind::Borg => "borg",
        };
        Archiver {
            kind,
            program: find_program(name),
        }
    }

    /// The tool at an explicit path (tests pass one that does not exist).
    pub fn at(kind: Kind, program: &Path) -> Archiver {
        Archiver {
            kind,
            program: program.is_file().then(|| program.to_path_buf()),
        }
    }

    /// All three, as found on this machine.
    pub fn all() -> Vec<Archiver> {
        [Kind::Tar, Kind::Restic, Kind::Borg]
            .into_iter()
            .map(Archiver::detect)
            .collect()
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Tar => "tar",
            Kind::Restic => "restic",
            Kind::Borg => "borg",
        }
    }

    /// The Debian package that provides the tool.
    pub fn package(&self) -> &'static str {
        match self.kind {
            Kind::Tar => "tar",
            Kind::Restic => "restic",
            Kind::Borg => "borgbackup",
        }
    }

    pub fn availability(&self) -> Availability {
        let Some(p) = &self.program else {
            return Availability::NotInstalled {
                install: format!("apt-get install -y {}", self.package()),
            };
        };
        let arg = match self.kind {
            Kind::Restic => "version",
            _ => "--version",
        };
        match Command::new(p).arg(arg).output() {
            Ok(o) if o.status.success() => Availability::Available {
                version: String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            },
            _ => Availability::NotInstalled {
                install: format!(
                    "{} does not run; apt-get install -y {}",
                    p.display(),
                    self.package()
                ),
            },
        }
    }

    /// The settings, for BENCHMARKS.md.
    pub fn settings(&self) -> &'static str {
        match self.kind {
            Kind::Tar => {
                "`tar -cf` (no compression), incrementals with `--listed-incremental`, restore `tar -xf`"
            }
            Kind::Restic => {
                "`restic backup --compression off` (repository v2; encryption cannot be disabled, \
                 password from RESTIC_PASSWORD), restore `restic restore`, check `restic check --read-data`"
            }
            Kind::Borg => {
                "`borg create --compression none` on a repository made with `borg init \
                 --encryption=none`, restore `borg extract`, check `borg check --verify-data`"
            }
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(self.program.clone().unwrap_or_else(|| self.name().into()));
        c.env("LC_ALL", "C");
        c
    }

    fn restic(&self, repo: &Path) -> Command {
        let mut c = self.cmd();
        c.env("RESTIC_PASSWORD", RESTIC_PASSWORD)
            .arg("--repo")
            .arg(repo)
            .arg("--cache-dir")
            .arg(repo.with_extension("cache"))
            .arg("--quiet");
        c
    }

    fn borg(&self, repo: &Path) -> Command {
        let mut c = self.cmd();
        c.env("BORG_BASE_DIR", repo.with_extension("borgbase"))
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes");
        c
    }

    /// Creates an empty repository at `repo` (not timed).
    pub fn init_cmd(&self, repo: &Path) -> Option<Command> {
        match self.kind {
            Kind::Tar => None,
            Kind::Restic => {
                let mut c = self.restic(repo);
                c.args(["init", "--repository-version", "2"]);
                Some(c)
            }
            Kind::Borg => {
                let mut c = self.borg(repo);
                c.args(["init", "--encryption=none"]).arg(repo);
                Some(c)
            }
        }
    }

    /// Backs up `paths` (relative to `base`) into `repo` as snapshot/archive `name`.
    /// `incremental`: tar records and uses its snapshot file (level 0 the first
    /// time, then each run relative to the previous); restic and borg always
    /// deduplicate against what the repository holds.
    pub fn backup_cmd(
        &self,
        repo: &Path,
        base: &Path,
        paths: &[&str],
        name: &str,
        incremental: bool,
    ) -> Command {
        match self.kind {
            Kind::Tar => {
                let mut c = self.cmd();
                c.arg("-cf").arg(repo.join(format!("{name}.tar")));
                if incremental {
                    c.arg(format!(
                        "--listed-incremental={}",
                        repo.join("snapshot.snar").display()
                    ));
                }
                c.arg("-C").arg(base).args(paths);
                c
            }
            Kind::Restic => {
                let mut c = self.restic(repo);
                c.current_dir(base)
                    .args(["backup", "--compression", "off", "--host", "bench", "--tag"])
                    .arg(name)
                    .args(paths);
                c
            }
            Kind::Borg => {
                let mut c = self.borg(repo);
                c.current_dir(base)
                    .args(["create", "--compression", "none"])
                    .arg(format!("{}::{name}", repo.display()))
                    .args(paths);
                c
            }
        }
    }

    /// Restores snapshot/archive `name` of `repo` into the empty directory `dest`.
    pub fn restore_cmd(&self, repo: &Path, name: &str, dest: &Path) -> Command {
        match self.kind {
            Kind::Tar => {
                let mut c = self.cmd();
                c.arg("-xf")
                    .arg(repo.join(format!("{name}.tar")))
                    .arg("-C")
                    .arg(dest);
                c
            }
            Kind::Restic => {
                let mut c = self.restic(repo);
                c.args(["restore", "latest", "--tag", name, "--target"])
                    .arg(dest);
                c
            }
            Kind::Borg => {
                let mut c = self.borg(repo);
                c.current_dir(dest)
                    .arg("extract")
                    .arg(format!("{}::{name}", repo.display()));
                c
            }
        }
    }

    /// Reads back and checks every byte of the repository, when the tool can.
    pub fn check_cmd(&self, repo: &Path) -> Option<Command> {
        match self.kind {
            Kind::Tar => None,
            Kind::Restic => {
                let mut c = self.restic(repo);
                c.args(["check", "--read-data"]);
                Some(c)
            }
            Kind::Borg => {
                let mut c = self.borg(repo);
                c.args(["check", "--verify-data"]).arg(repo);
                Some(c)
            }
        }
    }
}
