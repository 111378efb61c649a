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

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use std::cell::RefCell;
use std::rc::Rc;

use crate::corpus::{CorpusArgs, Id, Ids};
use crate::output::{partial_path, Progress};
use crate::vectors::{
    npy_header, record_batch, OutputFormat, Shape, Vector, NPY_HEADER, ROW_GROUP,
};
use crate::IoArgs;

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

/// Where the results go, opened (and, with `resume`, recovered) before the input is read.
pub struct Output {
    dest: Option<PathBuf>,
    kind: Kind,
    /// The ids of the rows an earlier run completed, in order (taken by the caller).
    pub done: Vec<Id>,
    /// How many rows that is.
    resumed: u64,
    /// Removes a fresh partial that never got a row when the job fails before writing
    /// (a model that does not load, say): nothing is left behind.
    guard: PartialGuard,
}

struct PartialGuard {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    armed: bool,
}

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if self.armed {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
            for d in &self.dirs {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

enum Kind {
    Stdout(BufWriter<std::io::Stdout>),
    Jsonl {
        partial: PathBuf,
        file: BufWriter<File>,
    },
    Npy {
        partial: PathBuf,
        data: BufWriter<File>,
        ids_partial: PathBuf,
        ids: BufWriter<File>,
        dim: Option<usize>,
        /// The element type (`<f4`, `|i1`, `|u1`) and its size in bytes.
        dtype: (&'static str, usize),
    },
    Parquet {
        partial: PathBuf,
        lock: File,
        parts: PathBuf,
        next_part: usize,
        string_ids: Option<bool>,
    },
}

/// Opens `path` for writing, taking its lock (no two jobs write one output).
fn open_locked(path: &Path, truncate: bool) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.try_lock()
        .map_err(|_| anyhow::anyhow!("another embedkit job is writing {}", path.display()))?;
    if truncate {
        file.set_len(0)?;
    }
    Ok(file)
}

fn ids_from_lines(lines: &[Value]) -> anyhow::Result<Vec<Id>> {
    lines.iter().map(id_of_json).collect()
}

fn id_of_json(v: &Value) -> anyhow::Result<Id> {
    match v {
        Value::String(s) => Ok(Id::Str(s.clone())),
        Value::Number(n) if n.is_i64() => Ok(Id::Int(n.as_i64().unwrap_or_default())),
        other => anyhow::bail!("an id that is not a string or an integer: {other}"),
    }
}

/// The complete JSON lines at the start of `file` (each ends in a newline and parses) and
/// the byte length they span; a torn or garbled tail is not counted. `key` picks a value
/// of each line (the id); `None` keeps the whole line's value.
fn complete_lines(file: &mut File, key: Option<&str>) -> anyhow::Result<(Vec<Value>, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *file);
    let (mut values, mut len, mut line) = (Vec::new(), 0u64, Vec::new());
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&line) else {
            break;
        };
        let value = match key {
            Some(k) => match value.get(k) {
                Some(v) => v.clone(),
                None => break,
            },
            None => value,
        };
        values.push(value);
        len += n as u64;
    }
    Ok((values, len))
}

