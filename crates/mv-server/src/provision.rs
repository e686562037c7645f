//! Creating accounts in batches: what a `zmprov` reading `ca` lines from stdin
//! sends, a group of lines at a time ([`Request::CreateAccounts`]).
//!
//! A batch costs one directory transaction (passwords hashed in parallel
//! beforehand, outside any lock) and one redo commit per chunk of mailboxes,
//! where creating the accounts one by one costs both per account. Each entry
//! still gets its own answer, the one `ca` would have given, and an account is
//! reported created only once it and its mailbox are durable.

use crate::service::{Service, ServiceError};
use mv_directory::{Account, Modification, NewAccount};
use serde::{Deserialize, Serialize};

/// Entries a batch request may hold: the CLI sends at most this many lines at
/// a time, and the API's 1 MiB body limit bounds their size.
pub const MAX_BATCH: usize = 1000;

/// One `zmprov ca EMAIL PASSWORD [attr value ...]` of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSpec {
    pub email: String,
    pub password: Option<String>,
    #[serde(default)]
    pub attrs: Vec<String>,
}

/// The answer to one entry: the account, or why it was not created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Created {
    Account(Account),
    Error(String),
}

impl Service {
    /// Creates the accounts (each with its mailbox) as [`Service::create_account`]
    /// would one by one; one answer per entry, in order. An account whose
    /// mailbox cannot be created is removed again.
    pub fn create_accounts(&self, specs: &[AccountSpec]) -> Result<Vec<Created>, ServiceError> {
        if specs.len() > MAX_BATCH {
            return Err(ServiceError::BadRequest(format!(
                "a batch holds at most {MAX_BATCH} accounts, not {}",
                specs.len()
            )));
        }
        let mut answers: Vec<Option<Result<Account, ServiceError>>> =
            specs.iter().map(|_| None).collect();
        // Entries whose attributes parse go to the directory, in order.
        let mut sent = Vec::with_capacity(specs.len());
        let mut items = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            match Modification::parse_zmprov(&s.attrs) {
                Ok(mods) => {
                    sent.push(i);
                    items.push(NewAccount {
                        email: s.email.clone(),
                        password: s.password.clone(),
                        mods,
                    });
                }
                Err(e) => answers[i] = Some(Err(e.into())),
            }
        }
        let created = self.directory().create_accounts(&items)?;
        let mut with_mailbox = Vec::new();
        for (i, r) in sent.into_iter().zip(created) {
            match r {
                Ok(a) => with_mailbox.push((i, a)),
                Err(e) => answers[i] = Some(Err(e.into())),
            }
        }
        let boxes: Vec<_> = with_mailbox
            .iter()
            .map(|(_, a)| (a.mailbox_id, a.id.as_str(), a.email.as_str()))
            .collect();
        let made = self.store().create_mailboxes(&boxes);
        for ((i, a), r) in with_mailbox.into_iter().zip(made) {
            answers[i] = Some(match r {
                Ok(()) => Ok(a),
                Err(e) => {
                    let _ = self.directory().delete_account(&a.id);
                    Err(e.into())
                }
            });
        }
        Ok(answers
            .into_iter()
            .map(|a| match a {
                Some(Ok(account)) => Created::Account(account),
                Some(Err(e)) => Created::Error(e.to_string()),
                None => Created::Error("not attempted".into()),
            })
            .collect())
    }
}
