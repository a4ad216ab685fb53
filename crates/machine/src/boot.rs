//! Boot protocols: where each image goes in RAM and how each hart starts.
//!
//! The layout follows QEMU's `virt` machine so the same images boot the same
//! way on both:
//! - firmware (OpenSBI's `fw_dynamic.bin`) at the start of RAM;
//! - the kernel 2 MiB further up (a Linux `Image` must be 2 MiB aligned);
//! - the device tree in the last 2 MiB-aligned block that holds it, leaving
//!   room after it for firmware to grow it in place;
//! - OpenSBI's `fw_dynamic_info` in the page below the device tree;
//! - the initrd page-aligned below that.
//!
//! Every hart starts with a0 = its id and a1 = the device tree. With OpenSBI
//! all harts enter the firmware in M-mode with a2 = &fw_dynamic_info; with the
//! built-in SBI hart 0 enters the kernel in S-mode and the others wait for an
//! SBI HSM hart_start; with no firmware all harts enter the kernel in M-mode.

use crate::board::RAM_BASE;
use crate::loader::{ElfImage, KernelImage, Segment};
use rewind_hart::prv;
use std::sync::Arc;

pub const KERNEL_OFFSET: u64 = 2 << 20;
const FDT_ALIGN: u64 = 2 << 20;
const PAGE: u64 = 4096;
/// `fw_dynamic_info` as OpenSBI's docs/firmware/fw_dynamic.md describe it.
const FW_DYNAMIC_MAGIC: u64 = 0x4942_534f;
const FW_DYNAMIC_VERSION: u64 = 2;
const NEXT_MODE_S: u64 = 1;

/// Who plays the M-mode firmware.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// No firmware: the kernel starts in M-mode.
    None,
    /// Rewind answers SBI calls itself; the kernel starts in S-mode.
    Builtin,
    /// A firmware binary (OpenSBI fw_dynamic) loaded at the start of RAM.
    Binary { name: String, bytes: Arc<[u8]> },
}

/// How one hart starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HartStart {
    pub pc: u64,
    pub prv: u8,
    pub a0: u64,
    pub a1: u64,
    pub a2: u64,
    /// False for harts that wait for an SBI hart_start.
    pub running: bool,
}

/// Everything the machine needs to reset itself into the boot state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootPlan {
    pub loads: Vec<Segment>,
    pub harts: Vec<HartStart>,
    pub fdt_addr: u64,
    pub initrd: Option<(u64, u64)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootError {
    #[error("{what} ({size} bytes) does not fit in {mem} bytes of RAM together with the other images; try a larger --mem")]
    TooLarge { what: String, size: u64, mem: u64 },
    #[error("firmware {name} is {size} bytes, more than the {limit} bytes below the kernel's load address")]
    FirmwareTooLarge { name: String, size: u64, limit: u64 },
    #[error("a kernel is needed: pass --kernel FILE")]
    NoKernel,
    #[error("{mem_mib} MiB of RAM is too little to boot this Linux kernel and initrd: give at least {need_mib} MiB with --mem")]
    TooLittleForLinux { mem_mib: u64, need_mib: u64 },
}

/// Memory a Linux kernel needs beyond its image and initrd before it can
/// print anything. Measured with Debian's 6.12 kernel: with less, it stops
/// before its earliest console (silently, on QEMU too), so Rewind refuses
/// the configuration up front rather than run a machine that hangs.
const LINUX_MIN_HEADROOM: u64 = 48 << 20;

