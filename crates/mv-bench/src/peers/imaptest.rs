//! Dovecot's imaptest in stress mode (many clients doing random LOGIN, SELECT,
//! FETCH, STORE, EXPUNGE, APPEND, ... and checking every reply) as the load of the
//! `imap-stress` scenario: where the binary is, the mbox it appends from, and
//! what its output says (operations per command, average latencies, "Error:"
//! lines).
//!
//! imaptest is not packaged by Debian: `scripts/bench` and
//! `scripts/install-test-deps` build it into `target/imaptest` from the source
//! tarball kept beside the repository (`../shared/tools/imaptest`).

use crate::rng::SplitMix64;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Environment variable naming the imaptest binary (else `target/imaptest/imaptest`).
pub const ENV: &str = "MAILVAULT_BENCH_IMAPTEST";

/// The imaptest binary: `$MAILVAULT_BENCH_IMAPTEST`, else `target/imaptest/imaptest`
/// in the workspace; Err says how to get it.
pub fn find(workspace: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{ENV}={} is not a file", p.display()))
        };
    }
    let built = workspace.map(|w| w.join("target/imaptest/imaptest"));
    match built {
        Some(p) if p.is_file() => Ok(p),
        _ => Err(format!(
            "imaptest not built (scripts/bench builds it into target/imaptest from \
             ../shared/tools/imaptest; or set {ENV})"
        )),
    }
}

/// Subjects and bodies draw from these words (as the imaptest stress mboxes do).
const WORDS: [&str; 24] = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "invoice",
    "meeting",
    "report",
    "quarterly",
    "budget",
    "lunch",
    "project",
    "status",
    "update",
    "review",
    "server",
    "backup",
    "restore",
    "mail",
    "vault",
    "dovecot",
    "imap",
    "test",
    "agenda",
    "draft",
];

