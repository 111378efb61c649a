//! Results with their ids, and how each output format lays them out: JSON Lines, Parquet
//! columns (a record batch per row group) and the NumPy `.npy` header. The job module
//! writes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Int64Builder, ListBuilder, PrimitiveBuilder,
    StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::types::{Float32Type, Int8Type, UInt8Type};
use arrow_array::ArrowPrimitiveType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::{Args, ValueEnum};
use embedkit::postprocess::{TypedVector, VectorType};
use embedkit::{CallOptions, EmbeddingModel, Operations};
use ndarray::Array2;
use serde_json::json;

use crate::corpus::Id;

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

/// What a command's records are, known before any work: it decides which output
/// formats fit (JSON Lines and Parquet take every shape; `.npy` fixed-width numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Dense(VectorType),
    Sparse,
    Multi,
    Score,
    Hit,
    /// Several outputs of one text (`hybrid`): dense, sparse and token vectors.
    Hybrid,
}

impl Shape {
    /// Refuses a format that does not fit, before anything is opened or computed.
    pub fn check(self, format: OutputFormat) -> anyhow::Result<()> {
        let what = match self {
            Shape::Dense(_) | Shape::Score => return Ok(()),
            Shape::Sparse => "sparse vectors",
            Shape::Multi => "token-vector matrices",
            Shape::Hit => "search hits (with their texts)",
            Shape::Hybrid => "records of several outputs",
        };
        if format == OutputFormat::Npy {
            anyhow::bail!(
                ".npy holds rows of numbers of one width, which {what} are not; write \
                 .jsonl or .parquet (or --output-format jsonl/parquet)"
            );
        }
        Ok(())
    }

    /// The `.npy` element type of the records and its size in bytes.
    pub fn npy_dtype(self) -> (&'static str, usize) {
        match self {
            Shape::Dense(VectorType::Int8) => ("|i1", 1),
            Shape::Dense(VectorType::Binary) => ("|u1", 1),
            _ => ("<f4", 4),
        }
    }
}

/// The dense options of the commands that write dense vectors: the library's post-
/// processing steps, as flags.
#[derive(Args, Debug, Clone, Default)]
pub struct DenseArgs {
    /// Shorter vectors, for models trained for it (Matryoshka: nomic v1.5, jina v3, ...):
    /// the first N values, L2-normalized again.
    #[arg(long, value_name = "N")]
    pub dimensions: Option<usize>,
    /// L2-normalize each vector (last, after --dimensions).
    #[arg(long)]
    pub normalize: bool,
    /// float32 (default), int8 (each vector scaled to ±127) or binary (sign bits packed
    /// eight to a byte, first value highest).
    #[arg(long, value_enum, value_name = "TYPE", default_value = "float32")]
    pub output_dtype: VectorType,
}

impl DenseArgs {
    /// The call's options for `model`: --dimensions (checked against the model before
    /// any work) and --normalize, applied by the library.
    pub fn call(&self, model: &EmbeddingModel) -> anyhow::Result<CallOptions> {
        model.check_dimensions(self.dimensions)?;
        Ok(CallOptions::new()
            .dimensions(self.dimensions)
            .normalize(self.normalize))
    }

    pub fn shape(&self) -> Shape {
        Shape::Dense(self.output_dtype)
    }

    /// One vector in the output type.
    pub fn convert(&self, v: Vec<f32>) -> Vector {
        match self.output_dtype.apply(v) {
            TypedVector::Float32(v) => Vector::Dense(v),
            TypedVector::Int8(v) => Vector::Int8(v),
            TypedVector::Binary(v) => Vector::Binary(v),
        }
    }
}

/// Sparse pruning, as flags: the library's `prune_sparse` step.
#[derive(Args, Debug, Clone, Default)]
pub struct PruneArgs {
    /// Keep only each sparse vector's K largest weights (smaller indexes).
    #[arg(long, value_name = "K")]
    pub top_terms: Option<usize>,
    /// Drop sparse weights below W.
    #[arg(long, value_name = "W")]
    pub min_weight: Option<f32>,
}

impl PruneArgs {
    /// `o` with the pruning asked for.
    pub fn apply(&self, o: CallOptions) -> CallOptions {
        o.sparse_top_k(self.top_terms)
            .sparse_min_weight(self.min_weight)
    }
}

/// One result: a dense vector, a sparse one, a matrix of token vectors, a document's
/// score, or a search hit.
pub enum Vector {
    Dense(Vec<f32>),
    /// A dense vector as int8 (`--output-dtype int8`).
    Int8(Vec<i8>),
    /// A dense vector as packed bits (`--output-dtype binary`).
    Binary(Vec<u8>),
    Sparse {
        indices: Vec<u32>,
        values: Vec<f32>,
    },
    Multi(Array2<f32>),
    /// A document's relevance; `index` is its position in the input.
    Score {
        index: u64,
        score: f32,
    },
    /// Several outputs of one text, from one pass (`hybrid`).
    Hybrid(embedkit::TextOutput),
    /// A document ranked for a query, best first.
    Hit {
        rank: u64,
        index: u64,
        score: f32,
        text: String,
    },
}

