//! Global configuration (`zmprov gacf/mcf`) and server configuration (`zmprov
//! gs/ms`): multi-valued attributes with Zimbra's inheritance — a value set on the
//! server overrides the global one, which overrides the built-in default.
//!
//! Only explicitly set values are stored (and exported to LDIF); defaults live in
//! the code, so an unset attribute follows the default of the running version.
//! Known attributes are validated and normalized on every change (the seed's users
//! lost backups to silently mistyped settings); unknown names are refused.

use crate::attrs::{self, Attrs, Modification};
use crate::error::{DirectoryError, Result};
use crate::{Directory, address, new_id};
use rusqlite::{Connection, OptionalExtension, params};

/// The owner key of global attributes in the attrs table.
pub(crate) const GLOBAL: &str = "global";

/// How a known attribute's values are checked and spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Any non-empty text.
    Text,
    /// A non-negative integer at least `min`.
    Integer { min: u64 },
    /// `TRUE` / `FALSE` (any case in input).
    Bool,
    /// A duration: digits and an optional unit d, h, m, s or ms (`1d`, `30m`).
    Duration,
    /// One of the listed spellings (any case in input).
    Enum(&'static [&'static str]),
    /// A TCP port, 1–65535.
    Port,
    /// A size: digits with an optional unit B, KB, MB, GB, TB, or a percentage.
    Size,
    /// An email address.
    Email,
}

/// A known configuration attribute.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    pub name: &'static str,
    pub syntax: Syntax,
    pub multi: bool,
    /// Values when neither the server nor the global config sets it.
    pub default: &'static [&'static str],
}

const fn spec(
    name: &'static str,
    syntax: Syntax,
    multi: bool,
    default: &'static [&'static str],
) -> AttrSpec {
    AttrSpec {
        name,
        syntax,
        multi,
        default,
    }
}

/// Every configuration attribute mailvault knows, with its default.
pub const KNOWN: &[AttrSpec] = &[
    // Empty: the home's backup/ directory.
    spec("zimbraBackupTarget", Syntax::Text, false, &[]),
    spec(
        "zimbraBackupMode",
        Syntax::Enum(&["Standard", "Auto-Grouped"]),
        false,
        &["Standard"],
    ),
    spec(
        "zimbraBackupAutoGroupedInterval",
        Syntax::Duration,
        false,
        &["1d"],
    ),
    spec(
        "zimbraBackupAutoGroupedNumGroups",
        Syntax::Integer { min: 1 },
        false,
        &["7"],
    ),
    spec(
        "zimbraBackupAutoGroupedThrottled",
        Syntax::Bool,
        false,
        &["FALSE"],
    ),
    spec(
        "zimbraBackupReportEmailRecipients",
        Syntax::Email,
        true,
        &[],
    ),
    spec("zimbraBackupReportEmailSender", Syntax::Email, false, &[]),
    spec(
        "zimbraBackupReportEmailSubjectPrefix",
        Syntax::Text,
        false,
        &["ZCS Backup Report"],
    ),
    spec("zimbraBackupMinFreeSpace", Syntax::Size, false, &["0"]),
    // Schedule lines as zmschedulebackup prints them (`f 0 1 * * 6 -a all`).
    spec("zimbraBackupSchedule", Syntax::Text, true, &[]),
    // Live DR: the server ships its redo log into zimbraBackupTarget continuously.
    spec(
        "zimbraBackupContinuousEnabled",
        Syntax::Bool,
        false,
        &["FALSE"],
    ),
    spec(
        "zimbraBackupContinuousIntervalSeconds",
        Syntax::Integer { min: 1 },
        false,
        &["2"],
    ),
    spec(
        "zimbraBackupContinuousMaxLagSeconds",
        Syntax::Integer { min: 1 },
        false,
        &["60"],
    ),
    spec("zimbraRedoLogEnabled", Syntax::Bool, false, &["TRUE"]),
    spec(
        "zimbraRedoLogLogPath",
        Syntax::Text,
        false,
        &["redolog/redo.log"],
    ),
    spec(
        "zimbraRedoLogArchiveDir",
        Syntax::Text,
        false,
        &["redolog/archive"],
    ),
    spec(
        "zimbraRedoLogRolloverFileSizeKB",
        Syntax::Integer { min: 1 },
        false,
        &["102400"],
    ),
    // Minutes; 0 lets a log roll over as soon as it is large enough.
    spec(
        "zimbraRedoLogRolloverMinFileAge",
        Syntax::Integer { min: 0 },
        false,
        &["60"],
    ),
    spec(
        "zimbraRedoLogDeleteOnRollover",
        Syntax::Bool,
        false,
        &["FALSE"],
    ),
    spec(
        "zimbraRedoLogFsyncIntervalMS",
        Syntax::Integer { min: 0 },
        false,
        &["10"],
    ),
    spec("zimbraSmtpHostname", Syntax::Text, false, &["localhost"]),
    spec("zimbraSmtpPort", Syntax::Port, false, &["25"]),
];

