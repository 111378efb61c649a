//! Corpora with ids: plain text, JSON Lines, CSV/TSV and Parquet inputs, read as rows of
//! (id, text) in file order, with bad rows stopping the job or skipped and listed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use clap::{Args, ValueEnum};
use embedkit::{Error, Result};
use serde_json::Value;

use crate::input::{self, MAX_LINE_BYTES};

mod columnar;
use self::columnar::parquet_rows;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One document per line.
    Text,
    /// One JSON object per line.
    Jsonl,
    Csv,
    Tsv,
    Parquet,
}

impl Format {
    /// By extension: .jsonl/.ndjson, .csv, .tsv, .parquet; anything else is text.
    pub fn of_path(path: &Path) -> Format {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "jsonl" | "ndjson" => Format::Jsonl,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "parquet" | "pq" => Format::Parquet,
            _ => Format::Text,
        }
    }
}

/// How rows are read from `--input`.
#[derive(Args, Debug, Clone)]
pub struct CorpusArgs {
    /// The input's format [default: by extension: .jsonl, .csv, .tsv, .parquet; else text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<Format>,
    /// The column (JSON key) holding the documents, for JSON Lines, CSV/TSV and Parquet.
    #[arg(long, default_value = "text", value_name = "NAME")]
    pub text_column: String,
    /// The column holding each document's id [default: the row's index, from 0].
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// Skip bad rows (missing column, invalid UTF-8, too long), listing each on stderr,
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// Continue an interrupted job into the same --output: the rows it completed (checked
    /// against the input's ids) are kept and skipped, a torn tail is discarded.
    #[arg(long)]
    pub resume: bool,
}

/// A document's id: its row index, or the value of the id column.
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl Id {
    pub fn to_json(&self) -> Value {
        match self {
            Id::Int(i) => Value::from(*i),
            Id::Str(s) => Value::from(s.as_str()),
        }
    }
}

pub struct Row {
    pub id: Id,
    pub text: String,
}

/// A bad row: `fatal` when nothing after it can be read (an I/O error).
struct BadRow {
    error: Error,
    fatal: bool,
}

type RowIter = Box<dyn Iterator<Item = std::result::Result<Row, BadRow>>>;

/// The rows of a corpus, with their total when known before reading, and how many bad
/// rows were skipped so far.
pub struct Rows {
    iter: RowIter,
    skip_bad: bool,
    /// The ids of rows an earlier run completed: read past, each checked.
    done: VecDeque<Id>,
    done_at: u64,
    pub total: Option<u64>,
    pub skipped: Rc<RefCell<u64>>,
}

impl Iterator for Rows {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        while let Some(expected) = self.done.pop_front() {
            self.done_at += 1;
            let at = self.done_at;
            let want = expected.to_json();
            let mismatch = move |found: String| {
                Some(Err(Error::InvalidArgument(format!(
                    "the partial output's row {at} has id {} but the input's has {found}: the \
                     input changed since the interrupted run; delete the partial output to \
                     start over",
                    want
                ))))
            };
            match self.next_row() {
                None => return mismatch("no such row".into()),
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(row)) if row.id != expected => {
                    return mismatch(row.id.to_json().to_string())
                }
                Some(Ok(_)) => {}
            }
        }
        self.next_row()
    }
}

impl Rows {
    fn next_row(&mut self) -> Option<Result<Row>> {
        loop {
            match self.iter.next()? {
                Ok(row) => return Some(Ok(row)),
                Err(bad) if self.skip_bad && !bad.fatal => {
                    eprintln!("embedkit: skipped {}", bad.error);
                    *self.skipped.borrow_mut() += 1;
                }
                Err(bad) => return Some(Err(bad.error)),
            }
        }
    }
}

impl Rows {
    /// The rows after those an earlier run completed (`done`, their ids in order), which
    /// are read and checked against the input, not embedded again.
    pub fn after(mut self, done: Vec<Id>) -> Rows {
        self.done = done.into();
        self
    }

