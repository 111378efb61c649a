//! Reading back what an earlier run wrote: complete lines, whole `.npy` rows, Parquet
//! parts with footers; and the locked partial files themselves.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::corpus::Id;
use crate::vectors::{NPY_HEADER, ROW_GROUP};

/// Opens `path` for writing, taking its lock (no two jobs write one output).
pub(super) fn open_locked(path: &Path, truncate: bool) -> anyhow::Result<File> {
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

pub(super) fn ids_from_lines(lines: &[Value]) -> anyhow::Result<Vec<Id>> {
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
pub(super) fn complete_lines(
    file: &mut File,
    key: Option<&str>,
) -> anyhow::Result<(Vec<Value>, u64)> {
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

/// The dimension an `.npy` partial's header declares (None for an empty file).
pub(super) fn npy_dim(file: &mut File, descr: &str) -> anyhow::Result<Option<usize>> {
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
pub(super) fn line_offset(file: &mut File, n: u64) -> anyhow::Result<u64> {
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
pub(super) fn recover_parts(parts: &Path) -> anyhow::Result<(Vec<Id>, usize, Option<bool>)> {
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
pub(super) fn merge_parts(parts: &Path, out: File) -> anyhow::Result<()> {
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

pub(super) fn finish_file(w: BufWriter<File>) -> anyhow::Result<()> {
    let file = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the output: {}", e.error()))?;
    file.sync_all()?;
    Ok(())
}
