//! Recognising RISC-V kernel image formats, and unwrapping compressed ones.
//!
//! What Debian ships (trixie, linux-image-6.12.*-riscv64): `/boot/vmlinux-<ver>`
//! is, despite its name, not an ELF file but an uncompressed RISC-V `Image`
//! with an EFI stub: it begins with "MZ" (which decodes as `c.li s4,-13`, so
//! the first instruction is harmless), has the Image header's magic "RSC\x05"
//! at 0x38, and a PE/COFF header at the offset stored at 0x3c. The VMM can
//! load it as a plain Image.
//!
//! The Image header (Documentation/arch/riscv/boot-image-header.rst), all
//! little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0x00 | 4 | code0 (on EFI-stub kernels: "MZ" + half a jump) |
//! | 0x04 | 4 | code1 |
//! | 0x08 | 8 | text_offset: where to load it, relative to the start of RAM |
//! | 0x10 | 8 | image_size: bytes the kernel occupies once loaded, BSS included |
//! | 0x18 | 8 | flags (bit 0: 0 = little-endian) |
//! | 0x20 | 4 | version (major << 16 \| minor) |
//! | 0x24 | 4 | res1 |
//! | 0x28 | 8 | res2 |
//! | 0x30 | 8 | magic "RISCV\0\0\0" (deprecated) |
//! | 0x38 | 4 | magic2 "RSC\x05" |
//! | 0x3c | 4 | res3 (PE header offset on EFI-stub kernels) |
//!
//! Compressed forms handled here: a gzip'd Image (`Image.gz`) and an EFI
//! "zboot" image (MZ, "zimg" at offset 4) with a gzip payload. Anything else is
//! reported with a sentence saying what it is.

use std::io::Read;

use crate::GuestError;

/// Offset of the Image header's `magic2` field.
const IMAGE_MAGIC2_OFFSET: usize = 0x38;
const IMAGE_MAGIC2: &[u8; 4] = b"RSC\x05";
const IMAGE_MAGIC_OFFSET: usize = 0x30;
const IMAGE_MAGIC: &[u8; 8] = b"RISCV\0\0\0";
const IMAGE_HEADER_LEN: usize = 0x40;
const EM_RISCV: u16 = 243;
/// Largest kernel we will decompress: Debian's is 31 MB, this is ample room.
const MAX_KERNEL_SIZE: u64 = 512 << 20;

/// The fields of a RISC-V `Image` header that matter for loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Load offset from the start of RAM (0x20_0000 = 2 MiB on RV64).
    pub text_offset: u64,
    /// Bytes the kernel occupies once loaded, including BSS; larger than the file.
    pub image_size: u64,
    /// Header flags; bit 0 is the endianness (0 = little).
    pub flags: u64,
    /// Header version, `major << 16 | minor` (0.2 on current kernels).
    pub version: u32,
    /// Whether the image also carries a PE/COFF header (an EFI stub).
    pub efi_stub: bool,
}

/// What a kernel file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF executable for RISC-V (a `vmlinux` straight from the build).
    Elf,
    /// A RISC-V `Image` (raw binary with the boot header), bootable as is.
    Image(ImageHeader),
    /// A gzip-compressed file, presumably an `Image.gz`.
    Gzip,
    /// An EFI zboot image with the named payload compression ("gzip", "zstd", ...).
    EfiZboot {
        /// The compression type recorded in the zboot header.
        compression: String,
    },
}

impl KernelFormat {
    /// Whether the VMM can boot this format directly (ELF or Image).
    pub fn is_bootable(&self) -> bool {
        matches!(self, KernelFormat::Elf | KernelFormat::Image(_))
    }

