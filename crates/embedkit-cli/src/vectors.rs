//! Results with their ids, written as JSON Lines, Parquet (row groups, bounded memory) or
//! NumPy `.npy` (dense only, with a sidecar of ids). Every file is written under a
//! temporary name and renamed only when complete.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Int64Builder, ListBuilder, StringBuilder, UInt32Builder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::ValueEnum;
use ndarray::Array2;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::json;

use crate::corpus::Id;
use crate::output::{Progress, Sink};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Jsonl,
    Parquet,
    Npy,
}

impl OutputFormat {
    /// By the output's extension: .parquet, .npy; anything else (and stdout) JSON Lines.
    pub fn of(dest: Option<&Path>, explicit: Option<OutputFormat>) -> OutputFormat {
        explicit.unwrap_or_else(|| {
            match dest
                .and_then(|p| p.extension())
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .as_deref()
            {
                Some("parquet") | Some("pq") => OutputFormat::Parquet,
                Some("npy") => OutputFormat::Npy,
                _ => OutputFormat::Jsonl,
            }
        })
    }
}

/// One result: a dense vector, a sparse one, or a matrix of token vectors.
pub enum Vector {
    Dense(Vec<f32>),
    Sparse { indices: Vec<u32>, values: Vec<f32> },
    Multi(Array2<f32>),
}

impl Vector {
    fn to_json(&self, id: &Id) -> serde_json::Value {
        match self {
            Vector::Dense(v) => json!({ "id": id.to_json(), "embedding": v }),
            Vector::Sparse { indices, values } => {
                json!({ "id": id.to_json(), "indices": indices, "values": values })
            }
            Vector::Multi(m) => {
                let rows: Vec<Vec<f32>> = m.outer_iter().map(|r| r.to_vec()).collect();
                json!({ "id": id.to_json(), "embeddings": rows })
            }
        }
    }
}

/// Rows per Parquet row group: a group is built in memory, then written.
const ROW_GROUP: usize = 4096;

/// Writes `results` to `dest` in `format`, with progress and a summary on stderr.
pub fn write(
    dest: Option<&Path>,
    format: OutputFormat,
    progress: Progress,
    results: impl Iterator<Item = embedkit::Result<(Id, Vector)>>,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Jsonl => crate::output::write_jsonl(dest, progress, results, |(id, v)| {
            serde_json::to_string(&v.to_json(&id))
        }),
        OutputFormat::Parquet | OutputFormat::Npy => {
            let dest = match dest {
                Some(p) if p != Path::new("-") => p,
                _ => anyhow::bail!("{format:?} output goes to a file: give it with --output"),
            };
            let started = std::time::Instant::now();
            let bar = progress.bar();
            let mut sink = Sink::open(Some(dest))?;
            let written = match format {
                OutputFormat::Parquet => write_parquet(&mut sink, results, &bar),
                _ => write_npy(&mut sink, dest, results, &bar),
            };
            bar.finish_and_clear();
            match written {
                Ok((count, sidecar)) => {
                    if let Some(sidecar) = sidecar {
                        sidecar.commit()?;
                    }
                    let bytes = sink.commit_len()?;
                    progress.summary(count, started.elapsed(), bytes, Some(dest));
                    Ok(())
                }
                Err(e) => {
                    sink.abandon();
                    Err(e)
                }
            }
        }
    }
}

/// Columns: `id` (int64, or string when the ids are strings), then `embedding`
/// (fixed-size list of float32), `indices` + `values` (lists), or `embeddings` (a list of
/// fixed-size lists), by the first result's kind. One row group per ROW_GROUP results.
fn write_parquet(
    sink: &mut Sink,
    mut results: impl Iterator<Item = embedkit::Result<(Id, Vector)>>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(u64, Option<Sink>)> {
    let mut file = Some(sink.file()?);
    let mut writer: Option<ArrowWriter<&mut BufWriter<File>>> = None;
    let mut group: Vec<(Id, Vector)> = Vec::with_capacity(ROW_GROUP);
    let (mut count, mut string_ids) = (0u64, None);
    loop {
        let next = results.next();
        let done = next.is_none();
        if let Some(result) = next {
            let (id, v) = result?;
            string_ids.get_or_insert(matches!(id, Id::Str(_)));
            group.push((id, v));
            count += 1;
            bar.inc(1);
        }
        if group.len() == ROW_GROUP || (done && !group.is_empty()) {
            let batch = record_batch(&group, string_ids.unwrap_or(false))?;
            group.clear();
            if writer.is_none() {
                let props = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(ROW_GROUP))
                    .build();
                let file = file
                    .take()
                    .ok_or_else(|| anyhow::anyhow!("no output file"))?;
                writer = Some(ArrowWriter::try_new(file, batch.schema(), Some(props))?);
            }
            if let Some(w) = writer.as_mut() {
                w.write(&batch)?;
                // Each group becomes a row group now: memory stays one group.
                w.flush()?;
            }
        }
        if done {
            break;
        }
    }
    match (writer, file) {
        (Some(w), _) => {
            w.close()?;
        }
        (None, Some(file)) => {
            // No rows, so no kind: a file with the id column only.
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
            ArrowWriter::try_new(file, schema, None)?.close()?;
        }
        (None, None) => {}
    }
    Ok((count, None))
}

