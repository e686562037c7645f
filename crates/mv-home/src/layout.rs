//! Where a home is and what it holds.
//!
//! ```text
//! <home>/conf/localconfig.conf   local configuration (key = value)
//!        conf/admin.token        admin API token (mode 0600)
//!        db/directory.sqlite     the directory
//!        db/mbox/<id>.sqlite     one metadata database per mailbox
//!        store/<volume>/...      blobs; store/incoming/ stages new content
//!        index/<mailbox id>/     search indexes (derived data)
//!        redolog/redo.log        current redo log; redolog/archive/ archived logs
//!        backup/                 default backup target
//!        log/                    logs
//! ```

use crate::durable::{create_dir_all_durable, write_atomic_mode};
use crate::localconfig::{LocalConfig, LocalConfigError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot create the home directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] LocalConfigError),
    #[error(
        "no home directory: pass --home DIR or set MAILVAULT_HOME (HOME is not set either, so there is no default)"
    )]
    NoDefault,
}

/// A mailvault home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home chosen by `--home`, else `$MAILVAULT_HOME`, else
    /// `$XDG_DATA_HOME/mailvault`, else `~/.local/share/mailvault` (no root needed).
    pub fn resolve(explicit: Option<&Path>) -> Result<Home, HomeError> {
        if let Some(p) = explicit {
            return Ok(Home::at(p));
        }
        if let Some(p) = std::env::var_os("MAILVAULT_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home::at(Path::new(&p)));
        }
        if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home::at(&Path::new(&p).join("mailvault")));
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .ok_or(HomeError::NoDefault)?;
        Ok(Home::at(&Path::new(&home).join(".local/share/mailvault")))
    }

    /// A home at exactly this path (made absolute so that paths stay valid after a
    /// server daemonizes or changes directory).
    pub fn at(path: &Path) -> Home {
        let root = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(path))
                .unwrap_or_else(|_| path.to_path_buf())
        };
        Home { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn conf_dir(&self) -> PathBuf {
        self.root.join("conf")
    }
    pub fn localconfig_path(&self) -> PathBuf {
        self.conf_dir().join("localconfig.conf")
    }
    pub fn admin_token_path(&self) -> PathBuf {
        self.conf_dir().join("admin.token")
    }
    pub fn db_dir(&self) -> PathBuf {
        self.root.join("db")
    }
    pub fn directory_db_path(&self) -> PathBuf {
        self.db_dir().join("directory.sqlite")
    }
    pub fn mailbox_db_dir(&self) -> PathBuf {
        self.db_dir().join("mbox")
    }
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    /// The search index of one mailbox (derived data: rebuilt when missing).
    pub fn mailbox_index_dir(&self, mailbox_id: u32) -> PathBuf {
        self.index_dir().join(mailbox_id.to_string())
    }
    pub fn redolog_dir(&self) -> PathBuf {
        self.root.join("redolog")
    }
    pub fn redo_archive_dir(&self) -> PathBuf {
        self.redolog_dir().join("archive")
    }
    pub fn backup_dir(&self) -> PathBuf {
        self.root.join("backup")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    /// True once `init` has run here.
    pub fn is_initialized(&self) -> bool {
        self.localconfig_path().is_file()
    }

    /// Creates the home's directories, a local config holding every key with its
    /// default, and the admin API token. Idempotent: an existing home keeps its
    /// configuration and token. Returns true if the home was created just now.
    pub fn init(&self) -> Result<bool, HomeError> {
        let fresh = !self.is_initialized();
        let create = |path: PathBuf| {
            create_dir_all_durable(&path).map_err(|source| HomeError::Create {
                path: path.clone(),
                source,
            })
        };
        create(self.root.clone())?;
        if fresh {
            // A directory made for the home beforehand (mkdir, a volume's mount
            // point) keeps the mode it was made with: the home is private.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                &self.root,
                std::fs::Permissions::from_mode(crate::durable::DIR_MODE),
            )
            .map_err(|source| HomeError::Create {
                path: self.root.clone(),
                source,
            })?;
        }
        for dir in [
            self.conf_dir(),
            self.db_dir(),
            self.mailbox_db_dir(),
            self.store_dir(),
            self.index_dir(),
            self.redolog_dir(),
            self.redo_archive_dir(),
            self.backup_dir(),
            self.log_dir(),
        ] {
            create(dir)?;
        }
        if !self.admin_token_path().is_file() {
            let token = random_token();
            write_atomic_mode(
                &self.admin_token_path(),
                format!("{token}\n").as_bytes(),
                0o600,
            )
            .map_err(|source| HomeError::Create {
                path: self.admin_token_path(),
                source,
            })?;
        }
        if fresh {
            LocalConfig::defaults().save(&self.localconfig_path())?;
        }
        Ok(fresh)
    }

    /// Initializes if needed, then loads the local configuration.
    pub fn open(&self) -> Result<LocalConfig, HomeError> {
        self.init()?;
        Ok(LocalConfig::load(&self.localconfig_path())?)
    }

    /// The admin API token (created by `init`).
    pub fn admin_token(&self) -> std::io::Result<String> {
        Ok(std::fs::read_to_string(self.admin_token_path())?
            .trim()
            .to_string())
    }
}

