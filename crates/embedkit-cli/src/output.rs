//! How a job shows itself on stderr (progress, a closing summary) and where a partial
//! output lives; the one writer of every command's records is `job::Output`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// How a job reports itself on stderr: a progress display while it runs (only on a
/// terminal), and a one-line summary when it ends (unless quiet).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The number of results, when known before the job starts.
    pub total: Option<u64>,
    pub quiet: bool,
    /// What is counted: "documents", "images".
    pub noun: &'static str,
}

impl Progress {
    pub fn new(total: Option<u64>, quiet: bool) -> Self {
        Progress {
            total,
            quiet,
            noun: "documents",
        }
    }

    /// A bar with count, total, rate and ETA when the total is known, else a counter with
    /// the rate; redrawn every 200 ms, so it moves even while a batch runs.
    pub fn bar(&self) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let (bar, template) = match self.total {
            Some(n) => (
                ProgressBar::new(n),
                "{bar:30} {human_pos}/{human_len} {noun}  {per_sec}  ETA {eta}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner} {human_pos} {noun}  {per_sec}  {elapsed}",
            ),
        };
        let template = template.replace("{noun}", self.noun);
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "per_sec",
                |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", s.per_sec());
                },
            );
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    }

    pub fn summary(
        &self,
        count: u64,
        elapsed: std::time::Duration,
        bytes: u64,
        dest: Option<&Path>,
    ) {
        if self.quiet {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
        let target = match dest {
            Some(p) if p != Path::new("-") => p.display().to_string(),
            _ => "stdout".to_string(),
        };
        eprintln!(
            "embedkit: {count} {} in {secs:.1} s ({rate:.1}/s), {} to {target}",
            self.noun,
            human_bytes(bytes)
        );
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// `dir/.NAME.<suffix>` beside `dest`: where its output is written until complete.
pub fn partial_path(dest: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("--output {} is not a file", dest.display()))?;
    Ok(dir.join(format!(".{}.{suffix}", name.to_string_lossy())))
}
