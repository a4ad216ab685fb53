//! `--overlay-dir`: where disk overlays keep the guest's writes.

use crate::SessionError;
use std::path::{Path, PathBuf};

/// The directory `--overlay-dir` names, checked, or the host's temporary
/// directory. Checked here, before anything runs, so that a mistyped
/// directory is one sentence that names the option (even for a machine
/// without disks, which would never use it).
pub fn overlay_dir(arg: Option<&Path>) -> Result<PathBuf, SessionError> {
    let Some(dir) = arg else {
        return Ok(std::env::temp_dir());
    };
    let unusable = |why: String| {
        SessionError::Message(format!(
            "cannot keep disk overlays in --overlay-dir {}: {why}",
            dir.display()
        ))
    };
    let meta = std::fs::metadata(dir).map_err(|e| unusable(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unusable("it is not a directory".to_string()));
    }
    Ok(dir.to_owned())
}
