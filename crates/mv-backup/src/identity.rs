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
//! a restore replaces is kept beside it as `<name>.before-restore`. An object
//! store cannot keep a file to its owner, so there they are left out unless
//! asked (`BackupOptions::secrets`): the local config goes with each secret
//! value (the keys zmlocalconfig hides) replaced by a comment, and the token,
//! the TLS key and its certificate stay home. A restore keeps this server's
//! value of every secret the backup does not hold.

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

/// Puts the home's local config and identity files into the session being
/// built; without `secrets`, none of them (see the module docs).
pub(crate) fn back_up(home: &Home, sb: &mut SessionBuilder, secrets: bool) -> Result<()> {
    if let Ok(bytes) = std::fs::read(home.localconfig_path()) {
        if secrets {
            sb.put_private(LOCALCONFIG, &bytes)?;
        } else {
            sb.put_private(LOCALCONFIG, without_secrets(&bytes).as_bytes())?;
        }
    }
    if !secrets {
        return Ok(());
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

/// Whether a local config key holds a secret (what `zmlocalconfig` hides
/// without `-s`).
fn is_secret(key: &str) -> bool {
    mv_home::localconfig::key_info(key).is_some_and(|k| k.secret)
}

/// The local config text with every secret value replaced by a comment saying
/// it was left out.
fn without_secrets(bytes: &[u8]) -> String {
    let mut out = String::new();
    for line in String::from_utf8_lossy(bytes).lines() {
        let key = line
            .trim()
            .split_once('=')
            .filter(|_| !line.trim().starts_with('#'))
            .map(|(k, v)| (k.trim(), v.trim()));
        match key {
            Some((k, v)) if is_secret(k) && !v.is_empty() => {
                out.push_str(&format!(
                    "# {k}: a secret, left out of this backup (a restore keeps the server's own)\n"
                ));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The local config a restore writes: the backup's `bytes` (checked to parse;
/// `shown` names them in errors), with this server's value of each secret the
/// backup does not hold (left out of an object-store backup).
pub(crate) fn restored_localconfig(bytes: &[u8], shown: &str, home: &Home) -> Result<Vec<u8>> {
    let mut restored =
        mv_home::LocalConfig::parse(&String::from_utf8_lossy(bytes), std::path::Path::new(shown))
            .map_err(|e| BackupError::corrupt(shown, e.to_string()))?;
    let Ok(current) = mv_home::LocalConfig::load(&home.localconfig_path()) else {
        return Ok(bytes.to_vec());
    };
    let mut kept = false;
    for (k, v) in current.iter() {
        if is_secret(k) && !v.is_empty() && restored.get(k).is_none_or(str::is_empty) {
            restored
                .set(k, v)
                .map_err(|e| BackupError::corrupt(shown, e.to_string()))?;
            kept = true;
        }
    }
    Ok(if kept {
        restored.render().into_bytes()
    } else {
        bytes.to_vec()
    })
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
        let bytes = restored_localconfig(&bytes, &shown, home)?;
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
