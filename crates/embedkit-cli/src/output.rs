//! Output that is either complete or absent: a file is written beside its destination
//! under a temporary name and renamed into place only when everything succeeded.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

/// Writes one JSON line per result to `dest` (stdout when `None`), counting on stderr when
/// it is a terminal and the input is streamed. On any error a destination file is not
/// left behind, half written.
pub fn write_jsonl<T>(
    dest: Option<&Path>,
    streamed: bool,
    results: impl Iterator<Item = embedkit::Result<T>>,
    to_line: impl Fn(T) -> serde_json::Result<String>,
) -> anyhow::Result<()> {
    let progress = progress_bar(streamed);
    let mut sink = Sink::open(dest)?;
    let written = (|| -> anyhow::Result<()> {
        let out = sink.writer();
        for result in results {
            let mut line = to_line(result?)?;
            line.push('\n');
            out.write_all(line.as_bytes())?;
            progress.inc(1);
        }
        Ok(())
    })();
    progress.finish_and_clear();
    match written {
        Ok(()) => sink.commit(),
        Err(e) => {
            sink.abandon();
            Err(e)
        }
    }
}

/// A document counter on stderr, only when stderr is a terminal and input is streamed.
fn progress_bar(streamed: bool) -> ProgressBar {
    if !streamed || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} documents embedded in {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

pub enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File {
        writer: BufWriter<File>,
        tmp: PathBuf,
        dest: PathBuf,
    },
}

impl Sink {
    pub fn open(dest: Option<&Path>) -> anyhow::Result<Sink> {
        match dest {
            None => Ok(Sink::Stdout(BufWriter::new(io::stdout()))),
            Some(p) if p == Path::new("-") => Ok(Sink::Stdout(BufWriter::new(io::stdout()))),
            Some(dest) => {
                let dir = dest
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let name = dest
                    .file_name()
                    .ok_or_else(|| anyhow::anyhow!("--output {} is not a file", dest.display()))?;
                let tmp = dir.join(format!(
                    ".{}.{}.partial",
                    name.to_string_lossy(),
                    std::process::id()
                ));
                let file = File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
                Ok(Sink::File {
                    writer: BufWriter::new(file),
                    tmp,
                    dest: dest.to_path_buf(),
                })
            }
        }
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File { writer, .. } => writer,
        }
    }

    /// Flushes and, for a file, moves it into place.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut w) => Ok(w.flush()?),
            Sink::File { writer, tmp, dest } => {
                let file = writer
                    .into_inner()
                    .map_err(|e| anyhow::anyhow!("writing {}: {}", tmp.display(), e.error()))?;
                file.sync_all()?;
                drop(file);
                std::fs::rename(&tmp, &dest).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    anyhow::anyhow!("cannot move output into {}: {e}", dest.display())
                })
            }
        }
    }

    /// Drops a partial file; what was written to stdout stays written.
    pub fn abandon(self) {
        if let Sink::File { writer, tmp, .. } = self {
            drop(writer);
            let _ = std::fs::remove_file(tmp);
        }
    }
}
