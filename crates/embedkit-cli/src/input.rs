//! Documents from arguments, a file or stdin: one per line, checked to be UTF-8.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

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
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                if self.buf.len() > self.max_bytes {
                    self.done = true;
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
                    Err(e) => {
                        self.done = true;
                        Some(Err(Error::Input {
                            line: self.line,
                            reason: format!("not valid UTF-8 (byte {})", e.valid_up_to()),
                        }))
                    }
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(Error::Input {
                    line: self.line,
                    reason: e.to_string(),
                }))
            }
        }
    }
}

/// The documents to embed: the arguments if any, else the lines of `file`, else stdin.
pub fn documents(
    args: Vec<String>,
    file: Option<&Path>,
) -> anyhow::Result<Box<dyn Iterator<Item = Result<String>>>> {
    if !args.is_empty() {
        if file.is_some() {
            anyhow::bail!("give documents as arguments or with --input, not both");
        }
        return Ok(Box::new(args.into_iter().map(Ok)));
    }
    let reader: Box<dyn Read> = match file {
        Some(p) if p != Path::new("-") => Box::new(
            File::open(p).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", p.display()))?,
        ),
        _ => Box::new(io::stdin()),
    };
    Ok(Box::new(Lines::new(BufReader::with_capacity(
        1 << 16,
        reader,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_names_bad_ones() {
        let data: &[u8] = b"one\r\ntwo\n\nthree\xff\nfour";
        let got: Vec<_> = Lines::new(data).collect();
        assert_eq!(got.len(), 4);
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
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].as_ref().unwrap(), "0123456789");
        let err = got[2].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("line 3") && err.contains("limit of 10 bytes"),
            "{err}"
        );
        // \r\n endings do not count against the limit.
        let got: Vec<_> = Lines::with_limit(&b"0123456789\r\n"[..], 10).collect();
        assert_eq!(got[0].as_ref().unwrap(), "0123456789");
    }

    #[test]
    fn last_line_without_newline() {
        let got: Vec<_> = Lines::new(&b"a\nb"[..]).map(|r| r.unwrap()).collect();
        assert_eq!(got, vec!["a", "b"]);
        assert_eq!(Lines::new(&b""[..]).count(), 0);
    }
}