/// The `image_size` field of a RISC-V Linux Image header (offset 16): the
/// memory the kernel occupies from its load address, BSS included.
fn image_size(image: &[u8]) -> u64 {
    image
        .get(16..24)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// Where the kernel image lands and where it is entered.
struct PlacedKernel {
    segments: Vec<Segment>,
    entry: u64,
    end: u64,
}

fn place_kernel(kernel: &KernelImage, base: u64, keep_elf_addresses: bool) -> PlacedKernel {
    match kernel {
        KernelImage::Flat(bytes) => PlacedKernel {
            segments: vec![Segment {
                paddr: base,
                vaddr: base,
                data: bytes.clone(),
                zero_fill: 0,
            }],
            entry: base,
            // The header's image_size includes the BSS, which the file does not.
            end: base.saturating_add((bytes.len() as u64).max(image_size(bytes))),
        },
        KernelImage::Elf(ElfImage { entry, segments }) if keep_elf_addresses => PlacedKernel {
            segments: segments.clone(),
            entry: *entry,
            end: segments
                .iter()
                .map(|s| s.paddr.saturating_add(s.data.len() as u64 + s.zero_fill))
                .max()
                .unwrap_or(base),
        },
        KernelImage::Elf(ElfImage { entry, segments }) => {
            // A kernel ELF is linked for its virtual addresses; keep the
            // segments' layout relative to the lowest one and put that at `base`.
            let low = segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
            let moved: Vec<Segment> = segments
                .iter()
                .map(|s| Segment {
                    paddr: base + (s.vaddr - low),
                    ..s.clone()
                })
                .collect();
            let end = moved
                .iter()
                .map(|s| s.paddr.saturating_add(s.data.len() as u64 + s.zero_fill))
                .max()
                .unwrap_or(base);
            PlacedKernel {
                segments: moved,
                entry: base + entry.wrapping_sub(low),
                end,
            }
        }
    }
}

/// Computes the boot plan. `fdt` builds the device tree once the initrd's
/// place is known; its size decides where it goes.
pub fn plan(
    mem_size: u64,
    harts: usize,
    firmware: &Firmware,
    kernel: Option<&KernelImage>,
    initrd: Option<&Arc<[u8]>>,
    fdt: &mut dyn FnMut(Option<(u64, u64)>) -> Vec<u8>,
) -> Result<BootPlan, BootError> {
    let ram_end = RAM_BASE + mem_size;
    let mut loads = Vec::new();
    let too_large = |what: &str, size: u64| BootError::TooLarge {
        what: what.to_string(),
        size,
        mem: mem_size,
    };

    let kernel_base = match firmware {
        Firmware::None => RAM_BASE,
        _ => RAM_BASE + KERNEL_OFFSET,
    };
    if let Firmware::Binary { name, bytes } = firmware {
        if bytes.len() as u64 > KERNEL_OFFSET {
            return Err(BootError::FirmwareTooLarge {
                name: name.clone(),
                size: bytes.len() as u64,
                limit: KERNEL_OFFSET,
            });
        }
        loads.push(Segment {
            paddr: RAM_BASE,
            vaddr: RAM_BASE,
            data: bytes.clone(),
            zero_fill: 0,
        });
    }
    let kernel_image = kernel;
    let kernel = match (kernel, firmware) {
        (Some(k), _) => Some(place_kernel(k, kernel_base, *firmware == Firmware::None)),
        (None, Firmware::Binary { .. }) => None,
        (None, _) => return Err(BootError::NoKernel),
    };
    let kernel_end = kernel.as_ref().map_or(kernel_base, |k| k.end);
    if kernel_end > ram_end {
        return Err(too_large("the kernel", kernel_end - kernel_base));
    }
    if let (Some(KernelImage::Flat(_)), false) = (kernel_image, *firmware == Firmware::None) {
        let need =
            (kernel_end - RAM_BASE) + initrd.map_or(0, |i| i.len() as u64) + LINUX_MIN_HEADROOM;
        if mem_size < need {
            return Err(BootError::TooLittleForLinux {
                mem_mib: mem_size >> 20,
                need_mib: need.div_ceil(1 << 20),
            });
        }
    }

    // The device tree's size depends on the initrd's address only through
    // fixed-size properties, so build it once to learn its size.
    let initrd_len = initrd.map_or(0, |i| i.len() as u64);
    let probe = fdt(initrd.map(|_| (0, initrd_len)));
    let fdt_size = probe.len() as u64;
    let fdt_addr = ram_end
        .checked_sub(fdt_size)
        .map(|a| a & !(FDT_ALIGN - 1))
        .filter(|&a| a >= kernel_end)
        .ok_or_else(|| too_large("the device tree", fdt_size))?;
    let info_addr = fdt_addr - PAGE;
    let initrd_range = match initrd {
        Some(bytes) => {
            let start = info_addr
                .checked_sub(bytes.len() as u64)
                .map(|a| a & !(PAGE - 1))
                .filter(|&a| a >= kernel_end)
                .ok_or_else(|| too_large("the initrd", bytes.len() as u64))?;
            loads.push(Segment {
                paddr: start,
                vaddr: start,
                data: Arc::clone(bytes),
                zero_fill: 0,
            });
            Some((start, start + bytes.len() as u64))
        }
        None => None,
    };
    let blob = fdt(initrd_range);
    debug_assert_eq!(blob.len() as u64, fdt_size);
    loads.push(Segment {
        paddr: fdt_addr,
        vaddr: fdt_addr,
        data: blob.into(),
        zero_fill: 0,
    });

    let entry = kernel.as_ref().map_or(kernel_base, |k| k.entry);
    if let Some(k) = kernel {
        loads.extend(k.segments);
    }
    let starts = (0..harts as u64)
        .map(|id| match firmware {
            Firmware::None => HartStart {
                pc: entry,
                prv: prv::M,
                a0: id,
                a1: fdt_addr,
                a2: 0,
                running: true,
            },
            Firmware::Builtin => HartStart {
                pc: entry,
                prv: prv::S,
                a0: id,
                a1: fdt_addr,
                a2: 0,
                running: id == 0,
            },
            Firmware::Binary { .. } => HartStart {
                pc: RAM_BASE,
                prv: prv::M,
                a0: id,
                a1: fdt_addr,
                a2: info_addr,
                running: true,
            },
        })
        .collect();
    if matches!(firmware, Firmware::Binary { .. }) {
        let info = [
            FW_DYNAMIC_MAGIC,
            FW_DYNAMIC_VERSION,
            entry,
            NEXT_MODE_S,
            0, // options
            0, // boot hart
        ];
        loads.push(Segment {
            paddr: info_addr,
            vaddr: info_addr,
            data: info
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
            zero_fill: 0,
        });
    }
    Ok(BootPlan {
        loads,
        harts: starts,
        fdt_addr,
        initrd: initrd_range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_fdt(_initrd: Option<(u64, u64)>) -> Vec<u8> {
        vec![0xd0; 3000]
    }

    #[test]
    fn opensbi_layout_puts_kernel_2mib_up_and_passes_dynamic_info() {
        let fw = Firmware::Binary {
            name: "fw".into(),
            bytes: vec![1; 1000].into(),
        };
        let kernel = KernelImage::Flat(vec![0; 5000].into());
        let initrd: Arc<[u8]> = vec![3u8; 10_000].into();
        let p = plan(
            128 << 20,
            2,
            &fw,
            Some(&kernel),
            Some(&initrd),
            &mut fake_fdt,
        )
        .unwrap();
        assert_eq!(p.fdt_addr, RAM_BASE + (126 << 20));
        let (start, end) = p.initrd.unwrap();
        assert_eq!(end - start, 10_000);
        assert!(end <= p.fdt_addr - PAGE);
        assert_eq!(start % PAGE, 0);
        for h in &p.harts {
            assert_eq!((h.pc, h.prv, h.a2), (RAM_BASE, prv::M, p.fdt_addr - PAGE));
        }
        let info = p
            .loads
            .iter()
            .find(|s| s.paddr == p.fdt_addr - PAGE)
            .unwrap();
        assert_eq!(
            &info.data[16..24],
            &(RAM_BASE + KERNEL_OFFSET).to_le_bytes()
        );
    }

    #[test]
    fn nothing_is_placed_inside_an_image_s_declared_size() {
        // 63 MiB declared in 64 MiB of RAM: the device tree cannot go above it.
        let mut bytes = vec![0u8; 4096];
        bytes[16..24].copy_from_slice(&(63u64 << 20).to_le_bytes());
        let kernel = KernelImage::Flat(bytes.clone().into());
        let err = plan(
            64 << 20,
            1,
            &Firmware::None,
            Some(&kernel),
            None,
            &mut fake_fdt,
        );
        assert!(matches!(err, Err(BootError::TooLarge { .. })), "{err:?}");
        // A hostile header cannot overflow the address arithmetic.
        bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let kernel = KernelImage::Flat(bytes.into());
        let err = plan(
            64 << 20,
            1,
            &Firmware::Builtin,
            Some(&kernel),
            None,
            &mut fake_fdt,
        );
        assert!(matches!(err, Err(BootError::TooLarge { .. })), "{err:?}");
    }

    #[test]
    fn linux_images_need_headroom_beyond_image_and_initrd() {
        let kernel = KernelImage::Flat(vec![0; 30 << 20].into());
        let initrd: Arc<[u8]> = vec![3u8; 2 << 20].into();
        let err = plan(
            80 << 20,
            1,
            &Firmware::Builtin,
            Some(&kernel),
            Some(&initrd),
            &mut fake_fdt,
        )
        .unwrap_err();
        assert_eq!(
            err,
            BootError::TooLittleForLinux {
                mem_mib: 80,
                need_mib: 82
            }
        );
        assert!(plan(
            96 << 20,
            1,
            &Firmware::Builtin,
            Some(&kernel),
            Some(&initrd),
            &mut fake_fdt
        )
        .is_ok());
    }

    #[test]
    fn builtin_firmware_starts_only_hart_zero_in_supervisor_mode() {
        let kernel = KernelImage::Flat(vec![0; 100].into());
        let p = plan(
            64 << 20,
            3,
            &Firmware::Builtin,
            Some(&kernel),
            None,
            &mut fake_fdt,
        )
        .unwrap();
        let running: Vec<bool> = p.harts.iter().map(|h| h.running).collect();
        assert_eq!(running, vec![true, false, false]);
        assert_eq!(p.harts[0].prv, prv::S);
        assert_eq!(p.harts[0].pc, RAM_BASE + KERNEL_OFFSET);
    }

    #[test]
    fn images_that_do_not_fit_are_refused_with_what_and_how_big() {
        let kernel = KernelImage::Flat(vec![0; 3 << 20].into());
        let initrd: Arc<[u8]> = vec![0u8; 2 << 20].into();
        let err = plan(
            4 << 20,
            1,
            &Firmware::Builtin,
            Some(&kernel),
            Some(&initrd),
            &mut fake_fdt,
        )
        .unwrap_err();
        assert!(matches!(err, BootError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn elf_kernels_are_moved_to_the_kernel_base_keeping_their_layout() {
        let seg = |vaddr: u64, n: usize| Segment {
            paddr: 0,
            vaddr,
            data: vec![0; n].into(),
            zero_fill: 0,
        };
        let kernel = KernelImage::Elf(ElfImage {
            entry: 0xffff_ffff_8000_0000,
            segments: vec![
                seg(0xffff_ffff_8000_0000, 64),
                seg(0xffff_ffff_8010_0000, 64),
            ],
        });
        let p = plan(
            64 << 20,
            1,
            &Firmware::Builtin,
            Some(&kernel),
            None,
            &mut fake_fdt,
        )
        .unwrap();
        assert_eq!(p.harts[0].pc, RAM_BASE + KERNEL_OFFSET);
        assert!(p
            .loads
            .iter()
            .any(|s| s.paddr == RAM_BASE + KERNEL_OFFSET + 0x10_0000));
    }
}
