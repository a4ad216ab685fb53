//! Where an image's bytes come from: a file, or memory (tests and fuzzing).
//!
//! Image formats are parsed over [`ImageSource`], a positioned reader with a
//! known length, so that the same parser serves files and in-memory bytes
//! and never needs a shared cursor. Reads never go past `len()`: a source
//! refuses them, and the parsers clamp or reject before asking.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::DiskError;

/// Bytes with a length, read at positions.
pub trait ImageSource: Send + Sync {
    /// The number of bytes.
    fn len(&self) -> u64;

    /// Whether there are no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`, which must
    /// lie within `0..len()`; anything else is an error, never a short read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

fn past_end(offset: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{len} bytes at offset {offset:#x} lie past the end ({size} bytes)"),
    )
}

fn in_bounds(offset: u64, len: usize, size: u64) -> bool {
    offset
        .checked_add(len as u64)
        .is_some_and(|end| end <= size)
}

impl ImageSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if !in_bounds(offset, buf.len(), ImageSource::len(self)) {
            return Err(past_end(offset, buf.len(), ImageSource::len(self)));
        }
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

/// A file, read with positioned reads (`pread`); its length is taken once,
/// when it is opened, and must not change underneath.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> Result<FileSource, DiskError> {
        let file = File::open(path).map_err(|source| DiskError::Open {
            path: path.to_owned(),
            source,
        })?;
        FileSource::new(path, file)
    }

    /// Wraps an open file; `path` names it in errors.
    pub fn new(path: &Path, file: File) -> Result<FileSource, DiskError> {
        let len = length(&file).map_err(|source| DiskError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(FileSource { file, len })
    }
}

/// The length of a regular file or a block device; directories are refused.
fn length(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::other("it is a directory"));
    }
    if meta.is_file() {
        return Ok(meta.len());
    }
    // A block device has no length in its metadata.
    let mut file = file;
    file.seek(SeekFrom::End(0))
}

impl ImageSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if !in_bounds(offset, buf.len(), self.len) {
            return Err(past_end(offset, buf.len(), self.len));
        }
        self.file.read_exact_at(buf, offset)
    }
}

/// Opens the backing files that qcow2 images name.
pub trait Opener {
    /// Opens `path` for reading. Returns the file's identity (two paths
    /// naming one file must give equal identities; backing loops are found
    /// by comparing them) and its bytes.
    fn open(&mut self, path: &Path) -> io::Result<(PathBuf, Box<dyn ImageSource>)>;
}

/// Opens backing files from the file system; identities are canonical paths.
#[derive(Debug, Default)]
pub struct FileOpener;

impl Opener for FileOpener {
    fn open(&mut self, path: &Path) -> io::Result<(PathBuf, Box<dyn ImageSource>)> {
        let identity = std::fs::canonicalize(path)?;
        let file = File::open(path)?;
        let len = length(&file)?;
        Ok((identity, Box::new(FileSource { file, len })))
    }
}

/// An opener that has no files: every backing file is missing.
#[derive(Debug, Default)]
pub struct NoBackingFiles;

impl Opener for NoBackingFiles {
    fn open(&mut self, _path: &Path) -> io::Result<(PathBuf, Box<dyn ImageSource>)> {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "backing files are not available here",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_source_refuses_reads_past_its_end() {
        let src = vec![1u8, 2, 3, 4];
        let mut buf = [0u8; 2];
        src.read_at(2, &mut buf).unwrap();
        assert_eq!(buf, [3, 4]);
        assert!(src.read_at(3, &mut buf).is_err());
        assert!(src.read_at(u64::MAX, &mut buf).is_err());
        src.read_at(4, &mut []).unwrap();
    }
}
