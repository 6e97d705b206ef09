//! A temporary file of the records a run must write (new or changed ones), so that memory stays
//! flat however large the catalogue: the fetch phase appends, the store phase reads back in
//! chunks inside one transaction.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use super::diff::Verdict;

/// A record waiting to be written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub code: String,
    pub name: String,
    pub local_code: String,
    pub hash: String,
    /// Kept only for records read without warnings, so that a record with problems is read
    /// (and its problems reported) again next time.
    pub raw_hash: Option<String>,
    pub verdict: Verdict,
    /// The record's JSON, carried through as text.
    pub record: Box<serde_json::value::RawValue>,
}

/// Append side of the spool.
pub struct Spool {
    writer: BufWriter<File>,
    len: usize,
}

impl Spool {
    pub fn new() -> std::io::Result<Spool> {
        Ok(Spool {
            writer: BufWriter::new(tempfile::tempfile()?),
            len: 0,
        })
    }

    pub fn push(&mut self, pending: &Pending) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.writer, pending)?;
        self.writer.write_all(b"\n")?;
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ends writing and returns a reader positioned at the first record.
    pub fn into_reader(self) -> std::io::Result<SpoolReader> {
        let mut file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(SpoolReader {
            reader: BufReader::new(file),
            line: String::new(),
        })
    }
}

/// Read side of the spool.
pub struct SpoolReader {
    reader: BufReader<File>,
    line: String,
}

impl SpoolReader {
    /// Up to `size` records; an empty vector at the end.
    pub fn next_chunk(&mut self, size: usize) -> std::io::Result<Vec<Pending>> {
        let mut chunk = Vec::with_capacity(size.min(1024));
        while chunk.len() < size {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                break;
            }
            let pending = serde_json::from_str(&self.line).map_err(std::io::Error::other)?;
            chunk.push(pending);
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_chunks() {
        let mut spool = Spool::new().unwrap();
        for i in 0..5 {
            spool
                .push(&Pending {
                    code: format!("1.00000{i}"),
                    name: "Đăng ký khai sinh".into(),
                    local_code: String::new(),
                    hash: "h".into(),
                    raw_hash: None,
                    verdict: Verdict::Added,
                    record: serde_json::value::RawValue::from_string(
                        r#"{"name":"Đăng ký\nkhai sinh"}"#.into(),
                    )
                    .unwrap(),
                })
                .unwrap();
        }
        assert_eq!(spool.len(), 5);
        let mut reader = spool.into_reader().unwrap();
        assert_eq!(reader.next_chunk(3).unwrap().len(), 3);
        let rest = reader.next_chunk(3).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[1].code, "1.000004");
        assert!(reader.next_chunk(3).unwrap().is_empty());
    }
}
