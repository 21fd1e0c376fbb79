//! Permissions of the files the crate writes.

use std::path::Path;

use crate::error::ScoreNetError;

/// Gives a file just written the usual permissions of a new file, `rw-r--r--` (0644), whatever
/// the writer left: the SafeTensors writer goes through a private (0600) temporary file.
pub(crate) fn make_readable(path: &Path) -> Result<(), ScoreNetError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(|e| {
            ScoreNetError::Unwritable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
