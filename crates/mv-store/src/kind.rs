//! What an item is: the one representation of an item's kind, from the mailbox
//! database to the admin API and the tgz archive.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// The kind of a mailbox item (and of a tombstone: what the deleted item was).
///
/// - In a mailbox database, the `type` column (and `tombstone.type`) holds
///   [`ItemKind::code`], Zimbra's item type numbers, so databases and redo
///   replays written before this type existed read the same.
/// - Everywhere else it travels by name (serde, lowercase: `"message"`,
///   `"contact"`, `"appointment"`, `"folder"`, `"tag"`): the admin API's JSON,
///   `--json` output and the `.meta` sidecars of a tgz archive, whose names were
///   already these.
///
/// The store keeps no other kinds (Zimbra's tasks, documents, conversations
/// have no items here): a database row of any other type is an error when read,
/// never a silent default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Folder,
    Tag,
    Message,
    Contact,
    Appointment,
}

impl ItemKind {
    /// Every kind, in code order.
    pub const ALL: [ItemKind; 5] = [
        ItemKind::Folder,
        ItemKind::Tag,
        ItemKind::Message,
        ItemKind::Contact,
        ItemKind::Appointment,
    ];

    /// The number stored in a mailbox database (Zimbra's item type).
    pub const fn code(self) -> i64 {
        match self {
            ItemKind::Folder => 1,
            ItemKind::Tag => 3,
            ItemKind::Message => 5,
            ItemKind::Contact => 6,
            ItemKind::Appointment => 11,
        }
    }

    /// The kind a database's number stands for; `None` for a number the store
    /// never writes.
    pub fn from_code(code: i64) -> Option<ItemKind> {
        ItemKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The name it travels by (the same as its serde form).
    pub const fn name(self) -> &'static str {
        match self {
            ItemKind::Folder => "folder",
            ItemKind::Tag => "tag",
            ItemKind::Message => "message",
            ItemKind::Contact => "contact",
            ItemKind::Appointment => "appointment",
        }
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ItemKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ItemKind, String> {
        ItemKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown item kind {s:?}"))
    }
}

impl ToSql for ItemKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.code()))
    }
}

impl FromSql for ItemKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<ItemKind> {
        let code = i64::column_result(value)?;
        ItemKind::from_code(code).ok_or(FromSqlError::OutOfRange(code))
    }
}

#[cfg(test)]
mod tests {
    use super::ItemKind;

    #[test]
    fn codes_names_and_serde_agree() {
        for k in ItemKind::ALL {
            assert_eq!(ItemKind::from_code(k.code()), Some(k));
            assert_eq!(k.name().parse::<ItemKind>(), Ok(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<ItemKind>(&json).unwrap(), k);
        }
        // Zimbra's numbers, which existing databases hold.
        assert_eq!(ItemKind::Message.code(), 5);
        assert_eq!(ItemKind::Appointment.code(), 11);
        assert_eq!(ItemKind::from_code(15), None, "tasks are not stored");
        assert!(serde_json::from_str::<ItemKind>("\"task\"").is_err());
    }

    #[test]
    fn an_unknown_type_in_a_database_is_an_error() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let ok: ItemKind = c.query_row("SELECT 6", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, ItemKind::Contact);
        let bad: rusqlite::Result<ItemKind> = c.query_row("SELECT 15", [], |r| r.get(0));
        assert!(bad.is_err());
        let back: i64 = c
            .query_row("SELECT ?1", [ItemKind::Tag], |r| r.get(0))
            .unwrap();
        assert_eq!(back, 3);
    }
}
