//! The results table and the machine description around it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Scale;

/// One measured line: what it is, our figure, the reference figure, their ratio and the goal.
#[derive(Clone, Debug)]
pub struct Row {
    /// Suite name.
    pub suite: String,
    /// What was measured.
    pub measurement: String,
    /// Our figure, formatted with its unit.
    pub ours: String,
    /// The reference figure and what it is.
    pub reference: String,
    /// Ours relative to the reference in throughput terms (> 1: ours faster or smaller).
    pub ratio: Option<f64>,
    /// The goal, as text.
    pub goal: String,
    /// Whether the goal is met (`None`: no goal).
    pub met: Option<bool>,
}

impl Row {
    /// A row without a goal.
    pub fn new(suite: &str, measurement: impl Into<String>, ours: impl Into<String>) -> Self {
        Self {
            suite: suite.to_owned(),
            measurement: measurement.into(),
            ours: ours.into(),
            reference: "—".to_owned(),
            ratio: None,
            goal: "—".to_owned(),
            met: None,
        }
    }

    /// Sets the reference figure and the ratio.
    pub fn reference(mut self, reference: impl Into<String>, ratio: Option<f64>) -> Self {
        self.reference = reference.into();
        self.ratio = ratio;
        self
    }

    /// Sets the goal and whether it is met.
    pub fn goal(mut self, goal: impl Into<String>, met: bool) -> Self {
        self.goal = goal.into();
        self.met = Some(met);
        self
    }

    /// A suite that could not run.
    pub fn error(suite: &str, message: String) -> Self {
        let mut r = Self::new(suite, "**suite failed**", message.replace('\n', " "));
        r.met = Some(false);
        r
    }

    /// One line for the progress log on stderr.
    pub fn plain(&self) -> String {
        format!(
            "{}: ours {} | ref {} | ratio {} | goal {} {}",
            self.measurement,
            self.ours,
            self.reference,
            fmt_ratio(self.ratio),
            self.goal,
            met_text(self.met)
        )
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) if r >= 0.01 => format!("{r:.2}×"),
        Some(r) => format!("{r:.4}×"),
        None => "—".to_owned(),
    }
}

fn met_text(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    }
}

/// Everything measured in one run.
pub struct Results {
    started: chrono::DateTime<chrono::Utc>,
    machine: Vec<(String, String)>,
    suites: Vec<(String, Vec<Row>, Duration)>,
    scale: Scale,
    requested: Vec<String>,
}

impl Results {
    /// Describes the machine now.
    pub fn new(requested: &[String], scale: Scale) -> Self {
        Self {
            started: chrono::Utc::now(),
            machine: machine_info(),
            suites: Vec::new(),
            scale,
            requested: requested.to_vec(),
        }
    }

    /// Adds a finished suite.
    pub fn add(&mut self, suite: &str, rows: Vec<Row>, took: Duration) {
        self.suites.push((suite.to_owned(), rows, took));
    }

    /// The whole report as markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# aims-bench results\n");
        let _ = writeln!(
            s,
            "Run started {} (UTC); suites: {}{}.\n",
            self.started.format("%Y-%m-%d %H:%M:%S"),
            self.requested.join(", "),
            if self.scale.quick { " (`--quick`)" } else { "" }
        );
        let _ = writeln!(s, "| machine | |\n|---|---|");
        for (k, v) in &self.machine {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(s, "| load average at the end | {} |", loadavg());
        let _ = writeln!(
            s,
            "| sizes | {} ledger records, {} in-memory leaves, {} MiB per hashed file, {} git files |",
            self.scale.ledger_records,
            self.scale.memory_leaves,
            self.scale.hash_bytes >> 20,
            self.scale.git_files
        );
        let _ = writeln!(
            s,
            "\nRatio = ours ÷ reference in throughput terms (for times and sizes: reference ÷ ours), \
             so above 1× ours is faster or smaller.\n"
        );
        let _ = writeln!(
            s,
            "| suite | measurement | ours | reference | ratio | goal | met? |\n|---|---|---|---|---|---|---|"
        );
        for (_, rows, _) in &self.suites {
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    r.suite,
                    r.measurement,
                    r.ours,
                    r.reference,
                    fmt_ratio(r.ratio),
                    r.goal,
                    met_text(r.met)
                );
            }
        }
        let _ = writeln!(s, "\nSuite wall times (setup included):");
        for (name, _, took) in &self.suites {
            let _ = writeln!(s, "- {name}: {:.1} s", took.as_secs_f64());
        }
        s
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn command_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn machine_info() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(
            || "?".to_owned(),
            |kb| format!("{:.1} GiB", kb as f64 / 1048576.0),
        );
    let nproc = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mut v = vec![
        ("nproc".to_owned(), nproc.to_string()),
        (
            "CPU model (/proc/cpuinfo)".to_owned(),
            field("model name").unwrap_or_else(|| "?".to_owned()),
        ),
        (
            "SHA extensions".to_owned(),
            format!(
                "sha_ni {}, avx2 {}",
                if has("sha_ni") { "yes" } else { "no" },
                if has("avx2") { "yes" } else { "no" }
            ),
        ),
        ("memory".to_owned(), mem),
        ("load average at the start".to_owned(), loadavg()),
        (
            "kernel".to_owned(),
            command_line("uname", &["-sr"]).unwrap_or_else(|| "?".to_owned()),
        ),
        (
            "date".to_owned(),
            chrono::Utc::now().format("%Y-%m-%d").to_string(),
        ),
    ];
    for (name, cmd, args, words) in [
        ("rustc", "rustc", &["--version"][..], 2),
        ("sqlite3", "sqlite3", &["--version"][..], 1),
        ("openssl", "openssl", &["version"][..], 2),
        ("python3", "python3", &["--version"][..], 2),
        ("git", "git", &["--version"][..], 3),
    ] {
        let text = command_line(cmd, args)
            .map(|t| {
                t.split_whitespace()
                    .take(words)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "not installed".to_owned());
        v.push((name.to_owned(), text));
    }
    if let Some(rev) = command_line("git", &["rev-parse", "--short", "HEAD"]) {
        let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|s| !s.is_empty());
        v.push((
            "workspace commit".to_owned(),
            format!(
                "{rev}{}",
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
        ));
    }
    v
}
