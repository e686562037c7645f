//! Running a service request: in-process when no server owns the home (the tool
//! takes the home lock for its duration), or through the running server's admin
//! API when one does. Both paths run the same `Service` methods, and every kind
//! of call has both: plain requests ([`Client::call`]), streamed bodies
//! ([`Client::export`], [`Client::import`]) and long operations followed as
//! jobs ([`Client::run_job`]).

use anyhow::{Context, anyhow, bail};
use mv_home::{Home, HomeLock};
use mv_server::jobs::{JobState, JobStatus, LogCursor, LogNews};
use mv_server::response::Answer;
use mv_server::stream::{BodyFormat, ExportParams, ExportResult, ImportParams, ImportResult};
use mv_server::{Reply, Request, Service};
use serde::de::DeserializeOwned;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The localconfig key of the client's timeout.
pub const TIMEOUT_KEY: &str = "admin_client_timeout_seconds";
/// How often a followed job is asked how it is doing.
const POLL: Duration = Duration::from_millis(250);

pub enum Client {
    Local {
        service: Box<Service>,
        _lock: HomeLock,
    },
    Remote {
        /// `http://ADDR:PORT`
        base: String,
        token: String,
        /// Longest wait for one answer (and, while following a job, for the
        /// server to be reachable again).
        timeout: Duration,
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
                let secs = match cfg.get(TIMEOUT_KEY) {
                    None | Some("") => 600,
                    Some(v) => v.trim().parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                        anyhow!("localconfig {TIMEOUT_KEY} = {v:?}: expected a number of seconds above 0")
                    })?,
                };
                let token = home
                    .admin_token()
                    .context("reading the admin token (conf/admin.token)")?;
                Ok(Client::Remote {
                    base: format!("http://{addr}:{port}"),
                    token,
                    timeout: Duration::from_secs(secs),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the requests run in this process (no server owns the home).
    pub fn is_local(&self) -> bool {
        matches!(self, Client::Local { .. })
    }

    /// An agent for one answer: the whole call within the timeout.
    fn agent(timeout: Duration) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into()
    }

    /// An agent for a stream: no bound on the whole transfer, only on each
    /// wait (connecting, each read and write, the answer's start).
    fn stream_agent(timeout: Duration) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .build()
            .into()
    }

    /// Runs a request and reads its answer as the type `T` it answers with.
    pub fn call<T: Reply>(&self, req: Request) -> anyhow::Result<T> {
        match self {
            Client::Local { service, .. } => service.call(req).map_err(|e| anyhow!("{e}")),
            Client::Remote {
                base,
                token,
                timeout,
            } => {
                // Named in the path: the server picks the body limit of the
                // operation (content operations take more) before reading it.
                let body = serde_json::to_vec(&req).context("encoding the request")?;
                let op = mv_server::api::op_name(&body).unwrap_or_default();
                let url = format!("{base}/v1/op/{op}");
                let resp = Self::agent(*timeout)
                    .post(&url)
                    .header("Authorization", &format!("Bearer {token}"))
                    .header("Content-Type", "application/json")
                    .send(&body[..])
                    .with_context(|| unreachable_server(&url))?;
                answer(resp)
            }
        }
    }

    /// Writes an account's export (`getRestURL`) to `out` as it is produced;
    /// answers with the export's report.
    pub fn export(
        &self,
        account: &str,
        params: &ExportParams,
        out: &mut dyn Write,
    ) -> anyhow::Result<ExportResult> {
        match self {
            Client::Local { service, .. } => service
                .export_to(account, params, out)
                .map_err(|e| anyhow!("{e}")),
            Client::Remote {
                base,
                token,
                timeout,
            } => {
                let url = rest_url(base, account);
                let mut query = vec![("fmt", fmt_name(params.fmt))];
                if let Some(f) = &params.folder {
                    query.push(("folder", f));
                }
                if let Some(q) = &params.query {
                    query.push(("query", q));
                }
                let resp = Self::stream_agent(*timeout)
                    .get(&url)
                    .query_pairs(query)
                    .header("Authorization", &format!("Bearer {token}"))
                    .call()
                    .with_context(|| unreachable_server(&url))?;
                if resp.status() != 200 {
                    return answer(resp);
                }
                let job = resp
                    .headers()
                    .get(mv_server::api::stream::JOB_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let copied = std::io::copy(&mut resp.into_body().into_reader(), out);
                // The job says why a cut transfer was cut.
                let status: Option<JobStatus<ExportResult>> = match job {
                    Some(id) => Some(self.job_status(id, 0)?),
                    None => None,
                };
                if let Some(JobStatus { error: Some(e), .. }) = &status {
                    bail!("{e}");
                }
                copied.context("receiving the export from the server")?;
                out.flush().context("writing the export")?;
                status
                    .and_then(|s| s.result)
                    .ok_or_else(|| anyhow!("the server kept no report of the export"))
            }
        }
    }

    /// Imports `input` (`postRestURL`) into an account, streaming it to the
    /// server when one runs; answers with the import's report.
    pub fn import(
        &self,
        account: &str,
        params: &ImportParams,
        input: &mut dyn Read,
    ) -> anyhow::Result<ImportResult> {
        match self {
            Client::Local { service, .. } => service
                .import_from(account, params, input)
                .map_err(|e| anyhow!("{e}")),
            Client::Remote {
                base,
                token,
                timeout,
            } => {
                let url = rest_url(base, account);
                let mut query = vec![("fmt", fmt_name(params.fmt).to_string())];
                if let Some(f) = &params.folder {
                    query.push(("folder", f.clone()));
                }
                if let Some(r) = params.resolve {
                    query.push(("resolve", resolve_name(r).to_string()));
                }
                let resp = Self::stream_agent(*timeout)
                    .post(&url)
                    .query_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
                    .header("Authorization", &format!("Bearer {token}"))
                    .header("Content-Type", params.fmt.content_type())
                    .send(ureq::SendBody::from_reader(input))
                    .with_context(|| unreachable_server(&url))?;
                answer(resp)
            }
        }
    }

    /// Runs a long request: in-process here, or as a job in the server, which
    /// is followed until it ends, across lost connections for up to the
    /// timeout each. `progress` sees each status with the log lines new since
    /// the last one (and how many the server dropped in between: a job that
    /// logs more than it keeps between two polls). Answers with its result.
    pub fn run_job<T: Reply>(
        &self,
        req: Request,
        progress: &mut dyn FnMut(&JobStatus<T>, LogNews<'_>),
    ) -> anyhow::Result<T> {
        let Client::Remote {
            base,
            token,
            timeout,
        } = self
        else {
            return self.call(req);
        };
        let url = format!("{base}/v1/jobs");
        let body = serde_json::to_vec(&req).context("encoding the request")?;
        let resp = Self::agent(*timeout)
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(&body[..])
            .with_context(|| unreachable_server(&url))?;
        let mut status: JobStatus<T> = answer(resp)?;
        let mut cursor = LogCursor::default();
        loop {
            progress(&status, cursor.take(&status));
            if status.state.is_finished() {
                break;
            }
            std::thread::sleep(POLL);
            status = self.job_status(status.id, cursor.next())?;
        }
        match (status.state, status.result) {
            (JobState::Succeeded | JobState::Cancelled, Some(result)) => Ok(result),
            _ => bail!(
                "{}",
                status
                    .error
                    .unwrap_or_else(|| format!("job {} ended without a result", status.id))
            ),
        }
    }

    /// A job's status with its log lines from the `since`-th on, asked again
    /// while the server is unreachable (a restart, a dropped connection) for up
    /// to the timeout.
    pub fn job_status<T: DeserializeOwned>(
        &self,
        id: u64,
        since: u64,
    ) -> anyhow::Result<JobStatus<T>> {
        let Client::Remote {
            base,
            token,
            timeout,
        } = self
        else {
            bail!("no server runs: jobs live in a running server");
        };
        let url = format!("{base}/v1/jobs/{id}?since={since}");
        let deadline = Instant::now() + *timeout;
        loop {
            let sent = Self::agent(*timeout)
                .get(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .call();
            match sent {
                Ok(resp) => return answer(resp),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("following job {id}: {e}; asking again");
                    std::thread::sleep(POLL * 4);
                }
                Err(e) => return Err(e).with_context(|| unreachable_server(&url)),
            }
        }
    }
}

/// Prints a followed job's new log lines to stderr, each after `what: `, and
/// says so when lines went by unseen.
pub fn print_job_log(what: &str, news: &LogNews<'_>) {
    if news.dropped > 0 {
        eprintln!(
            "{what}: ... {} log line(s) not shown (the server keeps the newest {})",
            news.dropped,
            mv_server::jobs::KEEP_LOG
        );
    }
    for l in news.lines {
        eprintln!("{what}: {l}");
    }
}

fn rest_url(base: &str, account: &str) -> String {
    let mut enc = String::new();
    for b in account.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{base}/v1/accounts/{enc}/rest")
}

fn fmt_name(f: BodyFormat) -> &'static str {
    match f {
        BodyFormat::Tgz => "tgz",
        BodyFormat::Ics => "ics",
        BodyFormat::Vcf => "vcf",
    }
}