/// The spec of a known attribute (case-insensitive).
pub fn known(name: &str) -> Option<&'static AttrSpec> {
    KNOWN.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// Every known attribute with its default values.
pub fn defaults() -> Attrs {
    KNOWN
        .iter()
        .filter(|s| !s.default.is_empty())
        .map(|s| {
            (
                s.name.to_string(),
                s.default.iter().map(|v| v.to_string()).collect(),
            )
        })
        .collect()
}

/// Milliseconds of a `Syntax::Duration` value (`1d`, `12h`, `30m`, `45s`, `500ms`;
/// no unit: seconds), `None` if it is not one.
pub fn duration_ms(value: &str) -> Option<u64> {
    let lower = value.trim().to_ascii_lowercase();
    let unit_at = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (n, unit) = lower.split_at(unit_at);
    if n.is_empty() {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    let per = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" | "" => 1000,
        "ms" => 1,
        _ => return None,
    };
    n.checked_mul(per)
}

/// Checks `value` against `syntax` and returns its canonical spelling.
pub fn normalize_value(syntax: Syntax, name: &str, value: &str) -> Result<String> {
    let v = value.trim();
    let bad = |reason: String| DirectoryError::InvalidAttributeValue {
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match syntax {
        Syntax::Text if v.is_empty() => Err(bad("expected a non-empty value".into())),
        Syntax::Text => Ok(value.to_string()),
        Syntax::Integer { min } => match v.parse::<u64>() {
            Ok(n) if digits(v) && n >= min => Ok(n.to_string()),
            _ => Err(bad(format!("expected an integer of at least {min}"))),
        },
        Syntax::Bool => match v.to_ascii_uppercase().as_str() {
            "TRUE" => Ok("TRUE".into()),
            "FALSE" => Ok("FALSE".into()),
            _ => Err(bad("expected TRUE or FALSE".into())),
        },
        Syntax::Duration => {
            let lower = v.to_ascii_lowercase();
            let unit_at = lower
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(lower.len());
            let (n, unit) = lower.split_at(unit_at);
            if digits(n)
                && n.parse::<u64>().is_ok()
                && ["", "d", "h", "m", "s", "ms"].contains(&unit)
            {
                Ok(lower)
            } else {
                Err(bad(
                    "expected a duration such as 1d, 12h, 30m, 45s or 500ms".into(),
                ))
            }
        }
        Syntax::Enum(choices) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(v))
            .map(|c| c.to_string())
            .ok_or_else(|| bad(format!("expected one of {}", choices.join(", ")))),
        Syntax::Port => match v.parse::<u16>() {
            Ok(p) if p > 0 && digits(v) => Ok(p.to_string()),
            _ => Err(bad("expected a port number from 1 to 65535".into())),
        },
        Syntax::Size => {
            let upper = v.to_ascii_uppercase();
            let unit_at = upper
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(upper.len());
            let (n, unit) = upper.split_at(unit_at);
            let ok = digits(n)
                && match unit {
                    "" | "B" | "KB" | "MB" | "GB" | "TB" => n.parse::<u64>().is_ok(),
                    "%" => n.parse::<u64>().is_ok_and(|p| p <= 100),
                    _ => false,
                };
            if ok {
                Ok(upper)
            } else {
                Err(bad(
                    "expected a size such as 0, 500MB, 10GB or a percentage such as 25%".into(),
                ))
            }
        }
        Syntax::Email => {
            address::normalize_address(v).map_err(|_| bad("expected an email address".into()))
        }
    }
}

