//! A read-only disk image of any supported format, with its backing chain.
//!
//! The format is detected by content: the qcow2 magic means qcow2, anything
//! else is raw. A backing file's format comes from the qcow2 header extension
//! when the image names it (`qemu-img create -F`), else it is detected the
//! same way. Relative backing names are relative to the directory of the
//! image that names them. Chains are at most [`MAX_CHAIN_DEPTH`] images long
//! and may not revisit an image (compared by [`Opener`] identity).

use std::io;
use std::path::{Path, PathBuf};

use crate::qcow2::{self, Qcow2};
use crate::source::{FileOpener, FileSource, ImageSource, Opener};
use crate::DiskError;

/// The most images a backing chain may hold, the top one included.
pub const MAX_CHAIN_DEPTH: usize = 16;

/// An image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The bytes are the disk.
    Raw,
    /// QEMU's copy-on-write format, versions 2 and 3.
    Qcow2,
}

impl Format {
    /// The format that `src`'s first bytes announce.
    pub fn detect(src: &dyn ImageSource) -> io::Result<Format> {
        if src.len() < qcow2::MAGIC.len() as u64 {
            return Ok(Format::Raw);
        }
        let mut magic = [0u8; 4];
        src.read_at(0, &mut magic)?;
        Ok(if magic == qcow2::MAGIC {
            Format::Qcow2
        } else {
            Format::Raw
        })
    }

    /// The name `qemu-img` uses.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }
}

enum Kind {
    Raw(Box<dyn ImageSource>),
    Qcow2(Box<Qcow2>),
}

/// A read-only image: guest-visible bytes `0..size()`.
pub struct Image {
    path: PathBuf,
    kind: Kind,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Raw(src) => f
                .debug_struct("Image")
                .field("path", &self.path)
                .field("format", &"raw")
                .field("size", &src.len())
                .finish(),
            Kind::Qcow2(q) => f
                .debug_struct("Image")
                .field("path", &self.path)
                .field("qcow2", q)
                .finish(),
        }
    }
}

impl Image {
    /// Opens the image file at `path` and its backing chain, read-only.
    pub fn open(path: &Path) -> Result<Image, DiskError> {
        let src = FileSource::open(path)?;
        Image::from_source(path, Box::new(src), &mut FileOpener)
    }

    /// Opens an image whose bytes are `src`; `path` names it in errors and is
    /// the directory relative backing names start from. Backing files come
    /// from `opener`.
    pub fn from_source(
        path: &Path,
        src: Box<dyn ImageSource>,
        opener: &mut dyn Opener,
    ) -> Result<Image, DiskError> {
        let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut chain = Vec::new();
        open_chain(path, identity, src, None, opener, &mut chain)
    }

    /// An image whose bytes are `src` as they are, whatever they look
    /// like (a raw disk whose content happens to begin like a qcow2 file
    /// stays raw); `path` names it in errors.
    pub fn raw(path: &Path, src: Box<dyn ImageSource>) -> Image {
        Image {
            path: path.to_owned(),
            kind: Kind::Raw(src),
        }
    }

    /// The path the image was opened as.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image's format.
    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Raw(_) => Format::Raw,
            Kind::Qcow2(_) => Format::Qcow2,
        }
    }

    /// The virtual size in bytes.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::Raw(src) => src.len(),
            Kind::Qcow2(q) => q.size(),
        }
    }

    /// The image this one reads unallocated clusters from.
    pub fn backing(&self) -> Option<&Image> {
        match &self.kind {
            Kind::Raw(_) => None,
            Kind::Qcow2(q) => q.backing(),
        }
    }

    /// The qcow2 details, for a qcow2 image.
    pub fn qcow2_header(&self) -> Option<&qcow2::Header> {
        match &self.kind {
            Kind::Raw(_) => None,
            Kind::Qcow2(q) => Some(q.header()),
        }
    }

    /// Reads guest bytes `offset..offset + buf.len()`, which must lie within
    /// `0..size()`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let size = self.size();
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(DiskError::OutOfRange {
                path: self.path.clone(),
                offset,
                len,
                size,
            });
        }
        match &self.kind {
            Kind::Raw(src) => src.read_at(offset, buf).map_err(|source| DiskError::Io {
                path: self.path.clone(),
                op: "read",
                offset: Some(offset),
                source,
            }),
            Kind::Qcow2(q) => q.read_at(offset, buf),
        }
    }
}

