//! Parquet corpora: the text column (and the id column) read a record batch at a time.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use embedkit::Error;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::{bad, BadRow, CorpusArgs, Id, Row, RowIter};
use crate::input::MAX_LINE_BYTES;

/// Rows of a Parquet file, a record batch at a time (bounded memory); the text column is a
/// string column, the id column an integer or string column.
pub(super) fn parquet_rows(
    path: &Path,
    args: &CorpusArgs,
) -> anyhow::Result<(RowIter, Option<u64>)> {
    let file =
        File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| anyhow::anyhow!("{} is not a Parquet file: {e}", path.display()))?;
    let total = u64::try_from(builder.metadata().file_metadata().num_rows()).ok();
    let schema = builder.schema().clone();
    let index_of = |name: &str| -> anyhow::Result<usize> {
        schema.index_of(name).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            anyhow::anyhow!(
                "{} has no column {name:?} (its columns: {})",
                path.display(),
                names.join(", ")
            )
        })
    };
    let text_at = index_of(&args.text_column)?;
    let id_at = args.id_column.as_deref().map(index_of).transpose()?;
    let mut roots = vec![text_at];
    roots.extend(id_at);
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.clone());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(1024)
        .build()
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    // Column positions within the projected batch (roots keep file order).
    let text_pos = usize::from(id_at.is_some_and(|i| i < text_at));
    let id_pos = id_at.map(|i| usize::from(i > text_at));
    let mut first = 0u64;
    let iter = reader.flat_map(move |batch| -> Vec<std::result::Result<Row, BadRow>> {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                return vec![Err(BadRow {
                    error: Error::InputRow {
                        row: first + 1,
                        reason: format!("reading the Parquet file: {e}"),
                    },
                    fatal: true,
                })]
            }
        };
        let rows = batch_rows(&batch, first, text_pos, id_pos);
        first += batch.num_rows() as u64;
        rows
    });
    Ok((Box::new(iter), total))
}

fn batch_rows(
    batch: &RecordBatch,
    first: u64,
    text_pos: usize,
    id_pos: Option<usize>,
) -> Vec<std::result::Result<Row, BadRow>> {
    let texts = batch.column(text_pos);
    let ids = id_pos.map(|p| batch.column(p));
    (0..batch.num_rows())
        .map(|i| {
            let row = first + i as u64 + 1;
            let text = string_at(texts.as_ref(), i)
                .map_err(|reason| bad(row, format!("text: {reason}")))?;
            let id = match ids {
                None => Id::Int((first + i as u64) as i64),
                Some(col) => {
                    id_at(col.as_ref(), i).map_err(|reason| bad(row, format!("id: {reason}")))?
                }
            };
            Ok(Row { id, text })
        })
        .collect()
}

fn string_at(col: &dyn Array, i: usize) -> std::result::Result<String, String> {
    use arrow_array::cast::AsArray;
    if col.is_null(i) {
        return Err("null".into());
    }
    let s = match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i),
        DataType::LargeUtf8 => col.as_string::<i64>().value(i),
        DataType::Utf8View => col.as_string_view().value(i),
        other => return Err(format!("a {other} column, not a string column")),
    };
    if s.len() > MAX_LINE_BYTES {
        return Err(format!("longer than the limit of {MAX_LINE_BYTES} bytes"));
    }
    Ok(s.to_string())
}

fn id_at(col: &dyn Array, i: usize) -> std::result::Result<Id, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt8Type,
    };
    if col.is_null(i) {
        return Err("null".into());
    }
    Ok(match col.data_type() {
        DataType::Int8 => Id::Int(col.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Id::Int(col.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Id::Int(col.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Id::Int(col.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Id::Int(col.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Id::Int(col.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Id::Int(col.as_primitive::<UInt32Type>().value(i).into()),
        _ => Id::Str(string_at(col, i)?),
    })
}
