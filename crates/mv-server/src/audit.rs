//! Audit lines for requests (target `audit`): every change an administrator or a
//! tool makes through [`Service::execute`](crate::Service::execute) — provisioning,
//! mailbox changes, backup deletes, restores — is logged when it starts and when
//! it ends, with its result. Reads are logged at debug. Passwords and message
//! bodies never reach the log.

use crate::{Request, ServiceError};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::Instant;

/// Ops that change nothing (logged at debug only).
const READS: &[&str] = &[
    "get_account",
    "get_all_accounts",
    "get_domain",
    "get_all_domains",
    "get_cos",
    "get_all_cos",
    "get_mailbox_info",
    "get_all_config",
    "get_account_loggers",
    "get_server",
    "get_all_servers",
    "get_distribution_list",
    "get_all_distribution_lists",
    "search",
    "get_all_folders",
    "get_message",
    "get_all_tags",
    "export_calendar",
    "export_contacts",
    "backup_status",
    "backup_query",
    "backup_search",
    "backup_verify",
    "backup_reports",
    "disk_status",
    "check",
    "ping",
];

/// Fields left out of the line: secrets and payloads.
const HIDDEN: &[&str] = &[
    "password", "message", "data", "content", "input", "ics", "vcf",
];

/// One request being audited.
pub struct Audit {
    op: String,
    what: String,
    change: bool,
    started: Instant,
}

/// A request's fields as it travels (its JSON), each kept as the JSON text it
/// was written as: read by name, each as the type the audit needs.
type Fields = BTreeMap<String, Box<RawValue>>;

/// One entry of a batch of accounts, as far as the audit reads it.
#[derive(Deserialize)]
struct AccountBrief {
    email: String,
}

/// Logs the start of `req` and returns what [`Audit::end`] needs.
pub fn begin(req: &Request) -> Audit {
    let op = req.op().to_string();
    let fields: Fields = serde_json::to_string(req)
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let what = describe(&fields);
    let change = !READS.contains(&op.as_str());
    if let Some(account) = fields.get("account").and_then(|a| text(a)) {
        crate::account_log::debug(
            &account,
            crate::account_log::Category::Mailbox,
            format_args!("{op}: {what}"),
        );
    }
    if change {
        tracing::info!(target: "audit", op = %op, "{op} started: {what}");
    } else {
        tracing::debug!(target: "audit", op = %op, "{op}: {what}");
    }
    Audit {
        op,
        what,
        change,
        started: Instant::now(),
    }
}

impl Audit {
    /// Logs how the request ended. A backup's end is logged by its report
    /// (labels, bytes), once for the synchronous and the background runs alike.
    pub fn end(self, result: &Result<crate::Response, ServiceError>) {
        if self.op == "restore" {
            let ok = matches!(result, Ok(crate::Response::Restore(r)) if r.failures.is_empty());
            let counter = if ok {
                &crate::metrics::RESTORES_OK
            } else {
                &crate::metrics::RESTORES_FAILED
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if !self.change || self.op == "backup" {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let (op, what) = (&self.op, &self.what);
        match result {
            Ok(v) => tracing::info!(
                target: "audit",
                op = %op,
                "{op} finished in {secs:.1} s: {what}; {}",
                summary(v)
            ),
            Err(e) => tracing::warn!(
                target: "audit",
                op = %op,
                "{op} failed after {secs:.1} s: {what}; {e}"
            ),
        }
    }
}

/// A JSON string's text; `None` for anything else.
fn text(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// `key=value` for each field of the request but the op, secrets and payloads
/// left out, long values cut.
fn describe(fields: &Fields) -> String {
    let mut parts = Vec::new();
    for (k, raw) in fields {
        if k == "op" || HIDDEN.contains(&k.as_str()) || raw.get() == "null" {
            continue;
        }
        let text = match k.as_str() {
            "attrs" => redact_attrs(raw),
            // A batch of accounts: how many and their addresses, never their
            // passwords or attributes.
            "accounts" => match serde_json::from_str::<Vec<AccountBrief>>(raw.get()) {
                Ok(list) => {
                    let emails: Vec<&str> = list.iter().map(|a| a.email.as_str()).collect();
                    format!("{} ({})", list.len(), emails.join(", "))
                }
                Err(_) => text(raw).unwrap_or_else(|| raw.get().to_string()),
            },
            _ => text(raw).unwrap_or_else(|| raw.get().to_string()),
        };
        let text: String = text.chars().take(160).collect();
        parts.push(format!("{k}={text}"));
    }
    parts.join(" ")
}

/// An attribute list (`name value name value ...`, names maybe `+name` or
/// `-name`) with the values of password attributes hidden.
fn redact_attrs(raw: &RawValue) -> String {
    let Ok(items) = serde_json::from_str::<Vec<String>>(raw.get()) else {
        // Not a list of words: nothing of it is shown.
        return "[***]".to_string();
    };
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        let name = &pair[0];
        let value = match pair.get(1) {
            _ if name.to_ascii_lowercase().contains("password") => "***",
            Some(v) => v.as_str(),
            None => "",
        };
        out.push(format!("{name}={value}"));
    }
    format!("[{}]", out.join(", "))
}

/// A few words on a result: counts of restored and failed accounts, or ok.
fn summary(r: &crate::Response) -> String {
    match r {
        crate::Response::Restore(r) => format!(
            "{} accounts restored, {} failed",
            r.accounts.len(),
            r.failures.len()
        ),
        _ => "ok".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::AccountSpec;

    fn fields(req: &Request) -> Fields {
        serde_json::from_str(&serde_json::to_string(req).unwrap()).unwrap()
    }

    #[test]
    fn passwords_and_bodies_stay_out() {
        let req = Request::CreateAccount {
            email: "a@d.test".into(),
            password: Some("hunter2".into()),
            attrs: ["userPassword", "x1", "displayName", "A"]
                .map(String::from)
                .to_vec(),
        };
        let d = describe(&fields(&req));
        assert_eq!(d, "attrs=[userPassword=***, displayName=A] email=a@d.test");
        let req = Request::AddMessage {
            account: "a@d.test".into(),
            folder: "/Inbox".into(),
            data: "U2VjcmV0IG1haWw=".into(),
            flags: "u".into(),
            tags: vec![],
            received_ms: None,
        };
        let d = describe(&fields(&req));
        assert_eq!(d, r#"account=a@d.test flags=u folder=/Inbox tags=[]"#);
    }

    #[test]
    fn a_batch_of_accounts_shows_addresses_only() {
        let req = Request::CreateAccounts {
            accounts: vec![
                AccountSpec {
                    email: "a@d.test".into(),
                    password: Some("hunter2".into()),
                    attrs: vec![],
                },
                AccountSpec {
                    email: "b@d.test".into(),
                    password: None,
                    attrs: vec!["userPassword".into(), "x1".into()],
                },
            ],
        };
        let d = describe(&fields(&req));
        assert_eq!(d, "accounts=2 (a@d.test, b@d.test)");
    }
}
