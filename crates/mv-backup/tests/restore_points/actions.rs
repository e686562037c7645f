//! The mailbox operations of the restore-points property test: deliveries and
//! IMAP-style changes, from mv-store's `testkit` (the same ops its replay test
//! plays), with a delivery's repeated recipients getting it once.

use mv_store::Store;
pub use mv_store::testkit::Action;
use mv_store::testkit::Kit;
use mv_types::MailboxId;
use proptest::prelude::*;

/// An op's account is an index below this, taken modulo the live accounts.
pub const ACCOUNTS: usize = 4;

const KIT: Kit = Kit {
    accounts: ACCOUNTS,
    max_recipients: 2,
    distinct_recipients: true,
};

pub fn action() -> impl Strategy<Value = Action> {
    KIT.action()
}

/// Runs op number `n` against the live store, on the live accounts `mboxes`.
pub fn run(store: &Store, mboxes: &[MailboxId], a: &Action, n: usize) {
    KIT.run(store, mboxes, a, n, &|_, _| None)
}