fn words(rng: &mut SplitMix64, lo: usize, hi: usize) -> String {
    let n = rng.range_usize(lo, hi);
    (0..n)
        .map(|_| *rng.pick(&WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An mbox of `n` plain messages (every fifth multipart with a small base64
/// attachment), 1 to 60 lines of text each, one hour apart: what imaptest's
/// APPENDs draw from. Deterministic from `seed`.
pub fn stress_mbox(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut out = String::new();
    for i in 0..n {
        let t = 1_700_000_000 + i as i64 * 3600 + rng.below(3000) as i64;
        let when = chrono::DateTime::from_timestamp(t, 0).expect("in range");
        let date = when.format("%a, %d %b %Y %H:%M:%S +0000");
        let from = format!("user{}@example{}.org", rng.range(1, 51), rng.range(1, 6));
        let to = format!("rcpt{}@test.local", rng.range(1, 21));
        let subject = words(&mut rng, 2, 8);
        let lines = rng.range_usize(3, 61);
        let body: Vec<String> = (0..lines).map(|_| words(&mut rng, 5, 16)).collect();
        // "From " at a line start would split the message in the mbox.
        let body = body.join("\n").replace("\nFrom ", "\n>From ");
        out.push_str(&format!(
            "From {from} {}\n",
            when.format("%a %b %d %H:%M:%S %Y")
        ));
        let head = format!(
            "Date: {date}\nFrom: Sender {i} <{from}>\nTo: {to}\nSubject: {subject}\n\
             Message-ID: <m{i}.{seed}@example.org>\n"
        );
        if i % 5 == 0 {
            let b = format!("b{i}");
            out.push_str(&format!(
                "{head}MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{b}\"\n\n\
                 --{b}\nContent-Type: text/plain; charset=us-ascii\n\n{body}\n--{b}\n\
                 Content-Type: application/octet-stream; name=\"a.bin\"\n\
                 Content-Transfer-Encoding: base64\n\n\
                 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n--{b}--\n\n"
            ));
        } else {
            out.push_str(&format!("{head}\n{body}\n\n"));
        }
    }
    out.into_bytes()
}

/// One stress run's settings.
#[derive(Debug, Clone)]
pub struct StressRun<'a> {
    pub binary: &'a Path,
    pub addr: SocketAddr,
    /// Login template with `%d` (`stress%d@bench.test`), numbered 1..=users.
    pub user_template: &'a str,
    pub users: usize,
    pub password: &'a str,
    pub mbox: &'a Path,
    pub clients: usize,
    pub secs: u64,
    /// Where imaptest's output is kept.
    pub log: &'a Path,
}

/// What imaptest reported.
#[derive(Debug, Clone, Default)]
pub struct StressOutput {
    /// (command column, total count) from the "Totals:" table.
    pub totals: Vec<(String, u64)>,
    /// imaptest's average LOGIN latency over the run (its "ms/cmd avg" lines,
    /// weighted by the LOGINs of each interval), in ms.
    pub login_avg_ms: Option<f64>,
    /// Every line with "Error:" (protocol violations, failed commands).
    pub errors: Vec<String>,
}

impl StressOutput {
    /// All operations (the "Totals:" row summed).
    pub fn operations(&self) -> u64 {
        self.totals.iter().map(|(_, n)| n).sum()
    }

    pub fn total_of(&self, column: &str) -> Option<u64> {
        self.totals.iter().find(|(c, _)| c == column).map(|x| x.1)
    }
}

/// Runs imaptest to its end (`secs` plus the time its clients take to log out).
pub fn run(r: &StressRun<'_>) -> anyhow::Result<StressOutput> {
    let log = std::fs::File::create(r.log)?;
    let mut child = Command::new(r.binary)
        .arg(format!("host={}", r.addr.ip()))
        .arg(format!("port={}", r.addr.port()))
        .arg(format!("user={}", r.user_template))
        .arg(format!("users=1-{}", r.users))
        .arg(format!("pass={}", r.password))
        .arg(format!("mbox={}", r.mbox.display()))
        .arg(format!("clients={}", r.clients))
        .arg(format!("secs={}", r.secs))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", r.binary.display()))?;
    // imaptest stops by itself after `secs`; a server that stalls must not hang
    // the benchmark.
    let deadline = std::time::Instant::now() + Duration::from_secs(r.secs + 120);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("imaptest did not finish within {} s", r.secs + 120);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(r.log).context("reading imaptest's output")?;
    let out = parse(&text);
    if out.totals.is_empty() {
        bail!(
            "imaptest ({status}) printed no totals; its output ends with:\n{}",
            tail(&text, 15)
        );
    }
    Ok(out)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads imaptest's stress output: a header of command names (`Logi List ...`),
/// a row of counts per second, every ten seconds a row of average ms per command
/// (`... ms/cmd avg`), and at the end `Totals:` with the header and one row of counts.
pub fn parse(text: &str) -> StressOutput {
    let mut out = StressOutput::default();
    let mut header: Vec<String> = Vec::new();
    let mut in_totals = false;
    // LOGINs counted since the last average row, and the weighted sum of averages.
    let (mut logins, mut weighted, mut weight) = (0u64, 0f64, 0u64);
    for line in text.lines() {
        if line.contains("Error:") {
            out.errors.push(line.trim().to_string());
            continue;
        }
        let t = line.trim();
        if t == "Totals:" {
            in_totals = true;
            continue;
        }
        let tokens: Vec<&str> = t.split_whitespace().collect();
        if tokens.first() == Some(&"Logi") {
            header = tokens.iter().map(|s| s.to_string()).collect();
            continue;
        }
        if header.is_empty() {
            continue;
        }
        let login_col = header.iter().position(|h| h == "Logi");
        if t.ends_with("ms/cmd avg") {
            let nums: Vec<f64> = tokens.iter().filter_map(|s| s.parse().ok()).collect();
            if let Some(avg) = login_col.and_then(|c| nums.get(c)) {
                weighted += avg * logins as f64;
                weight += logins;
            }
            logins = 0;
            continue;
        }
        // A row of counts: one integer per column (the per-second rows add
        // "clients/ max" after them); the percentage rows have '%' signs.
        let counts: Vec<u64> = tokens
            .iter()
            .take(header.len())
            .map_while(|s| s.parse().ok())
            .collect();
        if counts.len() != header.len() {
            continue;
        }
        if in_totals {
            out.totals = header.iter().cloned().zip(counts).collect();
            in_totals = false;
        } else if let Some(c) = login_col {
            logins += counts[c];
        }
    }
    if weight > 0 {
        out.login_avg_ms = Some(weighted / weight as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo 
100%  50%  50% 100% 100% 100%  50% 100% 100% 100% 100% 
                          30%                  5%      
  33   15   15   33   21   32    3    7   21   31   31   3/ 10
  51   27   24   51   50   76   14   20   50   51   51   3/ 10
  26    9    9    8    6    6    7    9    8   28    3 ms/cmd avg
Error: stress3@bench.test[12]: FETCH: Keyword used without being in FLAGS: $x
  10    1    1    1    1    1    1    1    1    1    1   3/ 10
  50   13   12   11   10   10   11   16   14   41    5 ms/cmd avg

Totals:
Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo 
100%  50%  50% 100% 100% 100%  50% 100% 100% 100% 100% 
                          30%                  5%      
 603  312  295  601  588  839  205  294  588  573  610 
";

    #[test]
    fn reads_totals_latency_and_errors() {
        let o = parse(SAMPLE);
        assert_eq!(o.total_of("Logi"), Some(603));
        assert_eq!(o.total_of("Logo"), Some(610));
        assert_eq!(
            o.operations(),
            603 + 312 + 295 + 601 + 588 + 839 + 205 + 294 + 588 + 573 + 610
        );
        assert_eq!(o.errors.len(), 1);
        assert!(o.errors[0].contains("Keyword used"));
        // (26 ms × 84 LOGINs + 50 ms × 10) / 94.
        let avg = o.login_avg_ms.unwrap();
        assert!(
            (avg - (26.0 * 84.0 + 50.0 * 10.0) / 94.0).abs() < 1e-9,
            "{avg}"
        );
    }

    #[test]
    fn no_totals_without_the_table() {
        assert!(parse("Error: connect() failed\n").totals.is_empty());
    }

    #[test]
    fn mbox_is_deterministic_and_split_by_from_lines() {
        let a = stress_mbox(20, 7);
        assert_eq!(a, stress_mbox(20, 7));
        assert_ne!(a, stress_mbox(20, 8));
        let text = String::from_utf8(a).unwrap();
        let starts = text.lines().filter(|l| l.starts_with("From ")).count();
        assert_eq!(starts, 20);
        assert_eq!(text.matches("\nMessage-ID: <m").count(), 20);
    }
}
