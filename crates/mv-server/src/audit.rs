//! Audit lines for requests (target `audit`): every change an administrator or a
//! tool makes through [`Service::execute`](crate::Service::execute) — provisioning,
//! mailbox changes, backup deletes, restores — is logged when it starts and when
//! it ends, with its result. Reads are logged at debug. Passwords and message
//! bodies never reach the log.

use crate::{Request, ServiceError};
use serde_json::Value;
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

/// Logs the start of `req` and returns what [`Audit::end`] needs.
pub fn begin(req: &Request) -> Audit {
    let value = serde_json::to_value(req).unwrap_or(Value::Null);
    let op = value["op"].as_str().unwrap_or("unknown").to_string();
    let what = describe(&value);
    let change = !READS.contains(&op.as_str());
    if let Some(account) = value["account"].as_str() {
        crate::account_log::debug(
            account,
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

/// `key=value` for each field of the request but the op, secrets and payloads
/// left out, long values cut.
fn describe(v: &Value) -> String {
    let Some(obj) = v.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (k, val) in obj {
        if k == "op" || HIDDEN.contains(&k.as_str()) || val.is_null() {
            continue;
        }
        let text = match (k.as_str(), val) {
            ("attrs", _) => redact_attrs(val),
            // A batch of accounts: how many and their addresses, never their
            // passwords or attributes.
            ("accounts", Value::Array(list)) => {
                let emails: Vec<&str> = list.iter().filter_map(|a| a["email"].as_str()).collect();
                format!("{} ({})", list.len(), emails.join(", "))
            }
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        let text: String = text.chars().take(160).collect();
        parts.push(format!("{k}={text}"));
    }
    parts.join(" ")
}

/// Attribute lists as `[name, value, ...]` pairs or a map; password values hidden.
fn redact_attrs(v: &Value) -> String {
    let hide = |name: &str| name.to_ascii_lowercase().contains("password");
    match v {
        Value::Array(items) => {
            let mut out = Vec::new();
            let mut it = items.iter();
            while let Some(name) = it.next() {
                let name_s = name
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(name.to_string());
                match name {
                    Value::Array(pair) => {
                        let n = pair.first().and_then(Value::as_str).unwrap_or("");
                        let val = if hide(n) {
                            "***".to_string()
                        } else {
                            pair.get(1).map(value_text).unwrap_or_default()
                        };
                        out.push(format!("{n}={val}"));
                    }
                    _ => {
                        let val = it.next().map(value_text).unwrap_or_default();
                        let val = if hide(&name_s) {
                            "***".to_string()
                        } else {
                            val
                        };
                        out.push(format!("{name_s}={val}"));
                    }
                }
            }
            format!("[{}]", out.join(", "))
        }
        Value::Object(map) => {
            let out: Vec<String> = map
                .iter()
                .map(|(k, val)| {
                    let val = if hide(k) {
                        "***".to_string()
                    } else {
                        value_text(val)
                    };
                    format!("{k}={val}")
                })
                .collect();
            format!("[{}]", out.join(", "))
        }
        other => value_text(other),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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

    #[test]
    fn passwords_and_bodies_stay_out() {
        let v = serde_json::json!({
            "op": "create_account",
            "email": "a@d.test",
            "password": "hunter2",
            "attrs": ["userPassword", "x1", "displayName", "A"],
        });
        let d = describe(&v);
        assert!(d.contains("email=a@d.test"), "{d}");
        assert!(d.contains("displayName=A"), "{d}");
        assert!(!d.contains("hunter2") && !d.contains("x1"), "{d}");
    }

    #[test]
    fn a_batch_of_accounts_shows_addresses_only() {
        let v = serde_json::json!({
            "op": "create_accounts",
            "accounts": [
                {"email": "a@d.test", "password": "hunter2", "attrs": []},
                {"email": "b@d.test", "password": null, "attrs": ["userPassword", "x1"]},
            ],
        });
        let d = describe(&v);
        assert!(d.contains("accounts=2 (a@d.test, b@d.test)"), "{d}");
        assert!(!d.contains("hunter2") && !d.contains("x1"), "{d}");
    }
}