/// Validates (and canonicalizes) the value of a known configuration attribute.
fn normalize_config(name: &str, value: &str) -> Result<String> {
    let spec =
        known(name).ok_or_else(|| DirectoryError::UnknownConfigAttribute(name.to_string()))?;
    normalize_value(spec.syntax, spec.name, value)
}

/// Applies modifications to explicit config values, refusing unknown attributes and
/// several values for a single-valued one. Names take their canonical spelling.
fn apply_config_mods(explicit: &mut Attrs, mods: &[Modification]) -> Result<()> {
    for m in mods {
        let spec = known(m.name())
            .ok_or_else(|| DirectoryError::UnknownConfigAttribute(m.name().to_string()))?;
        let canonical = match m {
            Modification::Replace { values, .. } => {
                Modification::replace(spec.name, values.clone())
            }
            Modification::Add { value, .. } => Modification::add(spec.name, value.clone()),
            Modification::Remove { value, .. } => Modification::remove(spec.name, value.clone()),
        };
        attrs::apply(explicit, &canonical, &normalize_config)?;
        let count = attrs::get(explicit, spec.name).len();
        if !spec.multi && count > 1 {
            return Err(DirectoryError::SingleValued {
                name: spec.name.to_string(),
                count,
            });
        }
    }
    Ok(())
}

/// A server entry: its explicitly set attributes (see `Directory::server_config`
/// for the effective ones).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Server {
    /// zimbraId (UUID).
    pub id: String,
    /// Host name, lowercase.
    pub name: String,
    pub attrs: Attrs,
}

/// This host's name for its server entry: the kernel's host name, lowercase, or
/// `localhost` when it is unknown or not a valid host name.
pub fn local_server_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .and_then(|h| address::normalize_domain(h.trim()).ok())
        .unwrap_or_else(|| "localhost".to_string())
}

pub(crate) fn normalize_server_name(name: &str) -> Result<String> {
    address::normalize_domain(name).map_err(|_| DirectoryError::InvalidServerName(name.to_string()))
}

pub(crate) fn load_server(conn: &Connection, key: &str) -> Result<Option<Server>> {
    let key = key.trim().to_ascii_lowercase();
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT id, name FROM servers WHERE name = ?1 OR id = ?1")?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(id, name)| {
        Ok(Server {
            attrs: attrs::load(conn, &id)?,
            id,
            name,
        })
    })
    .transpose()
}

fn require_server(conn: &Connection, key: &str) -> Result<Server> {
    load_server(conn, key)?.ok_or_else(|| DirectoryError::NoSuchServer(key.to_string()))
}

pub(crate) fn insert_server(conn: &Connection, s: &Server) -> Result<()> {
    conn.execute(
        "INSERT INTO servers (id, name) VALUES (?1, ?2)",
        params![s.id, s.name],
    )?;
    attrs::store(conn, &s.id, &s.attrs)
}

pub(crate) fn list_servers(conn: &Connection) -> Result<Vec<Server>> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM servers ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names.iter().map(|n| require_server(conn, n)).collect()
}