impl Output {
    pub fn open(
        dest: Option<&Path>,
        format: OutputFormat,
        resume: bool,
        shape: Shape,
    ) -> anyhow::Result<Output> {
        shape.check(format)?;
        let dest = dest.filter(|p| *p != Path::new("-"));
        let Some(dest) = dest else {
            if format != OutputFormat::Jsonl {
                anyhow::bail!("{format:?} output goes to a file: give it with --output");
            }
            if resume {
                anyhow::bail!("--resume needs --output FILE");
            }
            return Ok(Output {
                dest: None,
                kind: Kind::Stdout(BufWriter::new(std::io::stdout())),
                done: Vec::new(),
                resumed: 0,
                guard: PartialGuard {
                    files: Vec::new(),
                    dirs: Vec::new(),
                    armed: false,
                },
            });
        };
        let partial = partial_path(dest, "partial")?;
        let done;
        let kind = match format {
            OutputFormat::Jsonl => {
                let mut file = open_locked(&partial, !resume)?;
                let (ids, len) = complete_lines(&mut file, Some("id"))?;
                done = ids_from_lines(&ids)?;
                file.set_len(len)?;
                file.seek(SeekFrom::Start(len))?;
                Kind::Jsonl {
                    partial,
                    file: BufWriter::new(file),
                }
            }
            OutputFormat::Npy => {
                let mut data = open_locked(&partial, !resume)?;
                let ids_partial = partial_path(dest, "ids.partial")?;
                let mut ids = open_locked(&ids_partial, !resume)?;
                let (lines, _) = complete_lines(&mut ids, None)?;
                let dtype = shape.npy_dtype();
                let dim = npy_dim(&mut data, dtype.0)?;
                let row_bytes = |d: usize| (dtype.1 * d) as u64;
                let rows_in_data = match dim {
                    Some(d) if d > 0 => {
                        (data.metadata()?.len().saturating_sub(NPY_HEADER as u64)) / row_bytes(d)
                    }
                    _ => 0,
                };
                let rows = rows_in_data.min(lines.len() as u64);
                done = ids_from_lines(&lines[..rows as usize])?;
                // Keep exactly `rows` of each: the vectors and their ids.
                let data_len = if dim.is_some() {
                    NPY_HEADER as u64 + rows * row_bytes(dim.unwrap_or(0))
                } else {
                    0
                };
                data.set_len(data_len)?;
                data.seek(SeekFrom::Start(data_len))?;
                let ids_len = line_offset(&mut ids, rows)?;
                ids.set_len(ids_len)?;
                ids.seek(SeekFrom::Start(ids_len))?;
                Kind::Npy {
                    partial,
                    data: BufWriter::new(data),
                    ids_partial,
                    ids: BufWriter::new(ids),
                    dim,
                    dtype,
                }
            }
            OutputFormat::Parquet => {
                let lock = open_locked(&partial, true)?;
                let parts = partial_path(dest, "parts")?;
                if !resume && parts.exists() {
                    std::fs::remove_dir_all(&parts)?;
                }
                std::fs::create_dir_all(&parts)?;
                let (ids, next_part, string_ids) = recover_parts(&parts)?;
                done = ids;
                Kind::Parquet {
                    partial,
                    lock,
                    parts,
                    next_part,
                    string_ids,
                }
            }
        };
        let (files, dirs) = match &kind {
            Kind::Stdout(_) => (Vec::new(), Vec::new()),
            Kind::Jsonl { partial, .. } => (vec![partial.clone()], Vec::new()),
            Kind::Npy {
                partial,
                ids_partial,
                ..
            } => (vec![partial.clone(), ids_partial.clone()], Vec::new()),
            Kind::Parquet { partial, parts, .. } => (vec![partial.clone()], vec![parts.clone()]),
        };
        Ok(Output {
            dest: Some(dest.to_path_buf()),
            kind,
            resumed: done.len() as u64,
            guard: PartialGuard {
                files,
                dirs,
                armed: done.is_empty(),
            },
            done,
        })
    }

    /// Writes the results after the done rows, with progress; renames the output into
    /// place when all are written. Interrupted, it keeps the partial and says how to go on.
    pub fn write(
        mut self,
        progress: Progress,
        results: impl Iterator<Item = embedkit::Result<(Id, Vector)>>,
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let bar = progress.bar();
        let before = self.resumed;
        bar.set_position(before);
        let mut group: Vec<(Id, Vector)> = Vec::new();
        let mut count = 0u64;
        let mut bytes = 0u64;
        let mut stopped = false;
        let run = || -> anyhow::Result<()> {
            for result in results {
                let (id, v) = result?;
                bytes += self.put(id, v, &mut group)?;
                // A row written is worth resuming: the partial stays if the job fails.
                self.guard.armed = false;
                count += 1;
                bar.inc(1);
                if interrupted() {
                    stopped = true;
                    break;
                }
            }
            if !group.is_empty() {
                self.write_part(&mut group)?;
            }
            Ok(())
        };
        let ran = run();
        if let Err(e) = ran {
            bar.finish_and_clear();
            // Rows already written stay resumable; an output with none is removed.
            if before + count > 0 && self.dest.is_some() {
                self.keep()?;
                eprintln!(
                    "embedkit: the partial output keeps the rows completed so far; after \
                     fixing the cause, the same command with --resume continues after them"
                );
            } else {
                self.abandon();
            }
            return Err(e);
        }
        bar.finish_and_clear();
        if stopped {
            self.keep()?;
            match self.dest.as_deref() {
                Some(dest) => eprintln!(
                    "embedkit: interrupted after {} documents; the partial output is kept: \
                     run the same command with --resume to finish {}",
                    before + count,
                    dest.display()
                ),
                None => eprintln!("embedkit: interrupted after {} documents", before + count),
            }
            return Err(Interrupted.into());
        }
        let dest = self.dest.clone();
        let total = self.commit()?;
        bytes = total.unwrap_or(bytes);
        progress.summary(count, started.elapsed(), bytes, dest.as_deref());
        Ok(())
    }

