//! The flattened device tree that describes the board to OpenSBI and Linux.
//!
//! It follows what QEMU's `virt` machine generates, so that OpenSBI's generic
//! platform and Debian's kernel accept it unchanged; it leaves out what this
//! board does not have (PCIe, fw-cfg, flash, the platform bus, the PMU node).
//!
//! Assumptions, written down:
//! - Addresses, sizes and interrupt numbers come from the device modules; the
//!   tree describes the board, it does not decide it.
//! - The output is a pure function of [`FdtConfig`]: no host state, and
//!   phandles are numbered in a fixed order (PLIC, test device, then a cpu and
//!   its interrupt controller per hart).
//! - The PLIC advertises sources 1..=`plic::SOURCES - 1` (`riscv,ndev`): the
//!   number of the highest source, not the size of the register arrays.
//! - The ISA is given once, as a string such as `rv64imafdc_zicsr_...`; the
//!   newer `riscv,isa-base` and `riscv,isa-extensions` (which Linux 6.x reads
//!   first) are derived from it, with `g` expanded to `imafd_zicsr_zifencei`.
//! - The virtio-mmio transports are listed in the order given, which is the
//!   order in which Linux probes them (the first block device becomes vda).
//!   QEMU lists them from the highest address down because it gives the first
//!   `-device` the highest transport; pass them in that order to reproduce
//!   QEMU's tree exactly.
//! - The blob carries `FREE_SPACE` zero bytes of free space inside its total
//!   size (QEMU's has about 1 MiB), because OpenSBI edits the tree in place
//!   (it adds reserved-memory and fixes up harts) and Linux overwrites
//!   `/chosen/rng-seed`. Whoever places it in RAM should still leave some room
//!   after it: OpenSBI grows the tree a little beyond its total size.

use crate::devices::{clint, finisher, plic, rtc, uart};
use vm_fdt::FdtWriter;

/// Free space added inside the blob's total size for in-place edits.
pub const FREE_SPACE: usize = 16 * 1024;
/// The UART's input clock as QEMU advertises it (1.8432 MHz × 2).
const UART_CLOCK_HZ: u32 = 3_686_400;
/// Zicbom/Zicboz/Zicbop block size: one cache line.
const CBO_BLOCK_SIZE: u32 = 64;
/// Interrupt numbers on each hart's local interrupt controller.
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;
/// The finisher's commands, for `syscon-poweroff` and `syscon-reboot`.
const POWEROFF_VALUE: u32 = 0x5555;
const REBOOT_VALUE: u32 = 0x7777;
const VIRTIO_MMIO_SIZE: u64 = 0x1000;

const PHANDLE_PLIC: u32 = 1;
const PHANDLE_TEST: u32 = 2;
fn phandle_cpu(hart: usize) -> u32 {
    3 + 2 * hart as u32
}
fn phandle_intc(hart: usize) -> u32 {
    4 + 2 * hart as u32
}

