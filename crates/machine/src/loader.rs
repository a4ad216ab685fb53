//! Loading guest images into RAM. Images are untrusted: every size and
//! address is checked, and a bad image is one error sentence.

use object::elf::{EM_RISCV, PT_LOAD};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::Endianness;
use rewind_hart::Ram;
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("{name} is not a 64-bit little-endian ELF file ({detail})")]
    NotElf64 { name: String, detail: String },
    #[error("{name} is an ELF file for machine {machine}, not RISC-V")]
    WrongMachine { name: String, machine: u16 },
    #[error("{name} has no loadable segments")]
    NoSegments { name: String },
    #[error("{name}: segment {index} is damaged: {detail}")]
    BadSegment {
        name: String,
        index: usize,
        detail: String,
    },
    #[error("{name} is neither an ELF file nor a RISC-V Linux Image (no 'RSC\\x05' magic at offset 0x38)")]
    UnknownFormat { name: String },
    #[error("{name}: segment {index} at {start:#x}..{end:#x} does not fit in RAM {ram_start:#x}..{ram_end:#x}; try a larger --mem")]
    OutsideRam {
        name: String,
        index: usize,
        start: u64,
        end: u64,
        ram_start: u64,
        ram_end: u64,
    },
}

/// A loadable piece of an image: bytes to place at a physical address, and
/// how many zero bytes follow them. The bytes are shared, not copied, between
/// the configuration, the boot plan and every reload at reset: a kernel and
/// initrd are tens of MiB, and each copy costs start-up time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    /// The virtual address the image was linked for (equal to `paddr` for
    /// bare-metal programs; the kernel's virtual address for a vmlinux).
    pub vaddr: u64,
    pub data: Arc<[u8]>,
    pub zero_fill: u64,
}

/// A parsed ELF image, ready to load (and reload on reset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfImage {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

/// Parses an ELF64 RISC-V executable. Segments are placed at their physical
/// addresses, as QEMU does.
pub fn parse_elf(name: &str, bytes: &[u8]) -> Result<ElfImage, LoadError> {
    let not_elf = |detail: String| LoadError::NotElf64 {
        name: name.to_string(),
        detail,
    };
    let file = ElfFile64::<Endianness>::parse(bytes).map_err(|e| not_elf(e.to_string()))?;
    let header = file.elf_header();
    let endian = file.endian();
    if !matches!(endian, Endianness::Little) {
        return Err(not_elf("big-endian".into()));
    }
    let machine = header.e_machine(endian);
    if machine != EM_RISCV {
        return Err(LoadError::WrongMachine {
            name: name.to_string(),
            machine,
        });
    }
    let mut segments = Vec::new();
    for (index, ph) in file.elf_program_headers().iter().enumerate() {
        if ph.p_type(endian) != PT_LOAD {
            continue;
        }
        let bad = |detail: &str| LoadError::BadSegment {
            name: name.to_string(),
            index,
            detail: detail.to_string(),
        };
        let data = ph
            .data(endian, bytes)
            .map_err(|_| bad("its file range lies outside the file"))?;
        let filesz = ph.p_filesz(endian);
        let memsz = ph.p_memsz(endian);
        if memsz < filesz {
            return Err(bad("its memory size is smaller than its file size"));
        }
        if memsz == 0 {
            continue;
        }
        segments.push(Segment {
            paddr: ph.p_paddr(endian),
            vaddr: ph.p_vaddr(endian),
            data: Arc::from(data),
            zero_fill: memsz - filesz,
        });
    }
    if segments.is_empty() {
        return Err(LoadError::NoSegments {
            name: name.to_string(),
        });
    }
    Ok(ElfImage {
        entry: header.e_entry(endian),
        segments,
    })
}

/// Checks that every segment fits in `ram`, then copies them in.
pub fn load_segments(name: &str, segments: &[Segment], ram: &mut Ram) -> Result<(), LoadError> {
    check_segments(name, segments, ram)?;
    for seg in segments {
        ram.write_bytes(seg.paddr, &seg.data)
            .expect("checked above");
        let zero_at = seg.paddr + seg.data.len() as u64;
        let zeros = vec![0u8; seg.zero_fill as usize];
        ram.write_bytes(zero_at, &zeros).expect("checked above");
    }
    Ok(())
}

/// Checks that every segment fits in `ram`.
pub fn check_segments(name: &str, segments: &[Segment], ram: &Ram) -> Result<(), LoadError> {
    for (index, seg) in segments.iter().enumerate() {
        let len = seg.data.len() as u64 + seg.zero_fill;
        let end = seg.paddr.checked_add(len);
        if end.is_none() || ram.offset_of(seg.paddr, len).is_none() {
            return Err(LoadError::OutsideRam {
                name: name.to_string(),
                index,
                start: seg.paddr,
                end: end.unwrap_or(u64::MAX),
                ram_start: ram.base(),
                ram_end: ram.base() + ram.size(),
            });
        }
    }
    Ok(())
}

/// Offset and value of the magic number in a RISC-V Linux `Image` header.
const IMAGE_MAGIC_OFFSET: usize = 0x38;
const IMAGE_MAGIC: &[u8; 4] = b"RSC\x05";

/// A kernel in one of the formats Rewind boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelImage {
    Elf(ElfImage),
    /// A RISC-V Linux `Image`: a flat binary, loaded at a 2 MiB aligned
    /// address and entered at its first byte.
    Flat(Arc<[u8]>),
}

/// Recognises an ELF file or a RISC-V Linux Image.
pub fn parse_kernel(name: &str, bytes: &Arc<[u8]>) -> Result<KernelImage, LoadError> {
    if bytes.starts_with(b"\x7fELF") {
        return parse_elf(name, bytes).map(KernelImage::Elf);
    }
    if bytes.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) == Some(IMAGE_MAGIC) {
        return Ok(KernelImage::Flat(Arc::clone(bytes)));
    }
    Err(LoadError::UnknownFormat {
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_recognised_by_its_magic_and_garbage_is_rejected() {
        let mut image = vec![0u8; 0x40];
        image[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(IMAGE_MAGIC);
        let image: Arc<[u8]> = image.into();
        assert_eq!(
            parse_kernel("k", &image),
            Ok(KernelImage::Flat(image.clone()))
        );
        assert!(matches!(
            parse_kernel("k", &Arc::from(&b"hello"[..])),
            Err(LoadError::UnknownFormat { .. })
        ));
        assert!(matches!(
            parse_kernel("k", &Arc::from(&b"\x7fELF\x02"[..])),
            Err(LoadError::NotElf64 { .. })
        ));
    }
}