/// Where a backing name found in `image` points.
fn resolve(image: &Path, name: &Path) -> PathBuf {
    if name.is_absolute() {
        return name.to_owned();
    }
    match image.parent() {
        Some(dir) => dir.join(name),
        None => name.to_owned(),
    }
}

/// Opens `src` (format `format`, or detected) and, recursively, its backing
/// chain. `chain` holds the identities and paths of the images above it.
fn open_chain(
    path: &Path,
    identity: PathBuf,
    src: Box<dyn ImageSource>,
    format: Option<Format>,
    opener: &mut dyn Opener,
    chain: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<Image, DiskError> {
    let format = match format {
        Some(f) => f,
        None => Format::detect(&*src).map_err(|source| DiskError::Io {
            path: path.to_owned(),
            op: "read",
            offset: Some(0),
            source,
        })?,
    };
    chain.push((identity, path.to_owned()));
    let kind = match format {
        Format::Raw => Kind::Raw(src),
        Format::Qcow2 => {
            let mut q = Qcow2::open(path, src)?;
            if let Some(name) = q.backing_name() {
                let backing = resolve(path, name);
                let top = chain[0].1.clone();
                if chain.len() >= MAX_CHAIN_DEPTH {
                    return Err(DiskError::BackingTooDeep {
                        image: top,
                        max: MAX_CHAIN_DEPTH,
                    });
                }
                let backing_format = match q.header().backing_format.as_deref() {
                    None => None,
                    Some("raw") => Some(Format::Raw),
                    Some("qcow2") => Some(Format::Qcow2),
                    Some(other) => {
                        return Err(DiskError::Unsupported {
                            path: path.to_owned(),
                            what: format!("a backing file in the {other:?} format"),
                        })
                    }
                };
                let (id, bsrc) =
                    opener
                        .open(&backing)
                        .map_err(|source| DiskError::BackingOpen {
                            image: path.to_owned(),
                            backing: backing.clone(),
                            source,
                        })?;
                if chain.iter().any(|(seen, _)| *seen == id) {
                    let names: Vec<String> = chain
                        .iter()
                        .map(|(_, p)| p.display().to_string())
                        .chain([backing.display().to_string()])
                        .collect();
                    return Err(DiskError::BackingLoop {
                        image: top,
                        backing,
                        chain: names.join(" -> "),
                    });
                }
                let b = open_chain(&backing, id, bsrc, backing_format, opener, chain)?;
                q.set_backing(b);
            }
            Kind::Qcow2(Box::new(q))
        }
    };
    Ok(Image {
        path: path.to_owned(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_names_are_relative_to_the_image_directory() {
        assert_eq!(
            resolve(Path::new("/a/b/top.qcow2"), Path::new("base.raw")),
            PathBuf::from("/a/b/base.raw")
        );
        assert_eq!(
            resolve(Path::new("top.qcow2"), Path::new("base.raw")),
            PathBuf::from("base.raw")
        );
        assert_eq!(
            resolve(Path::new("/a/top.qcow2"), Path::new("/c/base.raw")),
            PathBuf::from("/c/base.raw")
        );
    }

    #[test]
    fn anything_without_the_qcow2_magic_is_raw() {
        let img = Image::from_source(
            Path::new("x.img"),
            Box::new(vec![7u8; 1000]),
            &mut crate::NoBackingFiles,
        )
        .unwrap();
        assert_eq!(img.format(), Format::Raw);
        assert_eq!(img.size(), 1000);
        let mut b = [0u8; 10];
        img.read_at(990, &mut b).unwrap();
        assert!(img.read_at(991, &mut b).is_err());
    }
}
