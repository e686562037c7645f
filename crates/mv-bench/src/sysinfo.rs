//! The machine a benchmark ran on, and per-process resource figures from /proc.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub os: String,
    /// The filesystem of the benchmark directory (`df -hT` line).
    pub disk: String,
    pub bench_dir: String,
}

impl Machine {
    pub fn describe(bench_dir: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| "unknown OS".into());
        Machine {
            cpu,
            cores,
            memory_bytes,
            kernel,
            os,
            disk: df(bench_dir),
            bench_dir: shown(bench_dir),
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{}, {} cores, {} RAM, {}, Linux {}; bench dir {} on {}",
            self.cpu,
            self.cores,
            human_bytes(self.memory_bytes),
            self.os,
            self.kernel,
            self.bench_dir,
            self.disk
        )
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// "device type size" of the filesystem holding `dir`, from `df -hT`.
fn df(dir: &Path) -> String {
    let out = std::process::Command::new("df")
        .arg("-hT")
        .arg(dir)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let line = text.lines().nth(1).unwrap_or("");
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 7 {
                format!("{} {} ({} total, {} free)", f[1], f[0], f[2], f[4])
            } else {
                line.to_string()
            }
        }
        _ => "unknown filesystem (df failed)".into(),
    }
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Peak resident set (VmHWM) of a process, in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Resident set (VmRSS) now, summed over a process and its descendants, in bytes.
pub fn tree_rss(root: u32) -> Option<u64> {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        })
        .reduce(|a, b| a + b)
}

/// Bytes the process caused to be written to storage (`write_bytes` of
/// /proc/PID/io; needs the same user or root, and task I/O accounting).
pub fn write_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The process and all its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // pid (comm) state ppid ...; comm may contain spaces and parens.
                if let Some(rest) = stat.rsplit_once(')').map(|x| x.1)
                    && let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok())
                {
                    parent.push((pid, ppid));
                }
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// Resource use of a server (a process tree) over one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Resources {
    /// Sum over the tree's processes of each one's peak RSS (VmHWM).
    pub peak_rss_bytes: Option<u64>,
    /// Sum over the tree's processes of `write_bytes` during the run.
    pub write_bytes: Option<u64>,
    pub processes: usize,
}

/// Samples a process tree every 100 ms (so that processes that exit during the run
/// are counted too), keeping each process's last figures.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    seen: Arc<Seen>,
}

impl Sampler {
    pub fn start(root: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Seen> = Arc::default();
        sample(root, &seen);
        let handle = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    sample(root, &seen);
                }
                sample(root, &seen);
            })
        };
        Sampler {
            stop,
            handle: Some(handle),
            seen,
        }
    }

    pub fn finish(mut self) -> Resources {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let seen = self.seen.lock().unwrap();
        let rss: Option<u64> = seen.values().map(|v| v.peak_rss).sum();
        let writes: Option<u64> = seen
            .values()
            .map(|v| match (v.write_first, v.write_last) {
                (Some(f), Some(l)) => Some(l.saturating_sub(f)),
                _ => None,
            })
            .sum();
        Resources {
            peak_rss_bytes: rss,
            write_bytes: writes,
            processes: seen.len(),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What was seen of one process.
#[derive(Debug, Default)]
struct ProcFigures {
    peak_rss: Option<u64>,
    /// write_bytes when first seen (0 for a process that started during the run).
    write_first: Option<u64>,
    /// write_bytes when last seen.
    write_last: Option<u64>,
}

type Seen = Mutex<BTreeMap<u32, ProcFigures>>;

fn sample(root: u32, seen: &Seen) {
    let pids = process_tree(root);
    let mut seen = seen.lock().unwrap();
    let first_sample = seen.is_empty();
    for pid in pids {
        let rss = peak_rss(pid);
        let wb = write_bytes(pid);
        if rss.is_none() && wb.is_none() {
            continue; // exited between listing and reading
        }
        let e = seen.entry(pid).or_insert_with(|| ProcFigures {
            write_first: if first_sample { wb } else { wb.map(|_| 0) },
            ..Default::default()
        });
        if rss.is_some() {
            e.peak_rss = rss.max(e.peak_rss);
        }
        if wb.is_some() {
            e.write_last = wb;
        }
    }
}

/// A path as reports print it: relative to the working directory (the repo root
/// when run through scripts/bench), so reports never carry a machine's absolute paths.
pub fn shown(path: &std::path::Path) -> String {
    match std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.to_path_buf()))
    {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}
