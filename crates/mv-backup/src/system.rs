//! `zmrestore -sys`: the global and server configuration and the local config,
//! from the `sys/` of a session (every full and incremental session holds one).
//!
//! The explicit global configuration becomes the backup's (attributes set since
//! are removed, so defaults apply again); the backup's server attributes go to
//! this server's entry, whatever its name was on the backed-up host (disaster
//! recovery onto a new machine). The local config file is replaced atomically,
//! and the one it replaces is kept as `localconfig.conf.before-restore`.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::run::Source;
use crate::target::Target;
use crate::xml::{Element, XmlFile};
use mv_directory::{Attrs, Modification};

/// What `-sys` restored.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SystemRestoreReport {
    pub label: String,
    pub global_attrs: usize,
    pub server_attrs: usize,
    pub localconfig: bool,
}

/// The modifications that make `current` equal `wanted`.
fn mods_to(current: &Attrs, wanted: &[(String, Vec<String>)]) -> Vec<Modification> {
    let mut mods: Vec<Modification> = wanted
        .iter()
        .map(|(name, values)| Modification::Replace {
            name: name.clone(),
            values: values.clone(),
        })
        .collect();
    for name in current.keys() {
        if !wanted.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            mods.push(Modification::Replace {
                name: name.clone(),
                values: Vec::new(),
            });
        }
    }
    mods
}

/// `<attr name value/>` children grouped by name, in document order.
fn attrs_of(f: &XmlFile, el: &Element) -> Result<Vec<(String, Vec<String>)>> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for a in el.children("attr") {
        let name = f.req(a, "name")?.to_string();
        let value = f.req(a, "value")?.to_string();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(value),
            None => out.push((name, vec![value])),
        }
    }
    Ok(out)
}

/// Restores the system configuration from session `label`, or from the newest
/// valid session.
pub fn restore_system(
    source: &Source,
    target: &dyn Target,
    label: Option<Label>,
) -> Result<SystemRestoreReport> {
    let catalog = Catalog::load(target)?;
    let session = match label {
        Some(l) => catalog
            .sessions()
            .find(|s| s.label == l)
            .ok_or_else(|| BackupError::Invalid(format!("{l}: no such valid session")))?,
        None => catalog
            .sessions()
            .last()
            .ok_or_else(|| BackupError::Invalid(format!("no valid session in {}", target.url())))?,
    };
    let label = session.label;
    let rel = format!("sessions/{label}/sys/config.xml");
    let shown = format!("{}/{rel}", target.url());
    let f = XmlFile { path: &shown };
    let root = f.parse(&target.get(&rel)?)?;
    f.expect_root(&root, "config")?;
    let global = match root.child("global") {
        Some(g) => attrs_of(&f, g)?,
        None => Vec::new(),
    };
    let server = match root.child("server") {
        Some(s) => attrs_of(&f, s)?,
        None => Vec::new(),
    };
    let mut report = SystemRestoreReport {
        label: label.to_string(),
        global_attrs: global.len(),
        server_attrs: server.len(),
        localconfig: false,
    };
    {
        let dir = source.dir();
        let current = dir.global_explicit()?;
        dir.modify_global(&mods_to(&current, &global))?;
        let here = dir.ensure_server(source.server_name)?;
        dir.modify_server(&here.name, &mods_to(&here.attrs, &server))?;
    }
    let lc_rel = format!("sessions/{label}/sys/localconfig.conf");
    match target.get(&lc_rel) {
        Ok(bytes) => {
            let path = source.store.home().localconfig_path();
            let shown = format!("{}/{lc_rel}", target.url());
            let bytes = crate::identity::restored_localconfig(&bytes, &shown, source.store.home())?;
            if let Ok(old) = std::fs::read(&path) {
                let keep = path.with_extension("conf.before-restore");
                mv_home::durable::write_atomic(&keep, &old)
                    .map_err(BackupError::io(keep.display()))?;
            }
            mv_home::durable::write_atomic(&path, &bytes)
                .map_err(BackupError::io(path.display()))?;
            report.localconfig = true;
        }
        Err(BackupError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(report)
}
