//! What a command prints on standard output: tables, reports, JSON. A reader that stops early (`qcs info |
//! head -1`) closes the pipe; the printing then ends quietly, where `println!` would panic, and the command
//! finishes its work (its files are its product). Any other failure to write, such as a full disk behind `>`, is
//! an error.

use std::io::{ErrorKind, Write};

use anyhow::{Context, Result};

/// Writes `text` to standard output and flushes it; a closed pipe is not an error.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}

/// `println!` through [`print`]: returns the error from the calling function when standard output fails.
macro_rules! outln {
    () => {
        $crate::stdout::print("\n")?
    };
    ($($arg:tt)*) => {
        $crate::stdout::print(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use outln;
