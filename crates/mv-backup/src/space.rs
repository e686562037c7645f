//! The free-space check before a backup starts (`zimbraBackupMinFreeSpace`).

use crate::error::{BackupError, Result};
use crate::target::{Space, Target};

/// A minimum: bytes, or a percentage of the target's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinFree {
    Bytes(u64),
    Percent(u64),
}

/// Parses `zimbraBackupMinFreeSpace`: digits with an optional unit (B, K/KB, M/MB,
/// G/GB, T/TB; powers of 1024, any case) or a percentage (`25%`). Empty or 0: no
/// minimum.
pub fn parse_min_free(s: &str) -> Result<Option<MinFree>> {
    let v = s.trim().to_ascii_uppercase();
    if v.is_empty() {
        return Ok(None);
    }
    let at = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(at);
    let bad = || {
        BackupError::Invalid(format!(
            "invalid zimbraBackupMinFreeSpace {s:?}: use bytes with an optional unit (500MB, 10GB) or a percentage (25%)"
        ))
    };
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        "T" | "TB" => 1 << 40,
        "%" => {
            if n > 100 {
                return Err(bad());
            }
            return Ok((n > 0).then_some(MinFree::Percent(n)));
        }
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    Ok((bytes > 0).then_some(MinFree::Bytes(bytes)))
}

/// Human-readable bytes (`3.2 GB`, powers of 1024).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Refuses to start when the target has less free space than `setting` asks.
pub fn check(target: &dyn Target, setting: &str) -> Result<()> {
    let Some(min) = parse_min_free(setting)? else {
        return Ok(());
    };
    let Some(Space { available, total }) = target.free_space()? else {
        return Ok(());
    };
    let enough = match min {
        MinFree::Bytes(b) => available >= b,
        MinFree::Percent(p) => (available as u128) * 100 >= (total as u128) * p as u128,
    };
    if enough {
        return Ok(());
    }
    Err(BackupError::FreeSpace {
        required: setting.trim().to_string(),
        available: match min {
            MinFree::Bytes(_) => human_bytes(available),
            MinFree::Percent(_) => format!(
                "{} ({}%)",
                human_bytes(available),
                (available as u128 * 100 / (total as u128).max(1))
            ),
        },
        target: target.url(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_directory_spellings() {
        assert_eq!(parse_min_free("0").unwrap(), None);
        assert_eq!(parse_min_free("").unwrap(), None);
        assert_eq!(parse_min_free("500").unwrap(), Some(MinFree::Bytes(500)));
        assert_eq!(
            parse_min_free("10GB").unwrap(),
            Some(MinFree::Bytes(10 << 30))
        );
        assert_eq!(parse_min_free("5m").unwrap(), Some(MinFree::Bytes(5 << 20)));
        assert_eq!(parse_min_free("25%").unwrap(), Some(MinFree::Percent(25)));
        assert!(parse_min_free("101%").is_err());
        assert!(parse_min_free("ten").is_err());
    }

    #[test]
    fn refuses_with_the_original_text() {
        let dir = tempfile::tempdir().unwrap();
        let t = crate::target::FsTarget::open(dir.path()).unwrap();
        check(&t, "0").unwrap();
        check(&t, "1").unwrap();
        let e = check(&t, "100%").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Backup cannot start because free space is less than 100%"),
            "{e}"
        );
        let e = check(&t, "1000000TB").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Backup cannot start because free space is less than 1000000TB"),
            "{e}"
        );
    }
}
