//! The server's identity in every session's `sys/`: its local config
//! (`sys/localconfig.conf`: listener ports, settings) and, in `sys/conf/`, the
//! IMAP TLS certificate and key and the admin API token. A server rebuilt from
//! the target (`zmrestoreldap` onto a fresh home) gets them back, so clients see
//! the same certificate, scripts keep their token and the listeners come back on
//! their ports.
//!
//! They are secrets: a filesystem target writes them readable by their owner only
//! (0600, in a 0700 directory, [`crate::Target::session_put_private`]), as the
//! home keeps them; restored files get the same modes in the home, and each file
//! a restore replaces is kept beside it as `<name>.before-restore`.

use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::run::SessionBuilder;
use crate::target::Target;
use mv_home::Home;

/// The session path of the local config (also what `zmrestore -sys` restores).
pub const LOCALCONFIG: &str = "sys/localconfig.conf";
/// `conf/` files carried in `sys/conf/`, with the mode each gets in the home.
pub const CONF_FILES: [(&str, u32); 3] = [
    ("imap.crt", 0o644),
    ("imap.key", 0o600),
    ("admin.token", 0o600),
];

/// Puts the home's local config and identity files into the session being built.
pub(crate) fn back_up(home: &Home, sb: &mut SessionBuilder) -> Result<()> {
    if let Ok(bytes) = std::fs::read(home.localconfig_path()) {
        sb.put_private(LOCALCONFIG, &bytes)?;
    }
    for (name, _) in CONF_FILES {
        let path = home.conf_dir().join(name);
        match std::fs::read(&path) {
            Ok(bytes) => sb.put_private(&format!("sys/conf/{name}"), &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io(path.display())(e)),
        }
    }
    Ok(())
}

/// What [`restore`] put back into the home's `conf/`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IdentityRestoreReport {
    pub label: String,
    /// Home-relative paths written (`conf/localconfig.conf`, `conf/imap.crt`, ...).
    pub restored: Vec<String>,
}

/// Restores the local config and identity files of session `label` into `home`.
/// The certificate and its key go together or not at all; the local config must
/// parse. Everything is read and checked before anything is written.
pub fn restore(target: &dyn Target, label: &Label, home: &Home) -> Result<IdentityRestoreReport> {
    let get = |rel: &str| -> Result<Option<Vec<u8>>> {
        match target.get(&format!("sessions/{label}/{rel}")) {
            Ok(b) => Ok(Some(b)),
            Err(BackupError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let mut files: Vec<(std::path::PathBuf, Vec<u8>, u32)> = Vec::new();
    if let Some(bytes) = get(LOCALCONFIG)? {
        let shown = format!("{}/sessions/{label}/{LOCALCONFIG}", target.url());
        mv_home::LocalConfig::parse(
            &String::from_utf8_lossy(&bytes),
            std::path::Path::new(&shown),
        )
        .map_err(|e| BackupError::corrupt(&shown, e.to_string()))?;
        files.push((home.localconfig_path(), bytes, 0o600));
    }
    let mut pair = 0;
    for (name, mode) in CONF_FILES {
        if let Some(bytes) = get(&format!("sys/conf/{name}"))? {
            if name.starts_with("imap.") {
                pair += 1;
            }
            files.push((home.conf_dir().join(name), bytes, mode));
        }
    }
    if pair == 1 {
        return Err(BackupError::corrupt(
            format!("{}/sessions/{label}/sys/conf", target.url()),
            "holds only one of imap.crt and imap.key; restore with --skipConf and \
             install a certificate and its key by hand",
        ));
    }
    let mut report = IdentityRestoreReport {
        label: label.to_string(),
        restored: Vec::new(),
    };
    for (path, bytes, mode) in files {
        if let Ok(old) = std::fs::read(&path)
            && old != bytes
        {
            let mut keep = path.clone().into_os_string();
            keep.push(".before-restore");
            let keep = std::path::PathBuf::from(keep);
            mv_home::durable::write_atomic_mode(&keep, &old, 0o600)
                .map_err(BackupError::io(keep.display()))?;
        }
        mv_home::durable::write_atomic_mode(&path, &bytes, mode)
            .map_err(BackupError::io(path.display()))?;
        let rel = path
            .strip_prefix(home.root())
            .unwrap_or(&path)
            .display()
            .to_string();
        report.restored.push(rel);
    }
    Ok(report)
}
