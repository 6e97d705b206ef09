//! Output that never panics. Standard output closed early (`tthc-sync changes | head -1`) ends
//! the output quietly, as `ripgrep` and other Unix tools do, and never stops the work behind it:
//! a sync whose reader went away still syncs every source. Messages to standard error are best
//! effort for the same reason.

use std::io::{self, Write};

/// Standard output, closed-pipe safe.
#[derive(Debug)]
pub struct Out {
    stdout: io::Stdout,
    closed: bool,
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

impl Out {
    pub fn new() -> Out {
        Out {
            stdout: io::stdout(),
            closed: false,
        }
    }

    fn absorb(&mut self, result: io::Result<usize>, len: usize) -> io::Result<usize> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(len)
            }
            other => other,
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.stdout.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.stdout.flush().map(|()| 0);
        self.absorb(result, 0).map(|_| ())
    }
}

/// Writes a line to standard error, ignoring failure (a closed stderr must not end the run).
pub fn note(message: std::fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_fmt(message);
    let _ = stderr.write_all(b"\n");
}

/// A whole number with thousands separators, as listings show counts: `2,040`.
pub fn count(n: impl Into<u64>) -> String {
    tthc_sync::text::group_thousands(n.into(), ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0u64), "0");
        assert_eq!(count(999u64), "999");
        assert_eq!(count(2040u64), "2,040");
        assert_eq!(count(1_000_000u64), "1,000,000");
    }
}
