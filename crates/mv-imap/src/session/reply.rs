//! The tagged NO/BAD a command ends with, and response text hygiene.

use super::*;

pub(super) type Res = Result<(), Reply>;

/// A tagged NO/BAD with an optional response code.
pub(super) struct Reply {
    pub(super) kind: &'static str,
    pub(super) code: Option<String>,
    pub(super) text: String,
}

pub(super) fn no(code: Option<&str>, text: impl Into<String>) -> Reply {
    Reply {
        kind: "NO",
        code: code.map(str::to_string),
        text: text.into(),
    }
}

pub(super) fn bad(text: impl Into<String>) -> Reply {
    Reply {
        kind: "BAD",
        code: None,
        text: text.into(),
    }
}

impl From<BackendError> for Reply {
    fn from(e: BackendError) -> Reply {
        let code = match e.kind {
            ErrorKind::NotFound => "NONEXISTENT",
            ErrorKind::Exists => "ALREADYEXISTS",
            ErrorKind::Cannot => "CANNOT",
            ErrorKind::OverQuota => "OVERQUOTA",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::Internal => "SERVERBUG",
        };
        no(Some(code), e.message)
    }
}

/// One line of response text: no CR/LF, bounded.
pub(super) fn clean(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if t.trim().is_empty() {
        "failed".into()
    } else {
        t
    }
}