    /// Writes one result (Parquet: into the group, written when full); returns bytes.
    fn put(&mut self, id: Id, v: Vector, group: &mut Vec<(Id, Vector)>) -> anyhow::Result<u64> {
        match &mut self.kind {
            Kind::Stdout(w) => write_line(w, &id, &v),
            Kind::Jsonl { file, .. } => write_line(file, &id, &v),
            Kind::Npy {
                data,
                ids,
                dim,
                dtype,
                ..
            } => {
                let bytes: Vec<u8> = match v {
                    Vector::Dense(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    Vector::Score { score, .. } => score.to_le_bytes().to_vec(),
                    Vector::Int8(v) => v.iter().map(|x| *x as u8).collect(),
                    Vector::Binary(v) => v,
                    _ => anyhow::bail!(".npy holds rows of numbers; use .parquet or .jsonl"),
                };
                let n = bytes.len() / dtype.1;
                if dim.is_none() {
                    data.write_all(&npy_header(0, n, dtype.0))?;
                }
                let d = *dim.get_or_insert(n);
                anyhow::ensure!(n == d, "vectors of {n} and {d} numbers");
                data.write_all(&bytes)?;
                let mut line = serde_json::to_string(&id.to_json())?;
                line.push('\n');
                ids.write_all(line.as_bytes())?;
                Ok(bytes.len() as u64)
            }
            Kind::Parquet { .. } => {
                group.push((id, v));
                if group.len() == ROW_GROUP {
                    self.write_part(group)?;
                }
                Ok(0)
            }
        }
    }

    /// Removes the partial output (nothing in it is worth resuming).
    fn abandon(self) {
        match self.kind {
            Kind::Stdout(_) => {}
            Kind::Jsonl { partial, file } => {
                drop(file);
                let _ = std::fs::remove_file(partial);
            }
            Kind::Npy {
                partial,
                data,
                ids_partial,
                ids,
                ..
            } => {
                drop((data, ids));
                let _ = std::fs::remove_file(partial);
                let _ = std::fs::remove_file(ids_partial);
            }
            Kind::Parquet {
                partial,
                lock,
                parts,
                ..
            } => {
                drop(lock);
                let _ = std::fs::remove_dir_all(parts);
                let _ = std::fs::remove_file(partial);
            }
        }
    }

    fn write_part(&mut self, group: &mut Vec<(Id, Vector)>) -> anyhow::Result<()> {
        let Kind::Parquet {
            parts,
            next_part,
            string_ids,
            ..
        } = &mut self.kind
        else {
            return Ok(());
        };
        let strings = *string_ids.get_or_insert(matches!(group[0].0, Id::Str(_)));
        let batch = record_batch(group, strings)?;
        group.clear();
        let name = format!("part-{:08}.parquet", *next_part);
        let tmp = parts.join(format!(".{name}.tmp"));
        let file = File::create(&tmp)?;
        let mut w = ArrowWriter::try_new(file, batch.schema(), None)?;
        w.write(&batch)?;
        w.close()?;
        std::fs::rename(&tmp, parts.join(&name))?;
        *next_part += 1;
        Ok(())
    }

    /// Flushes what was written, leaving the partial for --resume.
    fn keep(&mut self) -> anyhow::Result<()> {
        match &mut self.kind {
            Kind::Stdout(w) => w.flush()?,
            Kind::Jsonl { file, .. } => file.flush()?,
            Kind::Npy { data, ids, .. } => {
                data.flush()?;
                ids.flush()?;
            }
            Kind::Parquet { .. } => {}
        }
        Ok(())
    }

    /// Completes the output: the final file appears under its name. Returns its size.
    fn commit(self) -> anyhow::Result<Option<u64>> {
        let Some(dest) = self.dest else {
            if let Kind::Stdout(mut w) = self.kind {
                w.flush()?;
            }
            return Ok(None);
        };
        match self.kind {
            Kind::Stdout(_) => {}
            Kind::Jsonl { partial, file } => {
                finish_file(file)?;
                rename(&partial, &dest)?;
            }
            Kind::Npy {
                partial,
                mut data,
                ids_partial,
                ids,
                dim,
                dtype,
            } => {
                let dim = dim.unwrap_or(0);
                data.flush()?;
                let rows = match dim {
                    0 => 0,
                    d => {
                        (data.get_ref().metadata()?.len() - NPY_HEADER as u64)
                            / (dtype.1 * d) as u64
                    }
                };
                data.seek(SeekFrom::Start(0))?;
                data.write_all(&npy_header(rows, dim, dtype.0))?;
                finish_file(data)?;
                finish_file(ids)?;
                rename(&ids_partial, &crate::vectors::sidecar_path(&dest))?;
                rename(&partial, &dest)?;
            }
            Kind::Parquet {
                partial,
                lock,
                parts,
                ..
            } => {
                merge_parts(&parts, lock)?;
                rename(&partial, &dest)?;
                std::fs::remove_dir_all(&parts)?;
            }
        }
        Ok(std::fs::metadata(&dest).ok().map(|m| m.len()))
    }
}

fn write_line(w: &mut impl Write, id: &Id, v: &Vector) -> anyhow::Result<u64> {
    let mut line = serde_json::to_string(&v.to_json(id))?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    Ok(line.len() as u64)
}

fn finish_file(w: BufWriter<File>) -> anyhow::Result<()> {
    let file = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the output: {}", e.error()))?;
    file.sync_all()?;
    Ok(())
}

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to)
        .map_err(|e| anyhow::anyhow!("cannot move output into {}: {e}", to.display()))
}

