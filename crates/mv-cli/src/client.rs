//! Running a service request: in-process when no server owns the home (the tool
//! takes the home lock for its duration), or through the running server's admin
//! API when one does. Both paths run the same `Service::execute`.

use anyhow::{Context, anyhow, bail};
use mv_home::{Home, HomeLock};
use mv_server::{Request, Service};
use serde_json::Value;

pub enum Client {
    Local {
        service: Box<Service>,
        _lock: HomeLock,
    },
    Remote {
        url: String,
        token: String,
    },
}

impl Client {
    pub fn connect(home: &Home) -> anyhow::Result<Client> {
        let cfg = home.open()?;
        match HomeLock::acquire(home.root()) {
            Ok(lock) => {
                let (service, _) = Service::open(home)?;
                Ok(Client::Local {
                    service: Box::new(service),
                    _lock: lock,
                })
            }
            Err(mv_home::LockError::Held { .. }) => {
                let addr = cfg
                    .get("admin_bind_address")
                    .unwrap_or("127.0.0.1")
                    .to_string();
                let port = cfg.get_u64("admin_bind_port");
                let token = home
                    .admin_token()
                    .context("reading the admin token (conf/admin.token)")?;
                Ok(Client::Remote {
                    url: format!("http://{addr}:{port}/v1/op"),
                    token,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The in-process service when no server owns the home: callers stream large
    /// data (mailbox archives) through it instead of one JSON request.
    pub fn local_service(&self) -> Option<&Service> {
        match self {
            Client::Local { service, .. } => Some(service),
            Client::Remote { .. } => None,
        }
    }

    pub fn execute(&self, req: Request) -> anyhow::Result<Value> {
        match self {
            Client::Local { service, .. } => service.execute(req).map_err(|e| anyhow!("{e}")),
            Client::Remote { url, token } => {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(std::time::Duration::from_secs(600)))
                    .build()
                    .into();
                // Named in the path: the server picks the body limit of the
                // operation (content operations take more) before reading it.
                let body = serde_json::to_vec(&req).context("encoding the request")?;
                let op = mv_server::api::op_name(&body).unwrap_or_default();
                let url = format!("{url}/{op}");
                let mut resp = agent
                    .post(&url)
                    .header("Authorization", &format!("Bearer {token}"))
                    .header("Content-Type", "application/json")
                    .send(&body[..])
                    .with_context(|| {
                        format!(
                            "contacting the running server at {url} (is it up? zmcontrol status)"
                        )
                    })?;
                let status = resp.status().as_u16();
                let body: Value = resp
                    .body_mut()
                    .read_json()
                    .context("reading the server's answer")?;
                if status == 200 {
                    Ok(body.get("result").cloned().unwrap_or(Value::Null))
                } else {
                    let msg = body
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error");
                    bail!("{msg}")
                }
            }
        }
    }
}
