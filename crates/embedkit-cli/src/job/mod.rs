//! A resumable embedding job's output. The output is written beside its destination
//! under a stable partial name (`.NAME.partial`, locked while a job writes it) and renamed
//! into place only when complete. An interrupted job (Ctrl-C, a kill, a crash) leaves the
//! partial; `--resume` keeps its complete rows (verified against the input's ids),
//! discards a torn tail, and continues after them.
//!
//! - JSON Lines: complete lines are kept; a torn last line is cut off.
//! - `.npy`: whole vectors are kept (the header is written with the dimension first and
//!   rewritten with the count at the end); the ids sidecar is cut to the same count.
//! - Parquet: each row group is written as its own small file in `.NAME.parts/` (a file
//!   without its footer is torn and dropped); the complete job merges them, a group at a
//!   time, into one file.
use std::sync::atomic::{AtomicBool, Ordering};

use std::cell::RefCell;
use std::rc::Rc;

use crate::corpus::{CorpusArgs, Id, Ids};
use crate::output::Progress;
use crate::vectors::{Shape, Vector};
use crate::IoArgs;

mod output;
mod recover;

pub use output::Output;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// A corpus job of `embed`, `sparse` or `late`: the output opened (and recovered with
/// --resume), the input's rows after those already done, progress, and the ids that
/// pair each result with its row.
pub struct Job {
    out: Output,
    progress: Progress,
    skipped: Rc<RefCell<u64>>,
    ids: Ids,
}

/// Opens the output, then the input after the rows the output already holds; returns the
/// job and the texts to embed, in order.
pub fn start(
    io: &mut IoArgs,
    corpus: &CorpusArgs,
    shape: Shape,
) -> anyhow::Result<(Job, impl Iterator<Item = embedkit::Result<String>>)> {
    let mut out = Output::open(
        io.output.as_deref(),
        io.output_format(),
        corpus.resume,
        shape,
    )?;
    let done = std::mem::take(&mut out.done);
    let texts = std::mem::take(&mut io.texts);
    let rows = crate::corpus::open(texts, io.input.as_deref(), corpus)?.after(done);
    catch_interrupt();
    let progress = Progress::new(rows.total, io.quiet);
    let skipped = rows.skipped.clone();
    let (texts, ids) = rows.split();
    let job = Job {
        out,
        progress,
        skipped,
        ids,
    };
    Ok((job, texts))
}

impl Job {
    /// How many rows an earlier run completed (the input continues after them).
    pub fn resumed(&self) -> u64 {
        self.out.resumed
    }

    /// Takes every result first (with its row's id), then writes the records `arrange`
    /// makes of them (a ranking, say).
    pub fn finish_arranged<T>(
        self,
        results: impl Iterator<Item = embedkit::Result<T>>,
        arrange: impl FnOnce(Vec<(Id, T)>) -> Vec<(Id, Vector)>,
    ) -> anyhow::Result<()> {
        let ids = self.ids;
        let all = results
            .map(|r| Ok((ids.next_id()?, r?)))
            .collect::<embedkit::Result<Vec<_>>>();
        let all = match all {
            Ok(all) => all,
            Err(e) => {
                self.out.abandon();
                return Err(e.into());
            }
        };
        crate::corpus::report_skipped(&self.skipped);
        let records = arrange(all);
        let progress = Progress {
            total: Some(records.len() as u64),
            ..self.progress
        };
        self.out.write(progress, records.into_iter().map(Ok))
    }

    /// Writes the results (one per text, in order) with their rows' ids.
    pub fn finish(
        self,
        results: impl Iterator<Item = embedkit::Result<Vector>>,
    ) -> anyhow::Result<()> {
        let ids = self.ids;
        let results = results.map(|v| {
            let v = v?;
            Ok((ids.next_id()?, v))
        });
        let done = self.out.write(self.progress, results);
        crate::corpus::report_skipped(&self.skipped);
        done
    }
}

/// Ctrl-C (SIGINT) sets a flag the writing loop checks between results: the result in
/// hand is written, the partial output kept, and the job ends resumable. A second
/// Ctrl-C while it finishes exits at once (the partial is still resumable).
fn catch_interrupt() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The job was interrupted and its partial output kept: the command exits with 130.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}
