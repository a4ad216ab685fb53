//! The host file that holds an overlay's blocks: block `i` at byte
//! `i * 4096`, a hole wherever the guest has not written, so the file takes
//! host disk space only for written blocks and rewriting a block never
//! grows it.
//!
//! The file has no name: `tempfile::tempfile_in` creates it with
//! `O_TMPFILE` (or creates and unlinks it at once where that flag is not
//! supported), so the kernel frees it when the last descriptor closes,
//! however the process ends, SIGKILL included, and nothing is left behind
//! in the directory.
//!
//! Nothing about the file (its directory, inode or timing) reaches the
//! guest: the guest sees only the bytes read back, which are the bytes
//! written.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::DiskError;

/// An unnamed file of blocks, in a directory of the host.
#[derive(Debug)]
pub(crate) struct BlockFile {
    file: File,
    /// Where the file lives, for error messages.
    dir: PathBuf,
}

impl BlockFile {
    /// Creates an empty file in `dir`; `disk` names the disk it is for in
    /// the error.
    pub(crate) fn create_in(dir: &Path, disk: &Path) -> Result<BlockFile, DiskError> {
        let file = tempfile::tempfile_in(dir).map_err(|source| DiskError::OverlayCreate {
            dir: dir.to_owned(),
            disk: disk.to_owned(),
            source,
        })?;
        Ok(BlockFile {
            file,
            dir: dir.to_owned(),
        })
    }

    /// The directory the file is in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, op: &'static str, offset: u64) -> impl FnOnce(io::Error) -> DiskError {
        let dir = self.dir.clone();
        move |source| DiskError::OverlayIo {
            dir,
            op,
            offset,
            source,
        }
    }

    /// Fills `buf` from `offset`, which the caller has written before.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(self.error("read", offset))
    }

    /// Writes `data` at `offset` (a full disk is an error like any other).
    pub(crate) fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.file
            .write_all_at(data, offset)
            .map_err(self.error("write", offset))
    }

    /// The bytes of host storage the file occupies (not its length, which
    /// counts the holes).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
    }

    /// The file's length.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}