/// What the tree describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdtConfig {
    pub harts: usize,
    pub mem_base: u64,
    pub mem_size: u64,
    /// The frequency of mtime and the time CSR (`clint::TIMEBASE_HZ`).
    pub timebase_hz: u64,
    /// The ISA string for `riscv,isa`, e.g. `rv64imafdc_zicsr_zifencei`.
    /// Name Zicsr and Zifencei explicitly (or use `g`): in
    /// `riscv,isa-extensions`, unlike in the older `riscv,isa`, `i` implies
    /// nothing else.
    pub isa: String,
    /// `riscv,sv39`, `riscv,sv48` or `riscv,sv57`.
    pub mmu_type: &'static str,
    /// The kernel command line; left out of the tree when empty.
    pub bootargs: String,
    /// Start and end (exclusive) of the initrd in guest physical memory.
    pub initrd: Option<(u64, u64)>,
    /// E.g. `/soc/serial@10000000`.
    pub stdout_path: &'static str,
    /// Base address and PLIC source of each virtio-mmio transport, in the
    /// order the tree lists them.
    pub virtio_mmio: Vec<(u64, u32)>,
    /// Seed for the guest's entropy pool (`/chosen/rng-seed`).
    pub rng_seed: Option<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum FdtError {
    #[error("a device tree needs at least one hart")]
    NoHarts,
    #[error("{harts} harts are more than the device tree can number")]
    TooManyHarts { harts: usize },
    #[error("the memory size is zero")]
    NoMemory,
    #[error("the timebase frequency {0} Hz does not fit in 32 bits")]
    TimebaseTooLarge(u64),
    #[error("the ISA string {isa:?} is malformed: {reason}")]
    BadIsa { isa: String, reason: &'static str },
    #[error("the MMU type {0:?} is not riscv,sv39, riscv,sv48 or riscv,sv57")]
    BadMmuType(&'static str),
    #[error("the initrd ends ({end:#x}) before it starts ({start:#x})")]
    BadInitrd { start: u64, end: u64 },
    #[error("the virtio-mmio transport at {base:#x} has an invalid PLIC source {irq}")]
    BadVirtioIrq { base: u64, irq: u32 },
    #[error("two virtio-mmio transports share the address {0:#x}")]
    DuplicateVirtio(u64),
    #[error("the device tree writer failed: {0}")]
    Writer(#[from] vm_fdt::Error),
}

/// The `riscv,isa-base` and `riscv,isa-extensions` forms of an ISA string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsaParts {
    /// `rv64i` or `rv32i`.
    pub base: String,
    /// Lower-case extension names, single letters first, without duplicates.
    pub extensions: Vec<String>,
}

/// Splits an ISA string such as `rv64imafdc_zicsr_zifencei` (or `rv64gc`)
/// into its base and its list of extensions.
pub fn parse_isa(isa: &str) -> Result<IsaParts, FdtError> {
    let bad = |reason| FdtError::BadIsa {
        isa: isa.to_string(),
        reason,
    };
    let lower = isa.to_ascii_lowercase();
    let (xlen, rest) = if let Some(rest) = lower.strip_prefix("rv64") {
        ("rv64", rest)
    } else if let Some(rest) = lower.strip_prefix("rv32") {
        ("rv32", rest)
    } else {
        return Err(bad("it does not start with rv64 or rv32"));
    };
    let mut chunks = rest.split('_');
    let letters = chunks.next().unwrap_or("");
    // Multi-letter extensions may follow the letters without an underscore.
    let split = letters.find(['z', 's', 'x']).unwrap_or(letters.len());
    let (letters, first_multi) = letters.split_at(split);

    let mut extensions: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !extensions.iter().any(|e| e == name) {
            extensions.push(name.to_string());
        }
    };
    if !matches!(letters.chars().next(), Some('i' | 'g')) {
        return Err(bad("the base is not i or g"));
    }
    let mut implied = Vec::new();
    for c in letters.chars() {
        if !c.is_ascii_lowercase() {
            return Err(bad("a single-letter extension is not a letter"));
        }
        if c == 'g' {
            for e in ["i", "m", "a", "f", "d"] {
                add(e);
            }
            implied.extend(["zicsr", "zifencei"]);
        } else {
            add(c.encode_utf8(&mut [0; 4]));
        }
    }
    let multi = Some(first_multi).filter(|m| !m.is_empty());
    for name in multi.into_iter().chain(chunks) {
        if name.is_empty() {
            return Err(bad("it has an empty extension name"));
        }
        if !name.starts_with(['z', 's', 'x']) {
            return Err(bad(
                "a multi-letter extension does not start with z, s or x",
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(bad(
                "an extension name has a character other than a-z or 0-9",
            ));
        }
        add(name);
    }
    for name in implied {
        add(name);
    }
    Ok(IsaParts {
        base: format!("{xlen}i"),
        extensions,
    })
}

/// Builds the device tree blob for `cfg`.
pub fn build_fdt(cfg: &FdtConfig) -> Result<Vec<u8>, FdtError> {
    validate(cfg)?;
    let isa = parse_isa(&cfg.isa)?;

    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "riscv-virtio")?;
    fdt.property_string("model", "riscv-virtio,rewind")?;

    write_cpus(&mut fdt, cfg, &isa)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", cfg.mem_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[cfg.mem_base, cfg.mem_size])?;
    fdt.end_node(memory)?;

    write_soc(&mut fdt, cfg)?;

    for (name, compatible, value) in [
        ("poweroff", "syscon-poweroff", POWEROFF_VALUE),
        ("reboot", "syscon-reboot", REBOOT_VALUE),
    ] {
        let node = fdt.begin_node(name)?;
        fdt.property_string("compatible", compatible)?;
        fdt.property_u32("regmap", PHANDLE_TEST)?;
        fdt.property_u32("offset", 0)?;
        fdt.property_u32("value", value)?;
        fdt.end_node(node)?;
    }

    let chosen = fdt.begin_node("chosen")?;
    if !cfg.bootargs.is_empty() {
        fdt.property_string("bootargs", &cfg.bootargs)?;
    }
    fdt.property_string("stdout-path", cfg.stdout_path)?;
    if let Some((start, end)) = cfg.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    if let Some(seed) = &cfg.rng_seed {
        fdt.property("rng-seed", seed)?;
    }
    fdt.end_node(chosen)?;

    fdt.end_node(root)?;
    let mut blob = fdt.finish()?;
    add_free_space(&mut blob)?;
    Ok(blob)
}

fn validate(cfg: &FdtConfig) -> Result<(), FdtError> {
    if cfg.harts == 0 {
        return Err(FdtError::NoHarts);
    }
    // Two phandles per hart must fit in 32 bits.
    if cfg.harts > 0x1000_0000 {
        return Err(FdtError::TooManyHarts { harts: cfg.harts });
    }
    if cfg.mem_size == 0 {
        return Err(FdtError::NoMemory);
    }
    if cfg.timebase_hz > u32::MAX as u64 {
        return Err(FdtError::TimebaseTooLarge(cfg.timebase_hz));
    }
    if !matches!(cfg.mmu_type, "riscv,sv39" | "riscv,sv48" | "riscv,sv57") {
        return Err(FdtError::BadMmuType(cfg.mmu_type));
    }
    if let Some((start, end)) = cfg.initrd {
        if end < start {
            return Err(FdtError::BadInitrd { start, end });
        }
    }
    for (i, &(base, irq)) in cfg.virtio_mmio.iter().enumerate() {
        if irq == 0 || irq as usize >= plic::SOURCES {
            return Err(FdtError::BadVirtioIrq { base, irq });
        }
        if cfg.virtio_mmio[..i].iter().any(|&(b, _)| b == base) {
            return Err(FdtError::DuplicateVirtio(base));
        }
    }
    Ok(())
}

fn write_cpus(fdt: &mut FdtWriter, cfg: &FdtConfig, isa: &IsaParts) -> Result<(), FdtError> {
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.property_u32("timebase-frequency", cfg.timebase_hz as u32)?;
    let has = |ext: &str| isa.extensions.iter().any(|e| e == ext);
    for hart in 0..cfg.harts {
        let cpu = fdt.begin_node(&format!("cpu@{hart:x}"))?;
        fdt.property_phandle(phandle_cpu(hart))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_u32("reg", hart as u32)?;
        fdt.property_string("status", "okay")?;
        fdt.property_string("compatible", "riscv")?;
        fdt.property_string("riscv,isa", &cfg.isa)?;
        fdt.property_string("riscv,isa-base", &isa.base)?;
        fdt.property_string_list("riscv,isa-extensions", isa.extensions.clone())?;
        fdt.property_string("mmu-type", cfg.mmu_type)?;
        for (ext, prop) in [
            ("zicbom", "riscv,cbom-block-size"),
            ("zicboz", "riscv,cboz-block-size"),
            ("zicbop", "riscv,cbop-block-size"),
        ] {
            if has(ext) {
                fdt.property_u32(prop, CBO_BLOCK_SIZE)?;
            }
        }
        let intc = fdt.begin_node("interrupt-controller")?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_string("compatible", "riscv,cpu-intc")?;
        fdt.property_phandle(phandle_intc(hart))?;
        fdt.end_node(intc)?;
        fdt.end_node(cpu)?;
    }
    let map = fdt.begin_node("cpu-map")?;
    let cluster = fdt.begin_node("cluster0")?;
    for hart in 0..cfg.harts {
        let core = fdt.begin_node(&format!("core{hart}"))?;
        fdt.property_u32("cpu", phandle_cpu(hart))?;
        fdt.end_node(core)?;
    }
    fdt.end_node(cluster)?;
    fdt.end_node(map)?;
    fdt.end_node(cpus)?;
    Ok(())
}

/// `interrupts-extended` cells: for each hart, each of `irqs` on its intc.
fn per_hart_irqs(harts: usize, irqs: &[u32]) -> Vec<u32> {
    (0..harts)
        .flat_map(|h| irqs.iter().flat_map(move |&irq| [phandle_intc(h), irq]))
        .collect()
}

fn write_soc(fdt: &mut FdtWriter, cfg: &FdtConfig) -> Result<(), FdtError> {
    let soc = fdt.begin_node("soc")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "simple-bus")?;
    fdt.property_null("ranges")?;

    let node = fdt.begin_node(&format!("clint@{:x}", clint::BASE))?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,clint0".into(), "riscv,clint0".into()],
    )?;
    fdt.property_array_u64("reg", &[clint::BASE, clint::SIZE])?;
    fdt.property_array_u32(
        "interrupts-extended",
        &per_hart_irqs(cfg.harts, &[IRQ_M_SOFT, IRQ_M_TIMER]),
    )?;
    fdt.end_node(node)?;

    // Contexts 2h (M-mode) and 2h + 1 (S-mode), as the PLIC numbers them.
    let node = fdt.begin_node(&format!("plic@{:x}", plic::BASE))?;
    fdt.property_phandle(PHANDLE_PLIC)?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,plic-1.0.0".into(), "riscv,plic0".into()],
    )?;
    fdt.property_array_u64("reg", &[plic::BASE, plic::size(cfg.harts)])?;
    fdt.property_array_u32(
        "interrupts-extended",
        &per_hart_irqs(cfg.harts, &[IRQ_M_EXT, IRQ_S_EXT]),
    )?;
    fdt.property_u32("riscv,ndev", plic::SOURCES as u32 - 1)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_null("interrupt-controller")?;
    fdt.end_node(node)?;

    let node = fdt.begin_node(&format!("serial@{:x}", uart::BASE))?;
    fdt.property_string("compatible", "ns16550a")?;
    fdt.property_array_u64("reg", &[uart::BASE, uart::SIZE])?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_u32("interrupt-parent", PHANDLE_PLIC)?;
    fdt.property_u32("interrupts", uart::IRQ)?;
    fdt.end_node(node)?;

    let node = fdt.begin_node(&format!("rtc@{:x}", rtc::BASE))?;
    fdt.property_string("compatible", "google,goldfish-rtc")?;
    fdt.property_array_u64("reg", &[rtc::BASE, rtc::SIZE])?;
    fdt.property_u32("interrupt-parent", PHANDLE_PLIC)?;
    fdt.property_u32("interrupts", rtc::IRQ)?;
    fdt.end_node(node)?;

    let node = fdt.begin_node(&format!("test@{:x}", finisher::BASE))?;
    fdt.property_phandle(PHANDLE_TEST)?;
    fdt.property_string_list(
        "compatible",
        vec![
            "sifive,test1".into(),
            "sifive,test0".into(),
            "syscon".into(),
        ],
    )?;
    fdt.property_array_u64("reg", &[finisher::BASE, finisher::SIZE])?;
    fdt.end_node(node)?;

    for &(base, irq) in &cfg.virtio_mmio {
        let node = fdt.begin_node(&format!("virtio_mmio@{base:x}"))?;
        fdt.property_string("compatible", "virtio,mmio")?;
        fdt.property_array_u64("reg", &[base, VIRTIO_MMIO_SIZE])?;
        fdt.property_u32("interrupt-parent", PHANDLE_PLIC)?;
        fdt.property_u32("interrupts", irq)?;
        fdt.end_node(node)?;
    }

    fdt.end_node(soc)?;
    Ok(())
}

