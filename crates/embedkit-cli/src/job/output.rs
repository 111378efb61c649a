//! The writer of every command's records, in each format, resumable.

use std::fs::File;

use anyhow::Context;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;

use crate::corpus::Id;
use crate::output::{partial_path, Progress};
use crate::vectors::{
    npy_header, record_batch, OutputFormat, Shape, Vector, NPY_HEADER, ROW_GROUP,
};

use super::recover::*;
use super::{interrupted, Interrupted};

/// Where the results go, opened (and, with `resume`, recovered) before the input is read.
pub struct Output {
    dest: Option<PathBuf>,
    kind: Kind,
    /// The ids of the rows an earlier run completed, in order (taken by the caller).
    pub done: Vec<Id>,
    /// How many rows that is.
    pub(super) resumed: u64,
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
    /// Stdout, or a destination that is not a regular file (a device, a FIFO): written
    /// straight through, with no partial file and no rename.
    Stream(BufWriter<Box<dyn Write + Send>>),
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

impl Output {
    /// Records written straight to `w` (JSON Lines).
    fn stream(w: Box<dyn Write + Send>) -> Output {
        Output {
            dest: None,
            kind: Kind::Stream(BufWriter::new(w)),
            done: Vec::new(),
            resumed: 0,
            guard: PartialGuard {
                files: Vec::new(),
                dirs: Vec::new(),
                armed: false,
            },
        }
    }

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
            return Ok(Output::stream(Box::new(std::io::stdout())));
        };
        // A device or FIFO (/dev/null, /dev/stdout, a named pipe): renaming a finished
        // partial file onto it would replace the device, so it is written straight
        // through, as stdout is.
        if std::fs::metadata(dest).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            if format != OutputFormat::Jsonl {
                anyhow::bail!(
                    "{} is not a regular file: {format:?} output needs one (JSON Lines can \
                     stream to it)",
                    dest.display()
                );
            }
            if resume {
                anyhow::bail!("--resume needs a regular file, not {}", dest.display());
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(dest)
                .with_context(|| format!("opening {}", dest.display()))?;
            return Ok(Output::stream(Box::new(file)));
        }
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
            Kind::Stream(_) => (Vec::new(), Vec::new()),
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
            Kind::Stream(w) => write_line(w, &id, &v),
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
    pub(super) fn abandon(self) {
        match self.kind {
            Kind::Stream(_) => {}
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
            Kind::Stream(w) => w.flush()?,
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
            if let Kind::Stream(mut w) = self.kind {
                w.flush()?;
            }
            return Ok(None);
        };
        match self.kind {
            Kind::Stream(_) => {}
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

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to)
        .map_err(|e| anyhow::anyhow!("cannot move output into {}: {e}", to.display()))
}
