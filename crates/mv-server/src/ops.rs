//! The operations requests of the service: schedule, reports, disk, check (one
//! dispatch, so `service.rs` only names them).

use crate::response::{Reports, Response};
use crate::{Request, Service, ServiceError};

pub fn execute(service: &Service, req: Request) -> Result<Response, ServiceError> {
    Ok(match req {
        Request::Schedule(r) => crate::schedule::execute(service, &r)?.into(),
        Request::BackupReports { limit } => {
            let home = service.store().home();
            Reports {
                reports: crate::report::list_with_delivery(home, limit.unwrap_or(10)),
                outbox: crate::outbox::status(home),
                email: crate::report::ReportConfig::of(service)?,
            }
            .into()
        }
        Request::DiskStatus => crate::diskmon::status(service).into(),
        Request::Check => crate::check::run(service).into(),
        other => {
            return Err(ServiceError::BadRequest(format!(
                "not an operations request: {other:?}"
            )));
        }
    })
}