/// Appends `FREE_SPACE` zero bytes and counts them in the header's totalsize.
fn add_free_space(blob: &mut Vec<u8>) -> Result<(), FdtError> {
    blob.resize(blob.len() + FREE_SPACE, 0);
    let total = u32::try_from(blob.len()).map_err(|_| vm_fdt::Error::TotalSizeTooLarge)?;
    blob[4..8].copy_from_slice(&total.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISA: &str =
        "rv64imafdc_zicntr_zicsr_zifencei_zihpm_zba_zbb_zbs_zicbom_zicboz_zihintpause_sstc";

    fn config(harts: usize) -> FdtConfig {
        FdtConfig {
            harts,
            mem_base: 0x8000_0000,
            mem_size: 256 << 20,
            timebase_hz: 10_000_000,
            isa: ISA.to_string(),
            mmu_type: "riscv,sv57",
            bootargs: "console=ttyS0 earlycon".to_string(),
            initrd: Some((0x8800_0000, 0x8812_3456)),
            stdout_path: "/soc/serial@10000000",
            virtio_mmio: (0..8u32)
                .rev()
                .map(|n| (0x1000_1000 + n as u64 * 0x1000, 1 + n))
                .collect(),
            rng_seed: Some(std::array::from_fn(|i| i as u8)),
        }
    }

    /// A minimal reader of flattened device trees, to check what we wrote.
    mod reader {
        #[derive(Debug, Default)]
        pub struct Node {
            pub name: String,
            pub props: Vec<(String, Vec<u8>)>,
            pub children: Vec<Node>,
        }

        fn be32(b: &[u8], at: usize) -> u32 {
            u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
        }

        fn cstr(b: &[u8], at: usize) -> &str {
            let end = at + b[at..].iter().position(|&c| c == 0).unwrap();
            std::str::from_utf8(&b[at..end]).unwrap()
        }

        /// Parses a blob; panics on anything malformed.
        pub fn parse(blob: &[u8]) -> Node {
            assert_eq!(be32(blob, 0), 0xd00d_feed, "magic");
            let total = be32(blob, 4) as usize;
            assert_eq!(total, blob.len(), "totalsize");
            let off_struct = be32(blob, 8) as usize;
            let off_strings = be32(blob, 12) as usize;
            let off_rsv = be32(blob, 16) as usize;
            assert_eq!(be32(blob, 20), 17, "version");
            assert_eq!(be32(blob, 24), 16, "last compatible version");
            let size_strings = be32(blob, 32) as usize;
            let size_struct = be32(blob, 36) as usize;
            assert!(off_strings + size_strings <= total);
            assert!(off_struct + size_struct <= off_strings);
            // An empty memory reservation map.
            assert_eq!(&blob[off_rsv..off_rsv + 16], &[0; 16]);
            let strings = &blob[off_strings..off_strings + size_strings];

            let mut stack: Vec<Node> = Vec::new();
            let mut root = None;
            let mut at = off_struct;
            loop {
                let token = be32(blob, at);
                at += 4;
                match token {
                    1 => {
                        let name = cstr(blob, at).to_string();
                        at = (at + name.len() + 1).next_multiple_of(4);
                        stack.push(Node {
                            name,
                            ..Node::default()
                        });
                    }
                    2 => {
                        let node = stack.pop().expect("END_NODE without BEGIN_NODE");
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(node),
                            None => root = Some(node),
                        }
                    }
                    3 => {
                        let len = be32(blob, at) as usize;
                        let name = cstr(strings, be32(blob, at + 4) as usize).to_string();
                        let value = blob[at + 8..at + 8 + len].to_vec();
                        at = (at + 8 + len).next_multiple_of(4);
                        stack
                            .last_mut()
                            .expect("property outside a node")
                            .props
                            .push((name, value));
                    }
                    4 => {}
                    9 => break,
                    t => panic!("unknown token {t} at {at:#x}"),
                }
            }
            assert!(stack.is_empty(), "unclosed nodes");
            assert_eq!(at, off_struct + size_struct, "structure block size");
            root.expect("no root node")
        }

        impl Node {
            pub fn child(&self, name: &str) -> &Node {
                self.children
                    .iter()
                    .find(|c| c.name == name)
                    .unwrap_or_else(|| panic!("no node {name} in /{}", self.name))
            }

            pub fn at(&self, path: &str) -> &Node {
                path.split('/')
                    .filter(|s| !s.is_empty())
                    .fold(self, |n, p| n.child(p))
            }

            pub fn prop(&self, name: &str) -> &[u8] {
                self.props
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_slice())
                    .unwrap_or_else(|| panic!("no property {name} in {}", self.name))
            }

            pub fn has(&self, name: &str) -> bool {
                self.props.iter().any(|(n, _)| n == name)
            }

            pub fn u32s(&self, name: &str) -> Vec<u32> {
                let v = self.prop(name);
                assert_eq!(v.len() % 4, 0, "{name} is not a list of cells");
                v.chunks(4)
                    .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
                    .collect()
            }

            pub fn u32(&self, name: &str) -> u32 {
                let v = self.u32s(name);
                assert_eq!(v.len(), 1, "{name} is not one cell");
                v[0]
            }

            pub fn u64s(&self, name: &str) -> Vec<u64> {
                self.u32s(name)
                    .chunks(2)
                    .map(|c| (c[0] as u64) << 32 | c[1] as u64)
                    .collect()
            }

            pub fn strs(&self, name: &str) -> Vec<&str> {
                let v = self.prop(name);
                assert_eq!(v.last(), Some(&0), "{name} is not NUL-terminated");
                v[..v.len() - 1]
                    .split(|&c| c == 0)
                    .map(|s| std::str::from_utf8(s).unwrap())
                    .collect()
            }

            pub fn str(&self, name: &str) -> &str {
                let v = self.strs(name);
                assert_eq!(v.len(), 1, "{name} is not one string");
                v[0]
            }
        }
    }

    use reader::{parse, Node};

    fn phandle_of(root: &Node, path: &str) -> u32 {
        root.at(path).u32("phandle")
    }

    fn check_board(harts: usize) {
        let cfg = config(harts);
        let blob = build_fdt(&cfg).unwrap();
        let root = parse(&blob);
        assert_eq!(root.name, "");
        assert_eq!(root.u32("#address-cells"), 2);
        assert_eq!(root.u32("#size-cells"), 2);
        assert_eq!(root.str("compatible"), "riscv-virtio");

        // cpus
        let cpus = root.child("cpus");
        assert_eq!(cpus.u32("timebase-frequency"), 10_000_000);
        assert_eq!(cpus.u32("#address-cells"), 1);
        assert_eq!(cpus.u32("#size-cells"), 0);
        let mut intcs = Vec::new();
        for h in 0..harts {
            let cpu = cpus.child(&format!("cpu@{h:x}"));
            assert_eq!(cpu.str("device_type"), "cpu");
            assert_eq!(cpu.u32("reg"), h as u32);
            assert_eq!(cpu.str("status"), "okay");
            assert_eq!(cpu.str("compatible"), "riscv");
            assert_eq!(cpu.str("riscv,isa"), ISA);
            assert_eq!(cpu.str("riscv,isa-base"), "rv64i");
            let exts = cpu.strs("riscv,isa-extensions");
            assert_eq!(&exts[..6], ["i", "m", "a", "f", "d", "c"]);
            assert!(exts.contains(&"zicbom") && exts.contains(&"sstc"));
            assert_eq!(cpu.str("mmu-type"), "riscv,sv57");
            assert_eq!(cpu.u32("riscv,cbom-block-size"), 64);
            assert_eq!(cpu.u32("riscv,cboz-block-size"), 64);
            assert!(!cpu.has("riscv,cbop-block-size"));
            let intc = cpu.child("interrupt-controller");
            assert_eq!(intc.str("compatible"), "riscv,cpu-intc");
            assert_eq!(intc.u32("#interrupt-cells"), 1);
            assert_eq!(intc.prop("interrupt-controller"), b"");
            intcs.push(intc.u32("phandle"));
            let core = cpus.at(&format!("cpu-map/cluster0/core{h}"));
            assert_eq!(core.u32("cpu"), cpu.u32("phandle"));
        }
        assert_eq!(cpus.children.len(), harts + 1);

        // memory
        let mem = root.child("memory@80000000");
        assert_eq!(mem.str("device_type"), "memory");
        assert_eq!(mem.u64s("reg"), [0x8000_0000, 256 << 20]);

        // soc
        let soc = root.child("soc");
        assert_eq!(soc.str("compatible"), "simple-bus");
        assert_eq!(soc.prop("ranges"), b"");
        assert_eq!(soc.u32("#address-cells"), 2);

        let clint = soc.child("clint@2000000");
        assert_eq!(clint.strs("compatible"), ["sifive,clint0", "riscv,clint0"]);
        assert_eq!(clint.u64s("reg"), [0x200_0000, 0x1_0000]);
        let expect: Vec<u32> = intcs.iter().flat_map(|&p| [p, 3, p, 7]).collect();
        assert_eq!(clint.u32s("interrupts-extended"), expect);

        let plic_node = soc.child("plic@c000000");
        assert_eq!(
            plic_node.strs("compatible"),
            ["sifive,plic-1.0.0", "riscv,plic0"]
        );
        assert_eq!(
            plic_node.u64s("reg"),
            [0xc00_0000, 0x20_0000 + 0x2000 * harts as u64]
        );
        let expect: Vec<u32> = intcs.iter().flat_map(|&p| [p, 11, p, 9]).collect();
        assert_eq!(plic_node.u32s("interrupts-extended"), expect);
        assert_eq!(plic_node.u32("riscv,ndev"), 95);
        assert_eq!(plic_node.u32("#interrupt-cells"), 1);
        assert_eq!(plic_node.u32("#address-cells"), 0);
        assert!(plic_node.has("interrupt-controller"));
        let plic_ph = phandle_of(&root, "soc/plic@c000000");

        let serial = soc.child("serial@10000000");
        assert_eq!(serial.str("compatible"), "ns16550a");
        assert_eq!(serial.u64s("reg"), [0x1000_0000, 0x100]);
        assert_eq!(serial.u32("clock-frequency"), 3_686_400);
        assert_eq!(serial.u32("interrupts"), 10);
        assert_eq!(serial.u32("interrupt-parent"), plic_ph);

        let rtc_node = soc.child("rtc@101000");
        assert_eq!(rtc_node.str("compatible"), "google,goldfish-rtc");
        assert_eq!(rtc_node.u64s("reg"), [0x10_1000, 0x1000]);
        assert_eq!(rtc_node.u32("interrupts"), 11);
        assert_eq!(rtc_node.u32("interrupt-parent"), plic_ph);

        let test = soc.child("test@100000");
        assert_eq!(
            test.strs("compatible"),
            ["sifive,test1", "sifive,test0", "syscon"]
        );
        assert_eq!(test.u64s("reg"), [0x10_0000, 0x1000]);
        let test_ph = test.u32("phandle");
        for (name, compatible, value) in [
            ("poweroff", "syscon-poweroff", 0x5555),
            ("reboot", "syscon-reboot", 0x7777),
        ] {
            let n = root.child(name);
            assert_eq!(n.str("compatible"), compatible);
            assert_eq!(n.u32("regmap"), test_ph);
            assert_eq!(n.u32("offset"), 0);
            assert_eq!(n.u32("value"), value);
        }

        let virtio: Vec<&Node> = soc
            .children
            .iter()
            .filter(|c| c.name.starts_with("virtio_mmio@"))
            .collect();
        assert_eq!(virtio.len(), 8);
        for (node, &(base, irq)) in virtio.iter().zip(&cfg.virtio_mmio) {
            assert_eq!(node.name, format!("virtio_mmio@{base:x}"));
            assert_eq!(node.str("compatible"), "virtio,mmio");
            assert_eq!(node.u64s("reg"), [base, 0x1000]);
            assert_eq!(node.u32("interrupts"), irq);
            assert_eq!(node.u32("interrupt-parent"), plic_ph);
        }
        assert_eq!(virtio[0].name, "virtio_mmio@10008000");
        assert_eq!(virtio[0].u32("interrupts"), 8);

        // chosen
        let chosen = root.child("chosen");
        assert_eq!(chosen.str("bootargs"), "console=ttyS0 earlycon");
        assert_eq!(chosen.str("stdout-path"), "/soc/serial@10000000");
        assert_eq!(chosen.u64s("linux,initrd-start"), [0x8800_0000]);
        assert_eq!(chosen.u64s("linux,initrd-end"), [0x8812_3456]);
        assert_eq!(chosen.prop("rng-seed"), (0..32).collect::<Vec<u8>>());

        // Every phandle is unique, and every reference points at one.
        let mut phandles = Vec::new();
        collect_phandles(&root, &mut phandles);
        let mut sorted = phandles.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), phandles.len(), "duplicate phandles");
        assert_eq!(phandles.len(), 2 + 2 * harts);
        for r in [plic_ph, test_ph].iter().chain(&intcs) {
            assert!(phandles.contains(r));
        }
    }

    fn collect_phandles(node: &Node, out: &mut Vec<u32>) {
        if node.has("phandle") {
            out.push(node.u32("phandle"));
        }
        for c in &node.children {
            collect_phandles(c, out);
        }
    }

    #[test]
    fn one_hart_tree_describes_the_board() {
        check_board(1);
    }

    #[test]
    fn four_hart_tree_describes_the_board() {
        check_board(4);
    }

    #[test]
    fn blob_is_deterministic_and_has_free_space() {
        let a = build_fdt(&config(2)).unwrap();
        let b = build_fdt(&config(2)).unwrap();
        assert_eq!(a, b);
        assert!(a.ends_with(&[0; FREE_SPACE]));
    }

    #[test]
    fn optional_chosen_properties_are_left_out() {
        let mut cfg = config(1);
        cfg.bootargs.clear();
        cfg.initrd = None;
        cfg.rng_seed = None;
        cfg.virtio_mmio.clear();
        let root = parse(&build_fdt(&cfg).unwrap());
        let chosen = root.child("chosen");
        for p in [
            "bootargs",
            "linux,initrd-start",
            "linux,initrd-end",
            "rng-seed",
        ] {
            assert!(!chosen.has(p), "{p}");
        }
        assert_eq!(chosen.str("stdout-path"), "/soc/serial@10000000");
        assert!(!root
            .child("soc")
            .children
            .iter()
            .any(|c| c.name.starts_with("virtio")));
    }

    #[test]
    fn cbo_block_sizes_follow_the_isa() {
        let mut cfg = config(1);
        cfg.isa = "rv64gc_zicbop".into();
        let root = parse(&build_fdt(&cfg).unwrap());
        let cpu = root.at("cpus/cpu@0");
        assert!(!cpu.has("riscv,cbom-block-size"));
        assert!(!cpu.has("riscv,cboz-block-size"));
        assert_eq!(cpu.u32("riscv,cbop-block-size"), 64);
    }

    #[test]
    fn isa_strings_split_into_base_and_extensions() {
        let p = parse_isa(ISA).unwrap();
        assert_eq!(p.base, "rv64i");
        assert_eq!(
            p.extensions,
            [
                "i",
                "m",
                "a",
                "f",
                "d",
                "c",
                "zicntr",
                "zicsr",
                "zifencei",
                "zihpm",
                "zba",
                "zbb",
                "zbs",
                "zicbom",
                "zicboz",
                "zihintpause",
                "sstc"
            ]
        );
        let p = parse_isa("rv64gc").unwrap();
        assert_eq!(
            p.extensions,
            ["i", "m", "a", "f", "d", "c", "zicsr", "zifencei"]
        );
        let p = parse_isa("RV64GC_Zicsr_zba").unwrap();
        assert_eq!(
            p.extensions,
            ["i", "m", "a", "f", "d", "c", "zicsr", "zba", "zifencei"]
        );
        let p = parse_isa("rv64imaczicsr_zifencei").unwrap();
        assert_eq!(p.extensions, ["i", "m", "a", "c", "zicsr", "zifencei"]);
        assert_eq!(parse_isa("rv32i").unwrap().base, "rv32i");
    }

    #[test]
    fn malformed_isa_strings_are_refused() {
        for bad in [
            "",
            "rv64",
            "rv128i",
            "x86",
            "rv64e",
            "rv64i2p1",
            "rv64imac__zicsr",
            "rv64imac_",
            "rv64imac_m",
            "rv64imac_zi-csr",
        ] {
            assert!(
                matches!(parse_isa(bad), Err(FdtError::BadIsa { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let mut cfg = config(0);
        assert!(matches!(build_fdt(&cfg), Err(FdtError::NoHarts)));
        cfg = config(1);
        cfg.mem_size = 0;
        assert!(matches!(build_fdt(&cfg), Err(FdtError::NoMemory)));
        cfg = config(1);
        cfg.mmu_type = "riscv,sv32";
        assert!(matches!(build_fdt(&cfg), Err(FdtError::BadMmuType(_))));
        cfg = config(1);
        cfg.initrd = Some((2, 1));
        assert!(matches!(build_fdt(&cfg), Err(FdtError::BadInitrd { .. })));
        cfg = config(1);
        cfg.timebase_hz = 1 << 32;
        assert!(matches!(
            build_fdt(&cfg),
            Err(FdtError::TimebaseTooLarge(_))
        ));
        cfg = config(1);
        cfg.virtio_mmio = vec![(0x1000_1000, 1), (0x1000_1000, 2)];
        assert!(matches!(build_fdt(&cfg), Err(FdtError::DuplicateVirtio(_))));
        cfg = config(1);
        cfg.virtio_mmio = vec![(0x1000_1000, 0)];
        assert!(matches!(
            build_fdt(&cfg),
            Err(FdtError::BadVirtioIrq { .. })
        ));
        cfg = config(1);
        cfg.bootargs = "a\0b".into();
        assert!(matches!(build_fdt(&cfg), Err(FdtError::Writer(_))));
        let msg = FdtError::BadIsa {
            isa: "rv64".into(),
            reason: "the base is not i or g",
        }
        .to_string();
        assert_eq!(
            msg,
            "the ISA string \"rv64\" is malformed: the base is not i or g"
        );
    }

    /// Decompiles the blob with dtc, when it is installed, and checks what a
    /// person reading the source would look for.
    #[test]
    fn dtc_decompiles_the_blob() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let blob = build_fdt(&config(2)).unwrap();
        let child = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            println!("note: dtc is not installed; skipping the decompilation check");
            return;
        };
        child.stdin.take().unwrap().write_all(&blob).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dtc failed: {stderr}");
        // dtc warns only about what QEMU's tree also lacks.
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                line.contains("interrupt_provider") && line.contains("cpu@"),
                "unexpected dtc warning: {line}"
            );
        }
        let dts = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = dts.lines().map(str::trim).collect();
        for expected in [
            "timebase-frequency = <0x989680>;",
            "cpu@0 {",
            "cpu@1 {",
            "mmu-type = \"riscv,sv57\";",
            "riscv,isa-base = \"rv64i\";",
            "compatible = \"riscv,cpu-intc\";",
            "memory@80000000 {",
            "reg = <0x00 0x80000000 0x00 0x10000000>;",
            "clint@2000000 {",
            "interrupts-extended = <0x04 0x03 0x04 0x07 0x06 0x03 0x06 0x07>;",
            "plic@c000000 {",
            "interrupts-extended = <0x04 0x0b 0x04 0x09 0x06 0x0b 0x06 0x09>;",
            "riscv,ndev = <0x5f>;",
            "serial@10000000 {",
            "compatible = \"ns16550a\";",
            "rtc@101000 {",
            "compatible = \"google,goldfish-rtc\";",
            "compatible = \"sifive,test1\\0sifive,test0\\0syscon\";",
            "compatible = \"syscon-poweroff\";",
            "compatible = \"syscon-reboot\";",
            "virtio_mmio@10001000 {",
            "stdout-path = \"/soc/serial@10000000\";",
            "bootargs = \"console=ttyS0 earlycon\";",
            "linux,initrd-start = <0x00 0x88000000>;",
        ] {
            assert!(lines.contains(&expected), "no line {expected:?} in:\n{dts}");
        }
    }
}
