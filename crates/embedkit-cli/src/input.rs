//! Documents from arguments, a file or stdin: one per line, checked to be UTF-8.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use embedkit::{Error, Result};

/// The longest line read, in bytes: a stream without newlines must not fill memory.
/// Models keep at most a few thousand tokens of a line, and long lines are cut before
/// tokenizing, so 64 MiB is far beyond any useful document.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Lines of a reader as documents, without their line ending (`\n` or `\r\n`).
/// Invalid UTF-8 or a line longer than the limit is an error naming the line (counted
/// from 1).
pub struct Lines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
    max_bytes: usize,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Self::with_limit(reader, MAX_LINE_BYTES)
    }

    pub fn with_limit(reader: R, max_bytes: usize) -> Self {
        Lines {
            reader,
            line: 0,
            buf: Vec::new(),
            done: false,
            max_bytes,
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.buf.clear();
        self.line += 1;
        // One byte over the limit (plus the newline) tells a long line from a full one.
        let cap = self.max_bytes.saturating_add(3) as u64;
        match (&mut self.reader)
            .take(cap)
            .read_until(b'\n', &mut self.buf)
        {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                let whole_line = self.buf.last() == Some(&b'\n');
                if whole_line {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                if self.buf.len() > self.max_bytes {
                    // The rest of the line is read past, so a caller that skips bad
                    // lines goes on with the next one.
                    if !whole_line {
                        if let Err(e) = skip_line(&mut self.reader) {
                            self.done = true;
                            return Some(Err(read_error(e)));
                        }
                    }
                    return Some(Err(Error::Input {
                        line: self.line,
                        reason: format!(
                            "longer than the limit of {} bytes per line",
                            self.max_bytes
                        ),
                    }));
                }
                match std::str::from_utf8(&self.buf) {
                    Ok(s) => Some(Ok(s.to_string())),
                    Err(e) => Some(Err(Error::Input {
                        line: self.line,
                        reason: format!("not valid UTF-8 (byte {})", e.valid_up_to()),
                    })),
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(read_error(e)))
            }
        }
    }
}

/// Reading the input failed: an I/O error, after which nothing more is read.
fn read_error(source: io::Error) -> Error {
    Error::Io {
        path: PathBuf::from("the input"),
        source,
    }
}

/// Reads up to and including the next newline (or to the end), keeping nothing.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Documents and, when it is known before reading them, how many there are.
pub struct Documents {
    iter: Box<dyn Iterator<Item = Result<String>>>,
    /// The number of documents: of arguments, or of lines of a regular file.
    pub total: Option<u64>,
}

impl Iterator for Documents {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next()
    }
}

/// The documents to embed: the arguments if any, else the lines of `file`, else stdin.
pub fn documents(args: Vec<String>, file: Option<&Path>) -> anyhow::Result<Documents> {
    if !args.is_empty() {
        if file.is_some() {
            anyhow::bail!("give documents as arguments or with --input, not both");
        }
        let total = Some(args.len() as u64);
        return Ok(Documents {
            iter: Box::new(args.into_iter().map(Ok)),
            total,
        });
    }
    let (reader, total): (Box<dyn Read>, _) = match file {
        Some(p) if p != Path::new("-") => {
            let f =
                File::open(p).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", p.display()))?;
            // A regular file is counted first (one fast pass) so progress can show a
            // total and an ETA; a pipe or device is read once.
            let total = match f.metadata() {
                Ok(m) if m.is_file() => count_lines(p).ok(),
                _ => None,
            };
            (Box::new(f), total)
        }
        _ => (Box::new(io::stdin()), None),
    };
    Ok(Documents {
        iter: Box::new(Lines::new(BufReader::with_capacity(1 << 16, reader))),
        total,
    })
}

/// The number of lines `Lines` yields for a file: newlines, plus a last line without one.
fn count_lines(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut count, mut last) = (0u64, b'\n');
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        count += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(count + u64::from(last != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_names_bad_ones() {
        let data: &[u8] = b"one\r\ntwo\n\nthree\xff\nfour";
        let got: Vec<_> = Lines::new(data).collect();
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].as_ref().unwrap(), "four");
        assert_eq!(got[0].as_ref().unwrap(), "one");
        assert_eq!(got[1].as_ref().unwrap(), "two");
        assert_eq!(got[2].as_ref().unwrap(), "");
        let err = got[3].as_ref().unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_naming_it() {
        let data = b"short\n0123456789\n0123456789a\nnever read\n";
        let got: Vec<_> = Lines::with_limit(&data[..], 10).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].as_ref().unwrap(), "0123456789");
        let err = got[2].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("limit of 10 bytes"),
            "{err}"
        );
        // The long line is read past: the next one follows, whole.
        assert_eq!(got[3].as_ref().unwrap(), "never read");
        // \r\n endings do not count against the limit.
        let got: Vec<_> = Lines::with_limit(&b"0123456789\r\n"[..], 10).collect();
        assert_eq!(got[0].as_ref().unwrap(), "0123456789");
    }

    #[test]
    fn counted_lines_are_the_lines_read() {
        let dir = std::env::temp_dir().join(format!("embedkit-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for data in [&b""[..], b"a", b"a\n", b"a\nb", b"\n\n", b"a\r\nb\r\n"] {
            let p = dir.join("f.txt");
            std::fs::write(&p, data).unwrap();
            assert_eq!(
                count_lines(&p).unwrap(),
                Lines::new(data).count() as u64,
                "{data:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn last_line_without_newline() {
        let got: Vec<_> = Lines::new(&b"a\nb"[..]).map(|r| r.unwrap()).collect();
        assert_eq!(got, vec!["a", "b"]);
        assert_eq!(Lines::new(&b""[..]).count(), 0);
    }
}