fn resolve_name(r: mv_store::tgz::Resolve) -> &'static str {
    use mv_store::tgz::Resolve;
    match r {
        Resolve::Skip => "skip",
        Resolve::Modify => "modify",
        Resolve::Replace => "replace",
        Resolve::Reset => "reset",
    }
}

fn unreachable_server(url: &str) -> String {
    format!("contacting the running server at {url} (is it up? zmcontrol status)")
}

/// The result of an answer as the type the request answers with, or its
/// error as this call's error. An error answer is read for its message only,
/// so it never fails on the result's type.
fn answer<T: DeserializeOwned>(mut resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<T> {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .with_context(|| format!("reading the server's answer (HTTP {status})"))?;
    if status >= 300 {
        let e: Answer<serde::de::IgnoredAny> = serde_json::from_slice(&body)
            .with_context(|| format!("reading the server's answer (HTTP {status})"))?;
        bail!("{}", e.error.unwrap_or_else(|| format!("HTTP {status}")))
    }
    let a: Answer<T> = serde_json::from_slice(&body).with_context(|| {
        format!(
            "reading the server's answer as {}",
            std::any::type_name::<T>()
        )
    })?;
    a.result
        .ok_or_else(|| anyhow!("the server's answer (HTTP {status}) has no result"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mv_server::jobs::Jobs;
    use mv_server::response::Ack;
    use std::io::BufRead;

    /// Serves `/v1/jobs` from a real job for `Client::run_job`: the job logs
    /// 3 lines before it starts, 250 (more than the server keeps) before the
    /// first poll is answered, 1 more and ends before the second. Answers with
    /// the paths it was asked for.
    fn serve_job(listener: std::net::TcpListener) -> Vec<String> {
        let jobs = Jobs::default();
        let job = jobs.register("restore");
        let mut logged = 0;
        let mut log = |n: u64| {
            for _ in 0..n {
                job.log(format!("line {logged}"));
                logged += 1;
            }
        };
        let mut asked = Vec::new();
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let path = request.split(' ').nth(1).unwrap().to_string();
            asked.push(path.clone());
            let (code, mut status) = match asked.len() {
                1 => {
                    log(3);
                    (202, job.status())
                }
                n => {
                    log(if n == 2 { 250 } else { 1 });
                    let since = path.rsplit_once("since=").unwrap().1.parse().unwrap();
                    (200, job.status_since(since))
                }
            };
            let last = asked.len() == 3;
            if last {
                status.state = JobState::Succeeded;
                status.result = Some(mv_server::Response::from(Ack::OK));
            }
            let body = serde_json::to_vec(&Answer::ok(status)).unwrap();
            write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            conn.write_all(&body).unwrap();
            if last {
                return asked;
            }
        }
        unreachable!()
    }

    #[test]
    fn a_job_logging_past_the_cap_between_polls_is_followed_without_a_line_twice() {
        let port = mv_home::ports::free_loopback_port().unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let server = std::thread::spawn(move || serve_job(listener));
        let client = Client::Remote {
            base: format!("http://127.0.0.1:{port}"),
            token: "t".into(),
            timeout: Duration::from_secs(30),
        };
        let mut seen: Vec<String> = Vec::new();
        let mut dropped = Vec::new();
        let req = Request::ReindexMailbox {
            account: "a@d.test".into(),
            action: mv_server::request::ReindexAction::Start,
        };
        let ack: Ack = client
            .run_job(req, &mut |_, news| {
                dropped.push(news.dropped);
                seen.extend(news.lines.iter().cloned());
            })
            .unwrap();
        assert_eq!(ack, Ack::OK);
        let asked = server.join().unwrap();
        assert_eq!(
            asked,
            ["/v1/jobs", "/v1/jobs/1?since=3", "/v1/jobs/1?since=253"]
        );
        // Lines 3..53 went by unseen (the server keeps 200), and the follower
        // was told; every other line came once, in order.
        assert_eq!(dropped, [0, 50, 0]);
        let expected: Vec<String> = (0..3).chain(53..254).map(|i| format!("line {i}")).collect();
        assert_eq!(seen, expected);
    }
}
