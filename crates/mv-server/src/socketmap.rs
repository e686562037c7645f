//! The lookup tables Postfix asks through its socketmap protocol
//! (`mv-socketmap`), answered from the directory:
//!
//! | map | Postfix parameter | answer |
//! |---|---|---|
//! | `domain` | `virtual_mailbox_domains` | `OK <domain>` for a domain of this directory |
//! | `mailbox` | `virtual_mailbox_maps` | `OK <primary address>` for an account's address or alias, unless the account is closed |
//! | `alias` | `virtual_alias_maps` | an alias: its account's primary address; a distribution list: its members, nested lists expanded, comma-separated (see `Directory::expand_alias`) |
//!
//! Anything else is `NOTFOUND`; a directory error is `TEMP` (Postfix defers
//! and retries); an unknown map name is `PERM`.

use crate::Service;
use mv_socketmap::{Lookup, Reply};
use std::sync::Arc;

pub struct DirectoryLookup {
    service: Arc<Service>,
}

impl DirectoryLookup {
    pub fn new(service: Arc<Service>) -> DirectoryLookup {
        DirectoryLookup { service }
    }
}

/// Longest address (RFC 5321: 64 + 1 + 255); longer keys name nothing.
const MAX_ADDRESS: usize = 320;

impl Lookup for DirectoryLookup {
    fn lookup(&self, map: &str, key: &str) -> Reply {
        if key.len() > MAX_ADDRESS {
            return Reply::NotFound;
        }
        let d = self.service.directory();
        let answer = match map {
            "domain" => d
                .has_domain(key)
                .map(|found| found.then(|| key.trim().to_ascii_lowercase())),
            "mailbox" => d.mailbox_address(key),
            "alias" => d.expand_alias(key).map(|v| v.map(|list| list.join(","))),
            other => {
                return Reply::Perm(format!(
                    "unknown map {other:?}; use domain, mailbox or alias"
                ));
            }
        };
        let reply = match answer {
            Ok(Some(value)) => Reply::Ok(value),
            Ok(None) => Reply::NotFound,
            Err(e) => {
                tracing::warn!(map, key, %e, "socketmap lookup failed");
                Reply::Temp("directory lookup failed, try again later".into())
            }
        };
        tracing::debug!(map, key, ?reply, "socketmap lookup");
        reply
    }
}