impl Vector {
    pub fn to_json(&self, id: &Id) -> serde_json::Value {
        match self {
            Vector::Dense(v) => json!({ "id": id.to_json(), "embedding": v }),
            Vector::Int8(v) => json!({ "id": id.to_json(), "embedding": v }),
            Vector::Binary(v) => json!({ "id": id.to_json(), "embedding": v }),
            Vector::Sparse { indices, values } => {
                json!({ "id": id.to_json(), "indices": indices, "values": values })
            }
            Vector::Multi(m) => {
                let rows: Vec<Vec<f32>> = m.outer_iter().map(|r| r.to_vec()).collect();
                json!({ "id": id.to_json(), "embeddings": rows })
            }
            Vector::Score { index, score } => {
                json!({ "id": id.to_json(), "index": index, "score": score })
            }
            Vector::Hybrid(out) => {
                let mut record = json!({ "id": id.to_json() });
                if let Some(v) = &out.dense {
                    record["embedding"] = json!(v);
                }
                if let Some(s) = &out.sparse {
                    record["indices"] = json!(s.indices);
                    record["values"] = json!(s.values);
                }
                if let Some(m) = &out.multi {
                    let rows: Vec<Vec<f32>> = m.outer_iter().map(|r| r.to_vec()).collect();
                    record["embeddings"] = json!(rows);
                }
                record
            }
            Vector::Hit {
                rank,
                index,
                score,
                text,
            } => json!({
                "id": id.to_json(), "rank": rank, "index": index, "score": score, "text": text,
            }),
        }
    }
}

/// Rows per Parquet row group: a group is built in memory, then written.
pub const ROW_GROUP: usize = 4096;