fn record_batch(group: &[(Id, Vector)], string_ids: bool) -> anyhow::Result<RecordBatch> {
    let id: ArrayRef = if string_ids {
        let mut b = StringBuilder::new();
        for (id, _) in group {
            match id {
                Id::Str(s) => b.append_value(s),
                Id::Int(i) => b.append_value(i.to_string()),
            }
        }
        Arc::new(b.finish())
    } else {
        let mut b = Int64Builder::new();
        for (id, _) in group {
            match id {
                Id::Int(i) => b.append_value(*i),
                Id::Str(s) => anyhow::bail!("the ids mix numbers and strings (id {s:?})"),
            }
        }
        Arc::new(b.finish())
    };
    let id_field = Field::new(
        "id",
        if string_ids {
            DataType::Utf8
        } else {
            DataType::Int64
        },
        false,
    );
    let mut fields = vec![id_field];
    let mut columns = vec![id];
    match &group[0].1 {
        Vector::Dense(first) => {
            let dim = first.len();
            let mut b = FixedSizeListBuilder::new(Float32Builder::new(), dim as i32)
                .with_field(Field::new("item", DataType::Float32, false));
            for (_, v) in group {
                let Vector::Dense(v) = v else {
                    anyhow::bail!("results of mixed kinds")
                };
                anyhow::ensure!(v.len() == dim, "vectors of {} and {dim} numbers", v.len());
                b.values().append_slice(v);
                b.append(true);
            }
            let col = b.finish();
            fields.push(Field::new("embedding", col.data_type().clone(), false));
            columns.push(Arc::new(col));
        }
        Vector::Sparse { .. } => {
            let item = |t| Field::new("item", t, false);
            let mut ib = ListBuilder::new(UInt32Builder::new()).with_field(item(DataType::UInt32));
            let mut vb =
                ListBuilder::new(Float32Builder::new()).with_field(item(DataType::Float32));
            for (_, v) in group {
                let Vector::Sparse { indices, values } = v else {
                    anyhow::bail!("results of mixed kinds")
                };
                ib.values().append_slice(indices);
                ib.append(true);
                vb.values().append_slice(values);
                vb.append(true);
            }
            let (ic, vc) = (ib.finish(), vb.finish());
            fields.push(Field::new("indices", ic.data_type().clone(), false));
            fields.push(Field::new("values", vc.data_type().clone(), false));
            columns.push(Arc::new(ic));
            columns.push(Arc::new(vc));
        }
        Vector::Multi(first) => {
            let dim = first.ncols();
            let inner = FixedSizeListBuilder::new(Float32Builder::new(), dim as i32)
                .with_field(Field::new("item", DataType::Float32, false));
            let inner_type = DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, false)),
                dim as i32,
            );
            let mut b = ListBuilder::new(inner).with_field(Field::new("item", inner_type, false));
            for (_, v) in group {
                let Vector::Multi(m) = v else {
                    anyhow::bail!("results of mixed kinds")
                };
                anyhow::ensure!(
                    m.ncols() == dim,
                    "token vectors of {} and {dim} numbers",
                    m.ncols()
                );
                for row in m.outer_iter() {
                    b.values().values().extend(row.iter().map(|x| Some(*x)));
                    b.values().append(true);
                }
                b.append(true);
            }
            let col = b.finish();
            fields.push(Field::new("embeddings", col.data_type().clone(), false));
            columns.push(Arc::new(col));
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The `.npy` header's fixed length: long enough for any shape, so the header written
/// first (the count unknown) is rewritten in place at the end.
const NPY_HEADER: usize = 128;

fn npy_header(rows: u64, dim: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // Magic, version 1.0, header length (u16 LE), then the dict padded with spaces to
    // NPY_HEADER bytes in all, ending in a newline.
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let len = (NPY_HEADER - 10) as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(NPY_HEADER - 1, b' ');
    out.push(b'\n');
    out
}

/// A float32 matrix [rows, dim] in `dest`, and the ids, one JSON value per line, in
/// `<dest without .npy>.ids.jsonl`.
fn write_npy(
    sink: &mut Sink,
    dest: &Path,
    results: impl Iterator<Item = embedkit::Result<(Id, Vector)>>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(u64, Option<Sink>)> {
    let ids_path = sidecar_path(dest);
    let mut ids = Sink::open(Some(&ids_path))?;
    let written = (|| -> anyhow::Result<u64> {
        let file = sink.file()?;
        file.write_all(&npy_header(0, 0))?;
        let (mut rows, mut dim) = (0u64, None);
        for result in results {
            let (id, v) = result?;
            let Vector::Dense(v) = v else {
                anyhow::bail!(".npy output holds dense vectors only; use .parquet or .jsonl")
            };
            let d = *dim.get_or_insert(v.len());
            anyhow::ensure!(v.len() == d, "vectors of {} and {d} numbers", v.len());
            for x in &v {
                file.write_all(&x.to_le_bytes())?;
            }
            let mut line = serde_json::to_string(&id.to_json())?;
            line.push('\n');
            ids.writer().write_all(line.as_bytes())?;
            rows += 1;
            bar.inc(1);
        }
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&npy_header(rows, dim.unwrap_or(0)))?;
        Ok(rows)
    })();
    match written {
        Ok(rows) => Ok((rows, Some(ids))),
        Err(e) => {
            ids.abandon();
            Err(e)
        }
    }
}

/// `vectors.npy` → `vectors.ids.jsonl`.
pub fn sidecar_path(dest: &Path) -> PathBuf {
    dest.with_extension("ids.jsonl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_fixed_length_and_aligned() {
        for (rows, dim) in [(0, 0), (1, 384), (u64::MAX, usize::MAX)] {
            let h = npy_header(rows, dim);
            assert_eq!(h.len(), NPY_HEADER);
            assert_eq!(h.len() % 64, 0);
            assert!(String::from_utf8_lossy(&h).contains(&format!("({rows}, {dim})")));
        }
    }
}
