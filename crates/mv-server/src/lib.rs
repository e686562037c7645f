//! `mailvault serve` and the service layer under it.
//!
//! [`service::Request`] is the one description of an administrative or mailbox
//! operation. The CLI builds requests from Zimbra-style arguments; they run
//! in-process when no server owns the home, or through the admin API
//! (`POST /v1/op`) when one does. Either way [`service::Service::execute`] does the
//! work, so both paths behave the same.

pub mod account_log;
mod accounts;
pub mod api;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod check;
pub mod diskmon;
pub mod dumpster;
pub mod homewatch;
pub mod imap_backend;
pub mod items;
pub mod jobs;
pub mod live;
pub mod lmtp_backend;
pub mod login_cache;
mod mail;
pub mod metrics;
pub mod ops;
pub mod outbox;
mod pim;
pub mod provision;
pub mod recovery_check;
pub mod report;
pub mod request;
pub mod response;
pub mod restore;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod socketmap;
pub mod standby;
pub mod stream;
pub mod tls;
pub mod trace;

pub use response::{Reply, Response};
pub use run::{ServeOptions, serve};
pub use service::{Request, Service, ServiceError};