    /// Splits the rows into the texts (for the model) and a queue of their ids, filled as
    /// the model reads ahead and drained, one per result, by [`Ids::next_id`]: results come
    /// in input order, one per text.
    pub fn split(self) -> (impl Iterator<Item = Result<String>>, Ids) {
        let ids = Ids(Rc::new(RefCell::new(VecDeque::new())));
        let queue = ids.0.clone();
        let texts = self.map(move |row| {
            row.map(|row| {
                queue.borrow_mut().push_back(row.id);
                row.text
            })
        });
        (texts, ids)
    }
}

/// The ids of the texts the model has read and not yet returned.
pub struct Ids(Rc<RefCell<VecDeque<Id>>>);

impl Ids {
    pub fn next_id(&self) -> Result<Id> {
        self.0
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| Error::InvalidArgument("a result without an input row".into()))
    }
}

/// A closing line on stderr when bad rows were skipped (each was listed as it was).
pub fn report_skipped(skipped: &Rc<RefCell<u64>>) {
    let n = *skipped.borrow();
    if n > 0 {
        eprintln!("embedkit: {n} bad rows skipped (listed above)");
    }
}

/// The rows of the arguments, `--input` or stdin.
pub fn open(texts: Vec<String>, input: Option<&Path>, args: &CorpusArgs) -> anyhow::Result<Rows> {
    let format = args
        .input_format
        .or_else(|| input.map(Format::of_path))
        .unwrap_or(Format::Text);
    let skipped = Rc::new(RefCell::new(0));
    let make = |iter: RowIter, total| Rows {
        iter,
        skip_bad: args.skip_bad,
        done: VecDeque::new(),
        done_at: 0,
        total,
        skipped: skipped.clone(),
    };
    let table = args.input_format.is_some_and(|f| f != Format::Text);
    if !texts.is_empty() && (table || args.id_column.is_some()) {
        anyhow::bail!(
            "--input-format and --id-column apply to --input, not to documents given as arguments"
        );
    }
    match format {
        Format::Text => {
            if args.id_column.is_some() {
                anyhow::bail!("--id-column needs a table input (JSON Lines, CSV, TSV, Parquet)");
            }
            let docs = input::documents(texts, input)?;
            let total = docs.total;
            let iter = docs.enumerate().map(|(i, d)| match d {
                Ok(text) => Ok(Row {
                    id: Id::Int(i as i64),
                    text,
                }),
                Err(error) => Err(BadRow {
                    fatal: is_io(&error),
                    error,
                }),
            });
            Ok(make(Box::new(iter), total))
        }
        Format::Jsonl => {
            let docs = input::documents(Vec::new(), input)?;
            let total = docs.total;
            let (text_col, id_col) = (args.text_column.clone(), args.id_column.clone());
            let mut index = 0usize;
            let iter = docs.enumerate().filter_map(move |(i, line)| {
                let line = match line {
                    Ok(l) => l,
                    Err(error) => {
                        let fatal = is_io(&error);
                        return Some(Err(BadRow { error, fatal }));
                    }
                };
                // Blank lines are not rows (a trailing newline, say).
                if line.trim().is_empty() {
                    return None;
                }
                index += 1;
                Some(json_row(
                    i + 1,
                    index - 1,
                    &line,
                    &text_col,
                    id_col.as_deref(),
                ))
            });
            Ok(make(Box::new(iter), total))
        }
        Format::Csv | Format::Tsv => {
            let path = table_path(input, format)?;
            let delimiter = if format == Format::Tsv { b'\t' } else { b',' };
            let (iter, total) = csv_rows(&path, delimiter, args)?;
            Ok(make(iter, total))
        }
        Format::Parquet => {
            let path = table_path(input, format)?;
            let (iter, total) = parquet_rows(&path, args)?;
            Ok(make(iter, total))
        }
    }
}

/// Reading failed: nothing after this row can be read, so it cannot be skipped.
fn is_io(e: &Error) -> bool {
    matches!(e, Error::Io { .. })
}

