//! `<target>/accounts.xml`: every account backed up in the target, with its
//! zimbraId and its latest full backup. Rewritten atomically after each session and
//! always rebuildable from the sessions ([`rebuild_accounts_xml`]): it is a
//! convenience, never the only record (the original's single point of failure).
//!
//! ```xml
//! <accounts formatVersion="1" updated="1401955262144">
//!   <account email="u@d" zimbraId="..." latestFull="full-20140605.080023.296"
//!            formerEmails="old@d"/>
//! </accounts>
//! ```
//!
//! An account is its zimbraId: `email` is the address its newest session (full or
//! incremental) recorded, `formerEmails` (comma-separated, oldest first, only when
//! renamed) the addresses older sessions recorded.

use crate::catalog::Catalog;
use crate::error::Result;
use crate::label::SessionKind;
use crate::session::{AccountState, FORMAT_VERSION};
use crate::target::Target;
use crate::xml::{XmlFile, XmlWriter};
use mv_types::UtcMillis;
use std::collections::BTreeMap;

pub const PATH: &str = "accounts.xml";

/// One line of accounts.xml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountRecord {
    pub email: String,
    pub zimbra_id: String,
    pub latest_full: String,
    /// Addresses the account had in older sessions (renames), oldest first.
    pub former_emails: Vec<String>,
}

/// What accounts.xml should say, derived from the sessions.
pub fn derive(catalog: &Catalog) -> Vec<AccountRecord> {
    let mut by_id: BTreeMap<String, AccountRecord> = BTreeMap::new();
    for s in catalog.sessions() {
        let full = s.kind() == SessionKind::Full;
        for a in s
            .accounts
            .iter()
            .filter(|a| a.state == AccountState::Completed)
        {
            let r = by_id
                .entry(a.zimbra_id.clone())
                .or_insert_with(|| AccountRecord {
                    email: a.email.clone(),
                    zimbra_id: a.zimbra_id.clone(),
                    latest_full: String::new(),
                    former_emails: Vec::new(),
                });
            if !r.email.eq_ignore_ascii_case(&a.email) {
                let old = std::mem::replace(&mut r.email, a.email.clone());
                r.former_emails
                    .retain(|e| !e.eq_ignore_ascii_case(&a.email));
                if !r.former_emails.contains(&old) {
                    r.former_emails.push(old);
                }
            }
            if full {
                r.latest_full = s.label.to_string();
            }
        }
    }
    let mut v: Vec<AccountRecord> = by_id
        .into_values()
        .filter(|r| !r.latest_full.is_empty())
        .collect();
    v.sort_by(|a, b| a.email.cmp(&b.email));
    v
}

pub fn encode(records: &[AccountRecord], updated: UtcMillis) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.open(
        "accounts",
        &[
            ("formatVersion", FORMAT_VERSION.to_string()),
            ("updated", updated.0.to_string()),
        ],
    );
    for r in records {
        let mut attrs = vec![
            ("email", r.email.clone()),
            ("zimbraId", r.zimbra_id.clone()),
            ("latestFull", r.latest_full.clone()),
        ];
        if !r.former_emails.is_empty() {
            attrs.push(("formerEmails", r.former_emails.join(",")));
        }
        w.leaf("account", &attrs);
    }
    w.finish()
}

pub fn parse(path: &str, bytes: &[u8]) -> Result<Vec<AccountRecord>> {
    let f = XmlFile { path };
    let root = f.parse(bytes)?;
    f.expect_root(&root, "accounts")?;
    root.children("account")
        .map(|a| {
            Ok(AccountRecord {
                email: f.req(a, "email")?.to_string(),
                zimbra_id: f.req(a, "zimbraId")?.to_string(),
                latest_full: f.req(a, "latestFull")?.to_string(),
                former_emails: a
                    .attr("formerEmails")
                    .unwrap_or("")
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// Rewrites accounts.xml from the target's sessions (atomically).
pub fn rebuild_accounts_xml(target: &dyn Target, now: UtcMillis) -> Result<Vec<AccountRecord>> {
    write_accounts_xml(target, &Catalog::load(target)?, now)
}

/// Rewrites accounts.xml from `catalog`, the target's sessions as they are.
pub(crate) fn write_accounts_xml(
    target: &dyn Target,
    catalog: &Catalog,
    now: UtcMillis,
) -> Result<Vec<AccountRecord>> {
    let records = derive(catalog);
    target.put(PATH, &encode(&records, now))?;
    Ok(records)
}

/// Reads accounts.xml, rebuilding it from the sessions if it is missing or damaged.
pub fn read_or_rebuild(target: &dyn Target, now: UtcMillis) -> Result<Vec<AccountRecord>> {
    match target
        .get(PATH)
        .and_then(|b| parse(&format!("{}/{PATH}", target.url()), &b))
    {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::warn!("{e}; rebuilding accounts.xml from the sessions");
            rebuild_accounts_xml(target, now)
        }
    }
}
