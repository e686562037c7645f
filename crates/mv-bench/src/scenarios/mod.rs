//! The scenarios, by name.

pub mod backup;
pub mod imap;
pub mod imap_stress;
pub mod items;
pub mod live;
pub mod lmtp;
pub mod redo;
pub mod scale;
pub mod scale_backup;

use crate::scenario::Scenario;

/// Every scenario, in the order they run and appear in BENCHMARKS.md.
pub fn registry() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(lmtp::LmtpScenario::default()),
        Box::new(redo::RedoScenario::default()),
        Box::new(backup::BackupScenario::default()),
        Box::new(imap::ImapScenario::default()),
        Box::new(imap_stress::ImapStressScenario::default()),
        Box::new(scale::ScaleScenario::default()),
        Box::new(items::ItemsScenario::default()),
        Box::new(live::LiveScenario::default()),
    ]
}

/// The scenarios named in `names` (all of them for an empty list), or an error
/// naming the unknown ones and the known ones.
pub fn select(names: &[String]) -> anyhow::Result<Vec<Box<dyn Scenario>>> {
    let all = registry();
    if names.is_empty() {
        return Ok(all);
    }
    let known: Vec<&str> = all.iter().map(|s| s.name()).collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !known.contains(&n.as_str()))
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "unknown scenario(s) {unknown:?}; known: {}",
            known.join(", ")
        );
    }
    Ok(all
        .into_iter()
        .filter(|s| names.iter().any(|n| n == s.name()))
        .collect())
}