/// The dimension an `.npy` partial's header declares (None for an empty file).
fn npy_dim(file: &mut File, descr: &str) -> anyhow::Result<Option<usize>> {
    let len = file.metadata()?.len();
    if len < NPY_HEADER as u64 {
        file.set_len(0)?;
        return Ok(None);
    }
    let mut header = vec![0u8; NPY_HEADER];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)?;
    let text = String::from_utf8_lossy(&header);
    anyhow::ensure!(
        text.contains(&format!("'descr': '{descr}'")),
        "the partial .npy output holds another element type than {descr}; run the same \
         command (the same --output-dtype) with --resume, or without it to start over"
    );
    let dim = text
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.split(',').nth(1))
        .and_then(|d| d.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the partial .npy output has no valid header"))?;
    Ok(Some(dim))
}

/// The byte offset after the first `n` lines of `file`.
fn line_offset(file: &mut File, n: u64) -> anyhow::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *file);
    let (mut offset, mut line) = (0u64, Vec::new());
    for _ in 0..n {
        line.clear();
        offset += reader.read_until(b'\n', &mut line)? as u64;
    }
    Ok(offset)
}

/// The ids in the complete parts, the next part's number, and whether ids are strings.
/// A part that does not read back whole (torn by a kill) and all after it are removed.
fn recover_parts(parts: &Path) -> anyhow::Result<(Vec<Id>, usize, Option<bool>)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_schema::DataType;
    let mut ids = Vec::new();
    let mut string_ids = None;
    let mut n = 0;
    loop {
        let path = parts.join(format!("part-{n:08}.parquet"));
        if !path.exists() {
            break;
        }
        let read = (|| -> anyhow::Result<Vec<Id>> {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path)?)?.build()?;
            let mut out = Vec::new();
            for batch in reader {
                let batch = batch?;
                let col = batch.column(0);
                match col.data_type() {
                    DataType::Int64 => {
                        string_ids = Some(false);
                        out.extend(
                            col.as_primitive::<Int64Type>()
                                .values()
                                .iter()
                                .map(|i| Id::Int(*i)),
                        );
                    }
                    _ => {
                        string_ids = Some(true);
                        out.extend(
                            col.as_string::<i32>()
                                .iter()
                                .map(|s| Id::Str(s.unwrap_or_default().to_string())),
                        );
                    }
                }
            }
            Ok(out)
        })();
        match read {
            Ok(part) => ids.extend(part),
            Err(_) => break,
        }
        n += 1;
    }
    // Anything else in the folder (a torn part, a temporary file) is not part of the job.
    for entry in std::fs::read_dir(parts)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let keep = name
            .strip_prefix("part-")
            .and_then(|s| s.strip_suffix(".parquet"))
            .and_then(|s| s.parse::<usize>().ok())
            .is_some_and(|i| i < n);
        if !keep {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok((ids, n, string_ids))
}

/// Writes every part's row groups, in order, into one Parquet file (`out`, the locked
/// partial), a group at a time.
fn merge_parts(parts: &Path, out: File) -> anyhow::Result<()> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(parts)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    names.sort();
    out.set_len(0)?;
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let mut writer: Option<ArrowWriter<BufWriter<File>>> = None;
    let mut out = Some(BufWriter::new(out));
    for name in &names {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(name)?)?
            .with_batch_size(ROW_GROUP)
            .build()?;
        for batch in reader {
            let batch = batch?;
            if writer.is_none() {
                let file = out
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("no output file"))?;
                writer = Some(ArrowWriter::try_new(
                    file,
                    batch.schema(),
                    Some(props.clone()),
                )?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(&batch)?;
                w.flush()?;
            }
        }
    }
    match (writer, out) {
        (Some(w), _) => {
            let file = w.into_inner()?;
            finish_file(file)?;
        }
        (None, Some(file)) => {
            // No rows: a file with the id column only (no kind is known).
            let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                "id",
                arrow_schema::DataType::Int64,
                false,
            )]));
            let w = ArrowWriter::try_new(file, schema, None)?;
            finish_file(w.into_inner()?)?;
        }
        (None, None) => {}
    }
    Ok(())
}