pub fn record_batch(group: &[(Id, Vector)], string_ids: bool) -> anyhow::Result<RecordBatch> {
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
        Vector::Dense(_) => {
            let col = fixed_rows::<Float32Type>(group, |v| match v {
                Vector::Dense(v) => Some(v),
                _ => None,
            })?;
            fields.push(Field::new("embedding", col.data_type().clone(), false));
            columns.push(col);
        }
        Vector::Int8(_) => {
            let col = fixed_rows::<Int8Type>(group, |v| match v {
                Vector::Int8(v) => Some(v),
                _ => None,
            })?;
            fields.push(Field::new("embedding", col.data_type().clone(), false));
            columns.push(col);
        }
        Vector::Binary(_) => {
            let col = fixed_rows::<UInt8Type>(group, |v| match v {
                Vector::Binary(v) => Some(v),
                _ => None,
            })?;
            fields.push(Field::new("embedding", col.data_type().clone(), false));
            columns.push(col);
        }
        Vector::Sparse { .. } => {
            let rows = group.iter().map(|(_, v)| match v {
                Vector::Sparse { indices, values } => Some((&indices[..], &values[..])),
                _ => None,
            });
            sparse_columns(rows, &mut fields, &mut columns)?;
        }
        Vector::Multi(_) => {
            let rows = group.iter().map(|(_, v)| match v {
                Vector::Multi(m) => Some(m),
                _ => None,
            });
            multi_column(rows, &mut fields, &mut columns)?;
        }
        Vector::Hybrid(first) => {
            fn hybrid(v: &Vector) -> Option<&embedkit::TextOutput> {
                match v {
                    Vector::Hybrid(o) => Some(o),
                    _ => None,
                }
            }
            for (_, v) in group {
                let o = hybrid(v).ok_or_else(|| anyhow::anyhow!("results of mixed kinds"))?;
                anyhow::ensure!(
                    (o.dense.is_some(), o.sparse.is_some(), o.multi.is_some())
                        == (
                            first.dense.is_some(),
                            first.sparse.is_some(),
                            first.multi.is_some()
                        ),
                    "records with different outputs"
                );
            }
            if first.dense.is_some() {
                let col = fixed_rows::<Float32Type>(group, |v| hybrid(v)?.dense.as_ref())?;
                fields.push(Field::new("embedding", col.data_type().clone(), false));
                columns.push(col);
            }
            if first.sparse.is_some() {
                let rows = group.iter().map(|(_, v)| {
                    let s = hybrid(v)?.sparse.as_ref()?;
                    Some((&s.indices[..], &s.values[..]))
                });
                sparse_columns(rows, &mut fields, &mut columns)?;
            }
            if first.multi.is_some() {
                let rows = group.iter().map(|(_, v)| hybrid(v)?.multi.as_ref());
                multi_column(rows, &mut fields, &mut columns)?;
            }
        }
        Vector::Score { .. } => {
            let (mut ib, mut sb) = (UInt64Builder::new(), Float32Builder::new());
            for (_, v) in group {
                let Vector::Score { index, score } = v else {
                    anyhow::bail!("results of mixed kinds")
                };
                ib.append_value(*index);
                sb.append_value(*score);
            }
            fields.push(Field::new("index", DataType::UInt64, false));
            fields.push(Field::new("score", DataType::Float32, false));
            columns.push(Arc::new(ib.finish()));
            columns.push(Arc::new(sb.finish()));
        }
        Vector::Hit { .. } => {
            let (mut rb, mut ib) = (UInt64Builder::new(), UInt64Builder::new());
            let (mut sb, mut tb) = (Float32Builder::new(), StringBuilder::new());
            for (_, v) in group {
                let Vector::Hit {
                    rank,
                    index,
                    score,
                    text,
                } = v
                else {
                    anyhow::bail!("results of mixed kinds")
                };
                rb.append_value(*rank);
                ib.append_value(*index);
                sb.append_value(*score);
                tb.append_value(text);
            }
            fields.push(Field::new("rank", DataType::UInt64, false));
            fields.push(Field::new("index", DataType::UInt64, false));
            fields.push(Field::new("score", DataType::Float32, false));
            fields.push(Field::new("text", DataType::Utf8, false));
            columns.push(Arc::new(rb.finish()));
            columns.push(Arc::new(ib.finish()));
            columns.push(Arc::new(sb.finish()));
            columns.push(Arc::new(tb.finish()));
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The `indices` and `values` list columns of sparse vectors (`None`: a record of another
/// kind).
fn sparse_columns<'a>(
    rows: impl Iterator<Item = Option<(&'a [u32], &'a [f32])>>,
    fields: &mut Vec<Field>,
    columns: &mut Vec<ArrayRef>,
) -> anyhow::Result<()> {
    let item = |t| Field::new("item", t, false);
    let mut ib = ListBuilder::new(UInt32Builder::new()).with_field(item(DataType::UInt32));
    let mut vb = ListBuilder::new(Float32Builder::new()).with_field(item(DataType::Float32));
    for row in rows {
        let (indices, values) = row.ok_or_else(|| anyhow::anyhow!("results of mixed kinds"))?;
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
    Ok(())
}

/// The `embeddings` column of token-vector matrices: a list of fixed-size rows per record.
fn multi_column<'a>(
    rows: impl Iterator<Item = Option<&'a Array2<f32>>>,
    fields: &mut Vec<Field>,
    columns: &mut Vec<ArrayRef>,
) -> anyhow::Result<()> {
    let mut rows = rows.peekable();
    let dim = rows.peek().copied().flatten().map_or(0, |m| m.ncols());
    let inner = FixedSizeListBuilder::new(Float32Builder::new(), dim as i32)
        .with_field(Field::new("item", DataType::Float32, false));
    let inner_type = DataType::FixedSizeList(
        Arc::new(Field::new("item", DataType::Float32, false)),
        dim as i32,
    );
    let mut b = ListBuilder::new(inner).with_field(Field::new("item", inner_type, false));
    for m in rows {
        let m = m.ok_or_else(|| anyhow::anyhow!("results of mixed kinds"))?;
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
    Ok(())
}

/// A column of fixed-size lists of `T` (one row per record, every row as wide as the
/// first); `row` picks a record's numbers, `None` for a record of another kind.
fn fixed_rows<T: ArrowPrimitiveType>(
    group: &[(Id, Vector)],
    row: impl Fn(&Vector) -> Option<&Vec<T::Native>>,
) -> anyhow::Result<ArrayRef> {
    let dim = group.first().and_then(|(_, v)| row(v)).map_or(0, Vec::len);
    let mut b = FixedSizeListBuilder::new(PrimitiveBuilder::<T>::new(), dim as i32)
        .with_field(Field::new("item", T::DATA_TYPE, false));
    for (_, v) in group {
        let v = row(v).ok_or_else(|| anyhow::anyhow!("results of mixed kinds"))?;
        anyhow::ensure!(v.len() == dim, "vectors of {} and {dim} numbers", v.len());
        b.values().append_slice(v);
        b.append(true);
    }
    Ok(Arc::new(b.finish()))
}

/// The `.npy` header's fixed length: long enough for any shape, so the header written
/// first (the count unknown) is rewritten in place at the end.
pub const NPY_HEADER: usize = 128;

pub fn npy_header(rows: u64, dim: usize, descr: &str) -> Vec<u8> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
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
            let h = npy_header(rows, dim, "<f4");
            assert_eq!(h.len(), NPY_HEADER);
            assert_eq!(h.len() % 64, 0);
            assert!(String::from_utf8_lossy(&h).contains(&format!("({rows}, {dim})")));
        }
    }
}