fn table_path(input: Option<&Path>, format: Format) -> anyhow::Result<PathBuf> {
    match input {
        Some(p) if p != Path::new("-") => Ok(p.to_path_buf()),
        _ => anyhow::bail!("a {format:?} input is read from a file: give it with --input"),
    }
}

/// A bad row of a Parquet file (`row` from 1).
fn bad(row: u64, reason: impl Into<String>) -> BadRow {
    BadRow {
        error: Error::InputRow {
            row,
            reason: reason.into(),
        },
        fatal: false,
    }
}

/// A bad row of a text table (JSON Lines, CSV) named by its line, from 1.
fn bad_line(line: u64, reason: impl Into<String>) -> BadRow {
    BadRow {
        error: Error::Input {
            line: line as usize,
            reason: reason.into(),
        },
        fatal: false,
    }
}

fn json_row(
    line_no: usize,
    index: usize,
    line: &str,
    text_col: &str,
    id_col: Option<&str>,
) -> std::result::Result<Row, BadRow> {
    let bad = |line: u64, reason: String| bad_line(line, reason);
    let row = line_no as u64;
    let value: Value =
        serde_json::from_str(line).map_err(|e| bad(row, format!("not a JSON object: {e}")))?;
    let text = match value.get(text_col) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad(row, format!("{text_col:?} is not a string"))),
        None => return Err(bad(row, format!("no {text_col:?} key"))),
    };
    let id = match id_col {
        None => Id::Int(index as i64),
        Some(col) => match value.get(col) {
            Some(Value::String(s)) => Id::Str(s.clone()),
            Some(Value::Number(n)) if n.is_i64() => Id::Int(n.as_i64().unwrap_or_default()),
            Some(Value::Number(n)) => Id::Str(n.to_string()),
            Some(_) => return Err(bad(row, format!("{col:?} is not a string or a number"))),
            None => return Err(bad(row, format!("no {col:?} key"))),
        },
    };
    Ok(Row { id, text })
}

/// Rows of a CSV/TSV file with a header line; `row` in errors is the record's line.
fn csv_rows(
    path: &Path,
    delimiter: u8,
    args: &CorpusArgs,
) -> anyhow::Result<(RowIter, Option<u64>)> {
    let open = || {
        csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_path(path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
    };
    // One pass to count the records, for the progress total.
    let total = open()?
        .byte_records()
        .try_fold(0u64, |n, r| r.map(|_| n + 1))
        .ok();
    let mut reader = open()?;
    let headers = reader
        .byte_headers()
        .map_err(|e| anyhow::anyhow!("reading the header line of {}: {e}", path.display()))?
        .clone();
    let column = |name: &str| -> anyhow::Result<usize> {
        headers
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| {
                let names: Vec<String> = headers
                    .iter()
                    .map(|h| String::from_utf8_lossy(h).into_owned())
                    .collect();
                anyhow::anyhow!(
                    "{} has no column {name:?} (its columns: {})",
                    path.display(),
                    names.join(", ")
                )
            })
    };
    let text_at = column(&args.text_column)?;
    let id_at = args.id_column.as_deref().map(column).transpose()?;
    let mut index = 0i64;
    let iter = reader.into_byte_records().map(move |record| {
        let record = record.map_err(|e| BadRow {
            fatal: matches!(e.kind(), csv::ErrorKind::Io(_)),
            error: Error::Input {
                line: e.position().map(|p| p.line() as usize).unwrap_or(0),
                reason: e.to_string(),
            },
        })?;
        let row = record.position().map(|p| p.line()).unwrap_or(0);
        let this = index;
        index += 1;
        let bad = bad_line;
        let field = |at: usize, what: &str| -> std::result::Result<String, BadRow> {
            let bytes = record
                .get(at)
                .ok_or_else(|| bad(row, format!("no {what} field (the row is short)")))?;
            if bytes.len() > MAX_LINE_BYTES {
                return Err(bad(
                    row,
                    format!("the {what} is longer than the limit of {MAX_LINE_BYTES} bytes"),
                ));
            }
            std::str::from_utf8(bytes).map(String::from).map_err(|e| {
                bad(
                    row,
                    format!("the {what} is not valid UTF-8 (byte {})", e.valid_up_to()),
                )
            })
        };
        let text = field(text_at, "text")?;
        let id = match id_at {
            Some(at) => Id::Str(field(at, "id")?),
            None => Id::Int(this),
        };
        Ok(Row { id, text })
    });
    Ok((Box::new(iter), total))
}

