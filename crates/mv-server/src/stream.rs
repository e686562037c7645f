//! Bodies that travel as byte streams rather than inside JSON: a whole mailbox
//! as a tgz archive, a calendar folder as iCalendar, a contacts folder as vCards
//! (`zmmailbox getRestURL` / `postRestURL`). The same [`Service`] methods serve
//! the CLI in-process and the admin API's streaming routes
//! (`GET|POST /v1/accounts/{account}/rest`, see [`crate::api`]), so both paths
//! behave the same and neither holds a whole archive in memory.

use crate::{Service, ServiceError};
use mv_store::tgz::{self, ExportReport, ImportReport, Resolve};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// What a stream carries (the `fmt=` of a REST URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// A whole mailbox (see [`mv_store::tgz`]).
    Tgz,
    /// The appointments of a folder, one VCALENDAR.
    Ics,
    /// The contacts of a folder, one vCard after another.
    Vcf,
}

impl BodyFormat {
    /// The `Content-Type` of the body.
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Tgz => "application/gzip",
            BodyFormat::Ics => "text/calendar; charset=utf-8",
            BodyFormat::Vcf => "text/vcard; charset=utf-8",
        }
    }
}

/// `GET /v1/accounts/{account}/rest?fmt=...`: what to export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportParams {
    pub fmt: BodyFormat,
    /// The folder (path or id) of an ics/vcf export; a tgz is the whole mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// tgz: the messages to include (the search language of `zmmailbox s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `POST /v1/accounts/{account}/rest?fmt=...`: how to import the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportParams {
    pub fmt: BodyFormat,
    /// The folder (path or id) an ics/vcf import goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// tgz: how items that already exist are treated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<Resolve>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExportResult {
    Archive(ExportReport),
    Text { bytes: u64 },
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImportResult {
    Archive(ImportReport),
    Calendar {
        created: Vec<u32>,
        replaced: Vec<u32>,
        kept_existing: Vec<String>,
    },
    Contacts {
        created: Vec<u32>,
    },
}

/// Largest calendar or contacts body accepted (the same as one entry of an
/// archive).
pub const MAX_TEXT_BYTES: u64 = tgz::MAX_TEXT_BYTES;

/// The localconfig key bounding an imported archive's size.
pub const IMPORT_MAX_KEY: &str = "mailbox_import_max_size_mb";

impl Service {
    /// The largest archive an import accepts (localconfig
    /// `mailbox_import_max_size_mb`).
    pub fn import_max_bytes(&self) -> Result<u64, ServiceError> {
        let mb = self.store().home().open()?.get_u64(IMPORT_MAX_KEY);
        Ok(mb.saturating_mul(1 << 20))
    }

    /// Writes an account's data to `out` as `params` asks, streaming.
    pub fn export_to(
        &self,
        account: &str,
        params: &ExportParams,
        out: &mut dyn Write,
    ) -> Result<ExportResult, ServiceError> {
        let mbox = self.mailbox_of(account)?;
        let folder = || {
            params.folder.as_deref().ok_or_else(|| {
                ServiceError::BadRequest("an ics or vcf export names its folder".into())
            })
        };
        let text = match params.fmt {
            BodyFormat::Tgz => {
                let q = params.query.as_deref();
                return Ok(ExportResult::Archive(tgz::export(
                    self.store(),
                    mbox,
                    q,
                    out,
                )?));
            }
            BodyFormat::Ics => self.export_calendar(mbox, folder()?)?,
            BodyFormat::Vcf => self.export_contacts(mbox, folder()?)?,
        };
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| ServiceError::Io(format!("writing the export: {e}")))?;
        Ok(ExportResult::Text {
            bytes: text.len() as u64,
        })
    }

    /// Imports `input` into an account as `params` says. An archive is spooled
    /// to a private temporary file and checked whole before the mailbox
    /// changes; calendars and contacts are read up to [`MAX_TEXT_BYTES`].
    pub fn import_from(
        &self,
        account: &str,
        params: &ImportParams,
        input: &mut dyn Read,
    ) -> Result<ImportResult, ServiceError> {
        let mbox = self.mailbox_of(account)?;
        let folder = || {
            params.folder.as_deref().ok_or_else(|| {
                ServiceError::BadRequest("an ics or vcf import names its folder".into())
            })
        };
        if params.fmt == BodyFormat::Tgz {
            let resolve = params.resolve.unwrap_or_default();
            let max = self.import_max_bytes()?;
            return Ok(ImportResult::Archive(tgz::import_stream(
                self.store(),
                mbox,
                resolve,
                input,
                max,
            )?));
        }
        let mut data = Vec::new();
        input
            .take(MAX_TEXT_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(|e| ServiceError::Io(format!("receiving the body: {e}")))?;
        if data.len() as u64 > MAX_TEXT_BYTES {
            return Err(ServiceError::TooLarge(format!(
                "the body is larger than {MAX_TEXT_BYTES} bytes, the limit of a calendar or contacts import"
            )));
        }
        let text = String::from_utf8(data).map_err(|_| {
            ServiceError::BadRequest(format!(
                "the body is not UTF-8 text (expected {:?})",
                params.fmt
            ))
        })?;
        let folder = folder()?;
        Ok(match params.fmt {
            BodyFormat::Ics => {
                let r = self.import_calendar(mbox, folder, &text)?;
                ImportResult::Calendar {
                    created: r.created,
                    replaced: r.replaced,
                    kept_existing: r.kept_existing,
                }
            }
            _ => ImportResult::Contacts {
                created: self.import_contacts(mbox, folder, &text)?,
            },
        })
    }
}

impl From<tgz::TgzError> for ServiceError {
    fn from(e: tgz::TgzError) -> Self {
        match e {
            tgz::TgzError::Invalid(_) => ServiceError::BadRequest(e.to_string()),
            tgz::TgzError::TooLarge { .. } => ServiceError::TooLarge(e.to_string()),
            tgz::TgzError::Store(e) => ServiceError::Store(e),
            tgz::TgzError::Io { .. } => ServiceError::Io(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_read_from_a_query_string() {
        let p: ExportParams = serde_json::from_value(serde_json::json!({"fmt": "tgz"})).unwrap();
        assert_eq!(p.fmt, BodyFormat::Tgz);
        let p: ImportParams =
            serde_json::from_value(serde_json::json!({"fmt": "tgz", "resolve": "reset"})).unwrap();
        assert_eq!(p.resolve, Some(Resolve::Reset));
        assert!(serde_json::from_value::<ExportParams>(serde_json::json!({"fmt": "zip"})).is_err());
    }
}
