//! Creating many mailboxes at once (a batch of `zmprov ca`): their
//! `CreateMailbox` records go to the redo log together, so that a batch waits
//! for one group commit per chunk instead of one per account.

use super::*;

/// Mailboxes created under one redo commit at most. A creation opens no
/// database (it waits for the mailbox's first use: see `created`), so only
/// the locks are held meanwhile.
const CHUNK: usize = 512;

impl Store {
    /// Creates each mailbox as [`Store::create_mailbox`] would; one result per
    /// entry, in order. A chunk whose commit fails is retried one mailbox at a
    /// time, so that each entry gets its own answer.
    pub fn create_mailboxes(
        &self,
        mailboxes: &[(MailboxId, &str, &str)],
    ) -> Vec<Result<(), StoreError>> {
        let mut out = Vec::with_capacity(mailboxes.len());
        for part in mailboxes.chunks(CHUNK) {
            match self.create_chunk(part) {
                Ok(results) => out.extend(results),
                Err(_) => out.extend(
                    part.iter()
                        .map(|(id, account, email)| self.create_mailbox(*id, account, email)),
                ),
            }
        }
        out
    }

    /// One commit for the new mailboxes of `part`; an entry naming mailbox 0,
    /// an existing mailbox or one named twice gets its own error.
    fn create_chunk(
        &self,
        part: &[(MailboxId, &str, &str)],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut results: Vec<Result<(), StoreError>> = part.iter().map(|_| Ok(())).collect();
        // Locks in mailbox-id order, as deliveries take them.
        let mut order: Vec<usize> = (0..part.len()).collect();
        order.sort_by_key(|&i| part[i].0);
        let handles: Vec<_> = order.iter().map(|&i| self.mailbox(part[i].0)).collect();
        let mut guards = Vec::with_capacity(order.len());
        let mut ops = Vec::with_capacity(order.len());
        let mut previous = None;
        for (&i, h) in order.iter().zip(&handles) {
            let (id, account_id, email) = part[i];
            if id.0 == 0 {
                results[i] = Err(StoreError::Invalid("mailbox id 0 is reserved".into()));
                continue;
            }
            if previous == Some(id) {
                results[i] = Err(StoreError::Invalid(format!("mailbox {id} already exists")));
                continue;
            }
            previous = Some(id);
            let g = h.lock_unopened()?;
            if exists(&g)? {
                results[i] = Err(StoreError::Invalid(format!("mailbox {id} already exists")));
                continue;
            }
            ops.push((
                id,
                Op::CreateMailbox(ops::CreateMailbox {
                    account_id: account_id.to_string(),
                    email: email.to_string(),
                    uid_validity: uid_validity_now(),
                }),
            ));
            guards.push(g);
        }
        if !ops.is_empty() {
            self.commit(&mut guards, vec![], ops, &Staged::default())?;
        }
        Ok(results)
    }
}