/// Reads a whole file as text rows, for tests.
#[cfg(test)]
fn read_all(path: &Path, args: &CorpusArgs) -> Vec<Result<(Id, String)>> {
    open(Vec::new(), Some(path), args)
        .unwrap()
        .map(|r| r.map(|row| (row.id, row.text)))
        .collect()
}

// The integration tests' folder guard, for the unit tests too.
#[cfg(test)]
#[path = "../../../embedkit/tests/common/tmp.rs"]
mod test_tmp;

#[cfg(test)]
mod tests {
    use super::test_tmp::TmpDir;
    use super::*;

    fn args(id: Option<&str>, skip: bool) -> CorpusArgs {
        CorpusArgs {
            input_format: None,
            text_column: "text".into(),
            id_column: id.map(String::from),
            skip_bad: skip,
            resume: false,
        }
    }

    /// A file holding `data`, in a folder removed when the test passes.
    fn tmp(name: &str, data: &[u8]) -> (TmpDir, PathBuf) {
        let dir = TmpDir::new("embedkit-corpus", name);
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        (dir, p)
    }

    #[test]
    fn csv_rows_carry_ids_and_name_bad_rows() {
        let (_dir, p) = tmp(
            "a.csv",
            b"id,text\nx1,\"hello, world\"\nx2\nx3,\"two\nlines\"\nx4,bad\xff\n",
        );
        let got = read_all(&p, &args(Some("id"), false));
        assert_eq!(got.len(), 4);
        let (id, text) = got[0].as_ref().unwrap();
        assert_eq!((id, text.as_str()), (&Id::Str("x1".into()), "hello, world"));
        let e = got[1].as_ref().err().unwrap().to_string();
        assert!(e.contains("line 3") && e.contains("short"), "{e}");
        assert_eq!(got[2].as_ref().unwrap().1, "two\nlines");
        let e = got[3].as_ref().err().unwrap().to_string();
        assert!(e.contains("line 6") && e.contains("UTF-8"), "{e}");
        // Skipped: only the good rows remain, in order.
        let got = read_all(&p, &args(Some("id"), true));
        let ids: Vec<Id> = got.into_iter().map(|r| r.unwrap().0).collect();
        assert_eq!(ids, vec![Id::Str("x1".into()), Id::Str("x3".into())]);
        let e = open(Vec::new(), Some(&p), &args(Some("key"), false))
            .err()
            .unwrap();
        assert!(e.to_string().contains("no column \"key\""), "{e}");
    }

    #[test]
    fn jsonl_rows_keep_number_and_string_ids() {
        let (_dir, p) = tmp(
            "a.jsonl",
            b"{\"id\": 7, \"text\": \"a\"}\n{\"id\": \"b\", \"text\": \"b\"}\n\n{\"text\": 3, \"id\": 1}\n",
        );
        let got = read_all(&p, &args(Some("id"), false));
        assert_eq!(got[0].as_ref().unwrap().0, Id::Int(7));
        assert_eq!(got[1].as_ref().unwrap().0, Id::Str("b".into()));
        let e = got[2].as_ref().err().unwrap().to_string();
        assert!(e.contains("line 4") && e.contains("not a string"), "{e}");
        // Without an id column, the id is the row's index.
        let got = read_all(&p, &args(None, true));
        let ids: Vec<Id> = got.into_iter().map(|r| r.unwrap().0).collect();
        assert_eq!(ids, vec![Id::Int(0), Id::Int(1)]);
    }
}
