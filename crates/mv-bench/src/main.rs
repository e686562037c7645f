//! `mailvault-bench`: the benchmark harness. See the crate docs and BENCHMARKS.md.

use anyhow::Context;
use clap::{Parser, Subcommand};
use mv_bench::corpus::{self, Corpus, Scale};
use mv_bench::peers::mailvault::Mailvault;
use mv_bench::report::{self, Report};
use mv_bench::scenario::RunContext;
use mv_bench::scenarios;
use mv_bench::sysinfo::{self, Machine, human_bytes};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mailvault-bench",
    about = "Benchmarks for mailvault: a deterministic mail corpus and side-by-side runs against peers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write the corpus as .eml files, contacts/calendars and manifest.json.
    Corpus {
        #[arg(long, value_enum, default_value = "small")]
        scale: Scale,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write (required unless --plan-only).
        #[arg(long, required_unless_present = "plan_only")]
        out: Option<PathBuf>,
        /// Only draw the plan and print its totals (nothing is written).
        #[arg(long)]
        plan_only: bool,
    },
    /// Run scenarios and print a markdown table (or JSON).
    Run(RunArgs),
    /// List the scenarios.
    List,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Corpus scale the scenarios size themselves from.
    #[arg(long, value_enum, default_value = "medium")]
    scale: Scale,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Comma-separated scenario names (default: all; see `list`).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Runs per figure (figures are medians; use at least 3).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Write/update BENCHMARKS.md at the workspace root (or --benchmarks-md).
    #[arg(long)]
    write: bool,
    #[arg(long, value_name = "FILE")]
    benchmarks_md: Option<PathBuf>,
    /// Print JSON instead of markdown.
    #[arg(long)]
    json: bool,
    /// Where the servers' homes go (the disk measured). Default: target/mailvault-bench
    /// in the workspace.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The mailvault binary (default: next to this one, i.e. target/release/mailvault).
    #[arg(long)]
    mailvault: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,

    /// Keep each scenario's working directory (the loaded home, the targets) instead
    /// of deleting it at the end: for profiling one step by hand afterwards.
    #[arg(long)]
    keep: bool,
}

/// The workspace root: the nearest ancestor of `start` whose Cargo.toml has [workspace].
fn find_workspace(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|d| {
        let t = std::fs::read_to_string(d.join("Cargo.toml")).ok()?;
        t.contains("[workspace]").then(|| d.to_path_buf())
    })
}

fn revision(ws: Option<&Path>) -> String {
    let Some(ws) = ws else {
        return "unknown".into();
    };
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(ws)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev} + uncommitted changes")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    }
}

fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

fn now_utc() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string()
}

fn corpus_cmd(scale: Scale, seed: u64, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let c = Corpus::generate(scale, seed);
    let Some(out) = out else {
        let n = c.messages.len();
        let multi = c.messages.iter().filter(|m| m.rcpts.len() > 1).count();
        let big = c
            .messages
            .iter()
            .filter(|m| m.target_size >= 100 * 1024)
            .count();
        let replies = c
            .messages
            .iter()
            .filter(|m| m.in_reply_to.is_some())
            .count();
        println!(
            "{} scale, seed {seed}: {} accounts, {n} messages, planned {}; {} with attachments \
             (100 KB-5 MB), {} to several recipients, {} replies; {} placements",
            scale.name(),
            c.accounts.len(),
            human_bytes(c.planned_bytes()),
            big,
            multi,
            replies,
            c.messages.iter().map(|m| m.placements.len()).sum::<usize>()
        );
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "generating {} messages for {} accounts (planned {}) into {}",
        c.messages.len(),
        c.accounts.len(),
        human_bytes(c.planned_bytes()),
        out.display()
    );
    let m = corpus::write_corpus(&c, out)?;
    println!(
        "wrote {} messages ({}), {} placements, {} contacts, {} appointments for {} accounts in {:.1} s: {}",
        m.totals.messages,
        human_bytes(m.totals.bytes),
        m.totals.placements,
        m.totals.contacts,
        m.totals.appointments,
        m.totals.accounts,
        t.elapsed().as_secs_f64(),
        out.join("manifest.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_cmd(a: RunArgs) -> anyhow::Result<ExitCode> {
    let selected = scenarios::select(&a.scenarios)?;
    let cwd = std::env::current_dir()?;
    let workspace = find_workspace(&cwd).or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|e| find_workspace(&e))
    });
    let bench_dir = match &a.dir {
        Some(d) => d.clone(),
        None => workspace.as_ref().map_or_else(
            || cwd.join("mailvault-bench"),
            |w| w.join("target/mailvault-bench"),
        ),
    };
    std::fs::create_dir_all(&bench_dir)
        .with_context(|| format!("creating {}", bench_dir.display()))?;
    let bench_dir = bench_dir.canonicalize()?;
    let mailvault = match &a.mailvault {
        Some(p) => p.clone(),
        None => Mailvault::sibling_binary().context(
            "no mailvault binary next to mailvault-bench: build it (cargo build --release -p mv-cli) or pass --mailvault",
        )?,
    };
    let command = std::env::var("MAILVAULT_BENCH_COMMAND").unwrap_or_else(|_| {
        let mut args: Vec<String> = std::env::args().collect();
        if let Some(first) = args.first_mut() {
            *first = "mailvault-bench".into();
        }
        args.iter()
            .map(|x| shell_quote(x))
            .collect::<Vec<_>>()
            .join(" ")
    });
    if a.runs < 3 {
        eprintln!(
            "warning: --runs {} < 3: figures are not benchmark results",
            a.runs
        );
    }
    let ctx = RunContext {
        scale: a.scale,
        seed: a.seed,
        runs: a.runs.max(1),
        bench_dir: bench_dir.clone(),
        workspace: workspace.clone(),
        mailvault,
        verbose: !a.quiet,
        keep_work: a.keep,
    };
    let machine = Machine::describe(&bench_dir);
    if machine.disk.contains("tmpfs") {
        eprintln!(
            "warning: {} is on tmpfs: fsync is free there, the figures mean little",
            bench_dir.display()
        );
    }
    let started = now_utc();
    // The revision the binaries were just built from: read now, not when the
    // report is written, so that editing the tree during a long run does not
    // mark the figures as coming from uncommitted changes.
    let revision = revision(workspace.as_deref());
    let load_before = sysinfo::load_average();
    let mut reports = Vec::new();
    for s in &selected {
        ctx.progress(&format!("scenario {}: {}", s.name(), s.summary()));
        reports.push(
            s.run(&ctx)
                .with_context(|| format!("scenario {}", s.name()))?,
        );
    }
    let report = Report {
        machine,
        command,
        revision,
        started_utc: started,
        finished_utc: now_utc(),
        load_before,
        load_after: sysinfo::load_average(),
        scale: a.scale.name().into(),
        seed: a.seed,
        runs: ctx.runs,
        scenarios: reports,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::markdown(&report));
    }
    if a.write {
        let path = match (&a.benchmarks_md, &workspace) {
            (Some(p), _) => p.clone(),
            (None, Some(w)) => w.join("BENCHMARKS.md"),
            (None, None) => {
                anyhow::bail!("--write: workspace not found; pass --benchmarks-md FILE")
            }
        };
        report::write_benchmarks_md(&path, &report)?;
        eprintln!("updated {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Corpus {
            scale,
            seed,
            out,
            plan_only,
        } => corpus_cmd(scale, seed, if plan_only { None } else { out.as_deref() }),
        Cmd::Run(a) => run_cmd(a),
        Cmd::List => {
            for s in scenarios::registry() {
                println!("{:<8} {}", s.name(), s.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailvault-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