/// Files and directories in a home that group or others may read, write or
/// enter ([`Home::exposed`]).
#[derive(Debug, Clone, Default)]
pub struct Exposure {
    /// The first few exposed paths with their modes (permission bits).
    pub examples: Vec<(PathBuf, u32)>,
    /// How many exposed paths were found.
    pub count: u64,
    /// How many entries were looked at.
    pub scanned: u64,
    /// True when the scan stopped at its budget before seeing everything.
    pub truncated: bool,
}

impl Home {
    /// Walks the home (symlinks are not followed; at most `budget` entries) for
    /// anything with group or other permission bits: everything in a home holds
    /// mail, password hashes or secrets.
    pub fn exposed(&self, budget: u64) -> Exposure {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Exposure::default();
        let mut stack = vec![self.root.clone()];
        while let Some(path) = stack.pop() {
            if out.scanned >= budget {
                out.truncated = true;
                break;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue; // removed while we looked
            };
            out.scanned += 1;
            let mode = meta.permissions().mode() & 0o7777;
            if !meta.file_type().is_symlink() && mode & 0o077 != 0 {
                out.count += 1;
                if out.examples.len() < 5 {
                    out.examples.push((path.clone(), mode));
                }
            }
            if meta.is_dir()
                && let Ok(entries) = std::fs::read_dir(&path)
            {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
        out
    }
}

fn random_token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_layout_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(&dir.path().join("h"));
        assert!(home.init().unwrap());
        for d in [
            "conf",
            "db",
            "db/mbox",
            "store",
            "index",
            "redolog/archive",
            "backup",
            "log",
        ] {
            assert!(home.root().join(d).is_dir(), "{d}");
        }
        let token = home.admin_token().unwrap();
        assert_eq!(token.len(), 64);
        assert!(!home.init().unwrap());
        assert_eq!(
            home.admin_token().unwrap(),
            token,
            "re-init must keep the token"
        );
        let cfg = home.open().unwrap();
        assert_eq!(cfg.get("backup_archived_redolog_keep_time"), Some("3600"));
    }

    #[test]
    fn init_makes_a_private_home_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("h");
        // Made beforehand, open to everyone, as `mkdir` under umask 022 would.
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = Home::at(&root);
        home.init().unwrap();
        let exposed = home.exposed(10_000);
        assert_eq!(exposed.count, 0, "{:?}", exposed.examples);
        assert!(exposed.scanned > 8, "{exposed:?}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&home.localconfig_path()), 0o600);

        // A file someone opened up is found and named.
        let loose = home.log_dir().join("mailbox.log");
        std::fs::write(&loose, b"x").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = home.exposed(10_000);
        assert_eq!(exposed.count, 1);
        assert_eq!(exposed.examples, vec![(loose, 0o644)]);
        // The budget bounds the walk and says so.
        let partial = home.exposed(3);
        assert!(partial.truncated && partial.scanned == 3, "{partial:?}");
    }

    #[test]
    fn explicit_path_wins() {
        let h = Home::resolve(Some(Path::new("/tmp/x"))).unwrap();
        assert_eq!(h.root(), Path::new("/tmp/x"));
    }
}