/// Imported values: known attributes are validated, unknown ones (from a newer
/// version's export) are kept as they are.
pub(crate) fn normalize_imported(name: &str, value: &str) -> Result<String> {
    match known(name) {
        Some(spec) => normalize_value(spec.syntax, spec.name, value),
        None => Ok(value.to_string()),
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match normalize_value(Syntax::Bool, name, v)?.as_str() {
        "TRUE" => Ok(true),
        _ => Ok(false),
    }
}

impl Directory {
    /// `zmprov gacf`: every known attribute's global value (explicit or default),
    /// plus any other explicitly stored attribute.
    pub fn get_global(&self) -> Result<Attrs> {
        let mut all = defaults();
        all.extend(self.global_explicit()?);
        Ok(all)
    }

    /// The global values set explicitly (what an LDIF export holds).
    pub fn global_explicit(&self) -> Result<Attrs> {
        self.read(|conn| attrs::load(conn, GLOBAL))
    }

    /// `zmprov mcf attr value ...`; an empty value list reverts to the default.
    /// Returns the new `get_global()`.
    pub fn modify_global(&self, mods: &[Modification]) -> Result<Attrs> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let mut explicit = attrs::load(&tx, GLOBAL)?;
        apply_config_mods(&mut explicit, mods)?;
        attrs::store(&tx, GLOBAL, &explicit)?;
        tx.commit()?;
        // Read back on a read connection (an in-memory directory's is the writer).
        drop(w);
        self.get_global()
    }

    /// Creates the server entry `name` if it does not exist (the server does this
    /// at startup, with `local_server_name()`).
    pub fn ensure_server(&self, name: &str) -> Result<Server> {
        let name = normalize_server_name(name)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        let server = match load_server(&tx, &name)? {
            Some(s) => s,
            None => {
                let s = Server {
                    id: new_id(),
                    name,
                    attrs: Attrs::new(),
                };
                insert_server(&tx, &s)?;
                s
            }
        };
        tx.commit()?;
        Ok(server)
    }

    /// The server entry (explicit values only).
    pub fn get_server(&self, name: &str) -> Result<Server> {
        self.read(|conn| require_server(conn, name))
    }

    /// `zmprov gas`
    pub fn list_servers(&self) -> Result<Vec<Server>> {
        self.read(list_servers)
    }

    /// `zmprov ms SERVER attr value ...`; an empty value list makes the server
    /// inherit the global value again.
    pub fn modify_server(&self, name: &str, mods: &[Modification]) -> Result<Server> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let mut s = require_server(&tx, name)?;
        apply_config_mods(&mut s.attrs, mods)?;
        attrs::store(&tx, &s.id, &s.attrs)?;
        tx.commit()?;
        Ok(s)
    }

    /// Removes a server entry.
    pub fn delete_server(&self, name: &str) -> Result<Server> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let s = require_server(&tx, name)?;
        attrs::delete(&tx, &s.id)?;
        tx.execute("DELETE FROM servers WHERE id = ?1", [&s.id])?;
        tx.commit()?;
        Ok(s)
    }

    /// `zmprov gs SERVER`: every attribute as the server sees it (server values
    /// over global values over defaults).
    pub fn server_config(&self, name: &str) -> Result<Attrs> {
        let s = self.get_server(name)?;
        let mut all = self.get_global()?;
        all.extend(s.attrs);
        Ok(all)
    }

    /// The values of `key` for server `server`: the server's own, else the global
    /// ones, else the default (empty if none).
    pub fn effective(&self, server: &str, key: &str) -> Result<Vec<String>> {
        let s = self.get_server(server)?;
        let own = attrs::get(&s.attrs, key);
        if !own.is_empty() {
            return Ok(own.to_vec());
        }
        let global = self.global_explicit()?;
        let g = attrs::get(&global, key);
        if !g.is_empty() {
            return Ok(g.to_vec());
        }
        Ok(known(key)
            .map(|s| s.default.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default())
    }

    /// The first effective value of `key`, or "" when unset.
    pub fn effective_str(&self, server: &str, key: &str) -> Result<String> {
        Ok(self
            .effective(server, key)?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// The effective value of an integer attribute (0 when unset).
    pub fn effective_u64(&self, server: &str, key: &str) -> Result<u64> {
        let v = self.effective_str(server, key)?;
        if v.is_empty() {
            return Ok(0);
        }
        normalize_value(Syntax::Integer { min: 0 }, key, &v)?
            .parse()
            .map_err(|_| DirectoryError::InvalidAttributeValue {
                name: key.to_string(),
                value: v,
                reason: "expected an integer".into(),
            })
    }

    /// The effective value of a boolean attribute (false when unset).
    pub fn effective_bool(&self, server: &str, key: &str) -> Result<bool> {
        let v = self.effective_str(server, key)?;
        if v.is_empty() {
            return Ok(false);
        }
        parse_bool(key, &v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_the_backup_and_redo_attributes() {
        let d = Directory::open_in_memory().unwrap();
        let g = d.get_global().unwrap();
        let one = |k: &str| attrs::get(&g, k).first().cloned().unwrap_or_default();
        assert_eq!(one("zimbraBackupMode"), "Standard");
        assert_eq!(one("zimbraBackupAutoGroupedInterval"), "1d");
        assert_eq!(one("zimbraBackupAutoGroupedNumGroups"), "7");
        assert_eq!(one("zimbraBackupAutoGroupedThrottled"), "FALSE");
        assert_eq!(
            one("zimbraBackupReportEmailSubjectPrefix"),
            "ZCS Backup Report"
        );
        assert_eq!(one("zimbraBackupMinFreeSpace"), "0");
        assert_eq!(one("zimbraRedoLogEnabled"), "TRUE");
        assert_eq!(one("zimbraRedoLogLogPath"), "redolog/redo.log");
        assert_eq!(one("zimbraRedoLogArchiveDir"), "redolog/archive");
        assert_eq!(one("zimbraRedoLogRolloverFileSizeKB"), "102400");
        assert_eq!(one("zimbraRedoLogRolloverMinFileAge"), "60");
        assert_eq!(one("zimbraRedoLogDeleteOnRollover"), "FALSE");
        assert_eq!(one("zimbraRedoLogFsyncIntervalMS"), "10");
        assert_eq!(one("zimbraSmtpHostname"), "localhost");
        assert_eq!(one("zimbraSmtpPort"), "25");
        assert_eq!(one("zimbraBackupTarget"), "", "empty: the home's backup/");
        assert!(d.global_explicit().unwrap().is_empty());
    }

    #[test]
    fn durations_in_milliseconds() {
        assert_eq!(duration_ms("1d"), Some(86_400_000));
        assert_eq!(duration_ms("12H"), Some(43_200_000));
        assert_eq!(duration_ms("30m"), Some(1_800_000));
        assert_eq!(duration_ms("45"), Some(45_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        for bad in ["", "d", "1w", "-1d", "1.5d"] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn modify_global_validates_and_normalizes() {
        let d = Directory::open_in_memory().unwrap();
        let g = d
            .modify_global(
                &Modification::parse_zmprov(&[
                    "zimbrabackupmode",
                    "auto-grouped",
                    "zimbraBackupAutoGroupedThrottled",
                    "true",
                    "zimbraBackupMinFreeSpace",
                    "10gb",
                    "zimbraBackupReportEmailRecipients",
                    "Admin@Example.com",
                    "+zimbraBackupReportEmailRecipients",
                    "ops@example.com",
                    "zimbraRedoLogRolloverMinFileAge",
                    "0",
                ])
                .unwrap(),
            )
            .unwrap();
        assert_eq!(attrs::get(&g, "zimbraBackupMode"), ["Auto-Grouped"]);
        assert_eq!(attrs::get(&g, "zimbraBackupAutoGroupedThrottled"), ["TRUE"]);
        assert_eq!(attrs::get(&g, "zimbraBackupMinFreeSpace"), ["10GB"]);
        assert_eq!(
            attrs::get(&g, "zimbraBackupReportEmailRecipients"),
            ["admin@example.com", "ops@example.com"]
        );
        assert_eq!(attrs::get(&g, "zimbraRedoLogRolloverMinFileAge"), ["0"]);
        assert!(
            d.global_explicit()
                .unwrap()
                .contains_key("zimbraBackupMode")
        );

        let bad: &[(&str, &str)] = &[
            ("zimbraBackupMode", "Sometimes"),
            ("zimbraBackupAutoGroupedNumGroups", "0"),
            ("zimbraBackupAutoGroupedNumGroups", "seven"),
            ("zimbraBackupAutoGroupedInterval", "1w"),
            ("zimbraRedoLogEnabled", "yes"),
            ("zimbraSmtpPort", "70000"),
            ("zimbraBackupMinFreeSpace", "101%"),
            ("zimbraBackupReportEmailSender", "nobody"),
            ("zimbraRedoLogFsyncIntervalMS", "-1"),
        ];
        for (k, v) in bad {
            let e = d.modify_global(&[Modification::set(*k, *v)]).unwrap_err();
            assert!(
                matches!(e, DirectoryError::InvalidAttributeValue { .. }),
                "{k}={v}: {e}"
            );
            assert!(e.to_string().contains(k), "{e}");
        }
        let e = d
            .modify_global(&[Modification::set("zimbraBackupModee", "Standard")])
            .unwrap_err();
        assert!(
            matches!(e, DirectoryError::UnknownConfigAttribute(_)),
            "{e}"
        );
        let e = d
            .modify_global(&[Modification::add("zimbraBackupMode", "Standard")])
            .unwrap_err();
        assert!(matches!(e, DirectoryError::SingleValued { .. }), "{e}");
        assert_eq!(
            attrs::get(&d.get_global().unwrap(), "zimbraBackupMode"),
            ["Auto-Grouped"],
            "a failed change changes nothing"
        );

        // Unsetting reverts to the default.
        let g = d
            .modify_global(&[Modification::unset("zimbraBackupMode")])
            .unwrap();
        assert_eq!(attrs::get(&g, "zimbraBackupMode"), ["Standard"]);
    }

    #[test]
    fn server_overrides_global_overrides_default() {
        let d = Directory::open_in_memory().unwrap();
        let s = d.ensure_server("Mail.Example.com").unwrap();
        assert_eq!(s.name, "mail.example.com");
        assert_eq!(
            d.ensure_server("mail.example.com").unwrap().id,
            s.id,
            "idempotent"
        );
        assert!(matches!(
            d.get_server("other"),
            Err(DirectoryError::NoSuchServer(_))
        ));
        assert!(matches!(
            d.ensure_server("bad host!"),
            Err(DirectoryError::InvalidServerName(_))
        ));

        let key = "zimbraRedoLogFsyncIntervalMS";
        assert_eq!(d.effective("mail.example.com", key).unwrap(), ["10"]);
        d.modify_global(&[Modification::set(key, "20")]).unwrap();
        assert_eq!(d.effective_u64("mail.example.com", key).unwrap(), 20);
        d.modify_server("mail.example.com", &[Modification::set(key, "5")])
            .unwrap();
        assert_eq!(d.effective_u64("mail.example.com", key).unwrap(), 5);
        assert_eq!(
            attrs::get(&d.server_config("mail.example.com").unwrap(), key),
            ["5"]
        );
        assert_eq!(attrs::get(&d.get_global().unwrap(), key), ["20"]);
        d.modify_server("mail.example.com", &[Modification::unset(key)])
            .unwrap();
        assert_eq!(d.effective_u64("mail.example.com", key).unwrap(), 20);

        assert!(
            d.effective_bool("mail.example.com", "zimbraRedoLogEnabled")
                .unwrap()
        );
        assert!(
            !d.effective_bool("mail.example.com", "zimbraRedoLogDeleteOnRollover")
                .unwrap()
        );
        assert_eq!(
            d.effective_str("mail.example.com", "zimbraBackupTarget")
                .unwrap(),
            ""
        );
        assert!(matches!(
            d.modify_server(
                "mail.example.com",
                &[Modification::set("zimbraSmtpPort", "0")]
            ),
            Err(DirectoryError::InvalidAttributeValue { .. })
        ));

        d.ensure_server("b.example.com").unwrap();
        let names: Vec<_> = d
            .list_servers()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["b.example.com", "mail.example.com"]);
        d.delete_server("b.example.com").unwrap();
        assert_eq!(d.list_servers().unwrap().len(), 1);
    }

    #[test]
    fn local_server_name_is_a_host_name() {
        let n = local_server_name();
        assert!(normalize_server_name(&n).is_ok(), "{n}");
    }
}
