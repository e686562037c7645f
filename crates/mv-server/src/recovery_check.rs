//! The recovery lines of `mailvault check`: whether the redo chain a restore would
//! replay is whole (the target's logs from the oldest sequence an account's latest
//! full needs, then this home's archive up to its live log), and whether a full
//! backup was taken since the last restore or disaster recovery (a restored
//! mailbox's history starts at the restore; until a full holds it, a later restore
//! has to go back through the restore's own source).

use crate::Service;
use crate::check::CheckItem;
use mv_backup::{Catalog, SessionKind};
use mv_home::Home;
use mv_types::UtcMillis;

/// `log/last-restore`: when a restore last changed live accounts of this home.
fn marker(home: &Home) -> std::path::PathBuf {
    home.log_dir().join("last-restore")
}

/// Records that a restore changed live accounts now (written atomically; a failure
/// only costs the check its warning, never the restore).
pub fn note_restore(home: &Home, what: &str) {
    let path = marker(home);
    let text = format!("{}\n{what}\n", UtcMillis::now().0);
    let r = mv_home::durable::create_dir_all_durable(&home.log_dir())
        .and_then(|_| mv_home::durable::write_atomic_mode(&path, text.as_bytes(), 0o600));
    if let Err(e) = r {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

fn last_restore(home: &Home) -> Option<(UtcMillis, String)> {
    let text = std::fs::read_to_string(marker(home)).ok()?;
    let mut lines = text.lines();
    let at = lines.next()?.trim().parse().ok()?;
    Some((UtcMillis(at), lines.next().unwrap_or("").to_string()))
}

fn item(name: &str, ok: bool, detail: String) -> CheckItem {
    CheckItem {
        name: name.to_string(),
        ok,
        detail,
    }
}

/// The two lines, for the target `url` whose sessions are `catalog`.
pub fn items(service: &Service, url: &str, catalog: &Catalog) -> Vec<CheckItem> {
    let home = service.store().home();
    let mut out = Vec::new();
    // The oldest sequence any account's latest full needs.
    let accounts = service.directory().list_accounts(None).unwrap_or_default();
    let from = accounts
        .iter()
        .filter_map(|a| catalog.latest_full(&a.id).and_then(|(_, e)| e.redo_seq))
        .min();
    let mut seqs = catalog.stored_redo_sequences();
    let archived = mv_redo::list_archive(&home.redo_archive_dir()).unwrap_or_default();
    seqs.extend(archived.iter().map(|l| l.sequence));
    let live = service.store().redo().position().sequence;
    out.push(match from {
        None => item(
            "redo chain",
            true,
            format!("{url}: no full backup yet, nothing to chain"),
        ),
        Some(from) => match mv_backup::incr::chain_gap(from, live.checked_sub(1), &seqs) {
            None => item(
                "redo chain",
                true,
                format!("{url}: intact from sequence {from} through the live log {live}"),
            ),
            Some(gap) => item("redo chain", false, format!("{url}: real gap: {gap}")),
        },
    });
    if let Some((at, what)) = last_restore(home) {
        let newest_full = catalog
            .sessions()
            .filter(|s| s.kind() == SessionKind::Full && s.started >= at)
            .map(|s| s.label)
            .next_back();
        out.push(match newest_full {
            Some(l) => item(
                "full backup since the last restore",
                true,
                format!("{what} at {}; full {l} since", at.display_local()),
            ),
            None => item(
                "full backup since the last restore",
                false,
                format!(
                    "no full backup since a restore or disaster recovery ({what} at {}): \
                     run zmbackup -f -a all",
                    at.display_local()
                ),
            ),
        });
    }
    out
}