    /// A short description for logs and manifests.
    pub fn describe(&self) -> String {
        match self {
            KernelFormat::Elf => "RISC-V ELF executable".to_string(),
            KernelFormat::Image(h) => format!(
                "RISC-V Image v{}.{}{}, text_offset {:#x}, image_size {:#x}",
                h.version >> 16,
                h.version & 0xffff,
                if h.efi_stub { " with EFI stub" } else { "" },
                h.text_offset,
                h.image_size
            ),
            KernelFormat::Gzip => "gzip-compressed kernel".to_string(),
            KernelFormat::EfiZboot { compression } => {
                format!("EFI zboot image ({compression} payload)")
            }
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Identifies a kernel file from its first bytes.
pub fn detect_kernel_format(bytes: &[u8]) -> Result<KernelFormat, GuestError> {
    let bad = |detail: String| Err(GuestError::BadKernel { detail });
    if bytes.len() >= 20 && bytes.starts_with(b"\x7fELF") {
        if bytes[4] != 2 || bytes[5] != 1 {
            return bad("an ELF file that is not 64-bit little-endian".into());
        }
        let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
        if machine != EM_RISCV {
            return bad(format!(
                "an ELF file for machine {machine}, not RISC-V ({EM_RISCV})"
            ));
        }
        return Ok(KernelFormat::Elf);
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(KernelFormat::Gzip);
    }
    // zboot: "MZ\0\0" "zimg" payload_offset payload_size 0 0 "comp\0"
    if bytes.len() >= 0x40 && bytes.starts_with(b"MZ") && &bytes[4..8] == b"zimg" {
        let name = &bytes[24..0x3c];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        let compression = String::from_utf8_lossy(&name[..end]).into_owned();
        return Ok(KernelFormat::EfiZboot { compression });
    }
    if bytes.len() >= IMAGE_HEADER_LEN
        && (&bytes[IMAGE_MAGIC2_OFFSET..IMAGE_MAGIC2_OFFSET + 4] == IMAGE_MAGIC2
            || &bytes[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 8] == IMAGE_MAGIC)
    {
        let header = ImageHeader {
            text_offset: u64_at(bytes, 0x08),
            image_size: u64_at(bytes, 0x10),
            flags: u64_at(bytes, 0x18),
            version: u32_at(bytes, 0x20),
            efi_stub: bytes.starts_with(b"MZ"),
        };
        if header.flags & 1 != 0 {
            return bad("a big-endian RISC-V Image".into());
        }
        return Ok(KernelFormat::Image(header));
    }
    if bytes.starts_with(b"MZ") {
        return bad("a PE/COFF (EFI) executable without a RISC-V Image header".into());
    }
    for (magic, name) in [
        (&b"\xfd7zXZ\0"[..], "xz"),
        (&b"\x28\xb5\x2f\xfd"[..], "zstd"),
        (&b"BZh"[..], "bzip2"),
    ] {
        if bytes.starts_with(magic) {
            return bad(format!(
                "{name}-compressed, which is not supported (only gzip is)"
            ));
        }
    }
    bad("neither an ELF file nor a RISC-V Image (no \"RSC\\x05\" magic at offset 0x38)".into())
}

/// Returns the kernel in a directly bootable form (ELF or Image) with its
/// format, decompressing a gzip'd Image or a gzip zboot image.
pub fn bootable_kernel(bytes: Vec<u8>) -> Result<(Vec<u8>, KernelFormat), GuestError> {
    let inner = match detect_kernel_format(&bytes)? {
        f @ (KernelFormat::Elf | KernelFormat::Image(_)) => return Ok((bytes, f)),
        KernelFormat::Gzip => gunzip(&bytes)?,
        KernelFormat::EfiZboot { compression } if compression == "gzip" => {
            let offset = u32_at(&bytes, 8) as usize;
            let size = u32_at(&bytes, 12) as usize;
            let payload = offset
                .checked_add(size)
                .and_then(|end| bytes.get(offset..end))
                .ok_or_else(|| GuestError::BadKernel {
                    detail: format!("an EFI zboot image whose payload ({size} bytes at {offset:#x}) lies outside the file"),
                })?;
            gunzip(payload)?
        }
        KernelFormat::EfiZboot { compression } => {
            return Err(GuestError::BadKernel {
                detail: format!("an EFI zboot image with a {compression} payload, which is not supported (only gzip is)"),
            })
        }
    };
    match detect_kernel_format(&inner)? {
        f @ (KernelFormat::Elf | KernelFormat::Image(_)) => Ok((inner, f)),
        other => Err(GuestError::BadKernel {
            detail: format!("compressed twice (a {} inside)", other.describe()),
        }),
    }
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, GuestError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_KERNEL_SIZE + 1)
        .read_to_end(&mut out)
        .map_err(|e| GuestError::BadKernel {
            detail: format!("gzip data that does not decompress ({e})"),
        })?;
    if out.len() as u64 > MAX_KERNEL_SIZE {
        return Err(GuestError::BadKernel {
            detail: format!(
                "larger than {} MiB once decompressed",
                MAX_KERNEL_SIZE >> 20
            ),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The first 64 bytes of Debian trixie's linux-image-6.12.107+deb13-riscv64
    /// /boot/vmlinux-6.12.107+deb13-riscv64, copied byte for byte.
    const DEBIAN_HEADER: [u8; 64] = [
        0x4d, 0x5a, 0x6f, 0x10, 0x60, 0x0d, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
        0x00, //
        0x00, 0xb0, 0xe6, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, //
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, //
        0x52, 0x49, 0x53, 0x43, 0x56, 0x00, 0x00, 0x00, 0x52, 0x53, 0x43, 0x05, 0x40, 0x00, 0x00,
        0x00,
    ];

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn debian_like_image() -> Vec<u8> {
        let mut image = DEBIAN_HEADER.to_vec();
        image.resize(4096, 0x13);
        image
    }

    #[test]
    fn debian_kernel_is_an_uncompressed_image_with_efi_stub() {
        let f = detect_kernel_format(&debian_like_image()).unwrap();
        assert_eq!(
            f,
            KernelFormat::Image(ImageHeader {
                text_offset: 0x20_0000,
                image_size: 0x1e6_b000,
                flags: 0,
                version: 2,
                efi_stub: true
            })
        );
        assert!(f.is_bootable());
        assert_eq!(
            f.describe(),
            "RISC-V Image v0.2 with EFI stub, text_offset 0x200000, image_size 0x1e6b000"
        );
    }

    #[test]
    fn recognises_riscv_elf_and_rejects_other_machines() {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18..20].copy_from_slice(&243u16.to_le_bytes());
        assert_eq!(detect_kernel_format(&elf).unwrap(), KernelFormat::Elf);
        elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        let err = detect_kernel_format(&elf).unwrap_err().to_string();
        assert!(err.contains("machine 62"), "{err}");
    }

    #[test]
    fn old_images_with_only_the_deprecated_magic_are_accepted() {
        let mut image = vec![0u8; 64];
        image[0x30..0x38].copy_from_slice(b"RISCV\0\0\0");
        assert!(
            matches!(detect_kernel_format(&image).unwrap(), KernelFormat::Image(h) if !h.efi_stub)
        );
    }

    #[test]
    fn gzipped_image_is_decompressed() {
        let image = debian_like_image();
        let gz = gzip(&image);
        assert_eq!(detect_kernel_format(&gz).unwrap(), KernelFormat::Gzip);
        let (out, f) = bootable_kernel(gz).unwrap();
        assert_eq!(out, image);
        assert!(matches!(f, KernelFormat::Image(_)));
    }

    #[test]
    fn gzip_zboot_image_is_unwrapped() {
        let image = debian_like_image();
        let payload = gzip(&image);
        let mut zboot = vec![0u8; 0x100];
        zboot[..8].copy_from_slice(b"MZ\0\0zimg");
        zboot[8..12].copy_from_slice(&0x100u32.to_le_bytes());
        zboot[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        zboot[24..29].copy_from_slice(b"gzip\0");
        zboot.extend_from_slice(&payload);
        zboot.extend_from_slice(&(image.len() as u32).to_le_bytes()); // ZBOOT_SIZE_LEN trailer
        assert_eq!(
            detect_kernel_format(&zboot).unwrap(),
            KernelFormat::EfiZboot {
                compression: "gzip".into()
            }
        );
        assert_eq!(bootable_kernel(zboot).unwrap().0, image);
    }

    #[test]
    fn zstd_zboot_and_xz_are_reported_not_guessed() {
        let mut zboot = vec![0u8; 0x40];
        zboot[..8].copy_from_slice(b"MZ\0\0zimg");
        zboot[24..29].copy_from_slice(b"zstd\0");
        let err = bootable_kernel(zboot).unwrap_err().to_string();
        assert!(err.contains("zstd payload"), "{err}");
        let err = detect_kernel_format(b"\xfd7zXZ\0rest-of-file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("xz-compressed"), "{err}");
    }

    #[test]
    fn random_bytes_are_rejected_with_a_sentence() {
        let err = detect_kernel_format(&[0u8; 100]).unwrap_err().to_string();
        assert!(
            err.contains("neither an ELF file nor a RISC-V Image"),
            "{err}"
        );
        assert!(detect_kernel_format(&[]).is_err());
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let mut gz = gzip(&debian_like_image());
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        gz.truncate(n - 4);
        assert!(bootable_kernel(gz).is_err());
    }
}
