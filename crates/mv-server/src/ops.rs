//! The operations requests of the service: schedule, reports, disk, check (one
//! dispatch, so `service.rs` only names them).

use crate::{Request, Service, ServiceError};
use serde_json::{Value, json};

pub fn execute(service: &Service, req: Request) -> Result<Value, ServiceError> {
    Ok(match req {
        Request::Schedule(r) => crate::schedule::execute(service, &r)?,
        Request::BackupReports { limit } => {
            let home = service.store().home();
            json!({
                "reports": crate::report::list_with_delivery(home, limit.unwrap_or(10)),
                "outbox": crate::outbox::status(home),
                "email": crate::report::ReportConfig::of(service)?,
            })
        }
        Request::DiskStatus => crate::diskmon::status(service),
        Request::Check => serde_json::to_value(crate::check::run(service))
            .map_err(|e| ServiceError::Io(e.to_string()))?,
        other => {
            return Err(ServiceError::BadRequest(format!(
                "not an operations request: {other:?}"
            )));
        }
    })
}
