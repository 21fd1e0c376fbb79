//! Atomic file writes.

use std::io::Write;
use std::path::Path;

use crate::error::{DataError, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so `path`
/// never holds a half-written file. An existing file is replaced.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let unwritable = |source| DataError::Unwritable {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(unwritable)?;
    file.write_all(bytes).map_err(unwritable)?;
    file.as_file().sync_all().map_err(unwritable)?;
    file.persist(path).map_err(|e| unwritable(e.error))?;
    // The temporary file is created private (0600); give the result the usual permissions of a new file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(unwritable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.bin");
        write_atomically(&path, b"first").expect("written");
        write_atomically(&path, b"second").expect("rewritten");
        assert_eq!(std::fs::read(&path).expect("readable"), b"second");
        let entries = std::fs::read_dir(dir.path()).expect("listable").count();
        assert_eq!(entries, 1);
    }

    #[test]
    fn a_missing_folder_is_unwritable() {
        let result = write_atomically(Path::new("/nonexistent/dir/out.bin"), b"x");
        assert!(matches!(result, Err(DataError::Unwritable { .. })));
    }
}
