//! The kernel modules the default guest loads at boot: choosing them, putting
//! them in dependency order, and unpacking them.
//!
//! Debian's kernel builds the virtio-mmio transport, virtio-blk, virtio-net,
//! virtio-rng and ext4 as modules (`=m` in `/boot/config-<version>`), so a
//! guest that wants Rewind's virtio devices or a Debian root file system needs
//! them in its initramfs. The kernel package ships the modules xz-compressed
//! (`/usr/lib/modules/<version>/kernel/**/*.ko.xz`), plus `modules.order`,
//! `modules.builtin` and `modules.builtin.modinfo`, but no `modules.dep` or
//! `modules.alias`: those are written by `depmod` when the package is
//! installed. We therefore read what depmod reads, each module's `.modinfo`
//! section:
//!
//! - `depends=a,b` — the modules whose symbols it uses (computed by modpost at
//!   build time; a module that is built in never appears there);
//! - `softdep=pre: x post: y` — modules modprobe loads before or after it,
//!   named by module name or alias (ext4 and jbd2 say `pre: crypto-crc32c`:
//!   they look up the crc32c hash through the crypto API at mount time);
//! - `alias=...`, `name=...`, `vermagic=...`.
//!
//! Assumptions, written down:
//! - The root set ([`ROOTS`]) is the only hand-written list; everything else
//!   follows from `.modinfo`. A root is skipped when the kernel configuration
//!   says `=y` (built in); it must be in the package when it says `=m`.
//! - A soft dependency is resolved by module name, then against the built-in
//!   modules' names and aliases (`modules.builtin`, `modules.builtin.modinfo`),
//!   then against the aliases of the loadable modules whose name begins with
//!   the alias's base name (`crypto-crc32c` -> `crc32c*`). Reading every
//!   module's aliases would mean decompressing about 1 GB. Every match is
//!   loaded (as `modprobe` loads every module an alias matches); a soft
//!   dependency that matches nothing is skipped and reported, since the kernel
//!   treats it as optional.
//! - Modules are decompressed on the host and stored byte for byte, so their
//!   signatures (appended to the uncompressed module) still verify: busybox
//!   `insmod` hands the file to `init_module`, which cannot take compressed data.
//!
//! Decompression uses `lzma-rs` (pure Rust) rather than `xz2` (bindings to the
//! C liblzma): only a dozen modules, about 1 MB compressed, are decompressed
//! per fetch, so speed does not matter, and a pure-Rust decoder needs no C
//! toolchain or system library and adds no `unsafe` code that parses data from
//! the network.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// A module the default guest needs, named by the kernel configuration symbol
/// that builds it and by its module name (as in `.modinfo`, `-` written `_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Root {
    pub config: &'static str,
    pub name: &'static str,
}

/// The virtio transport and devices of Rewind's board (the same as QEMU's
/// `virt` machine: virtio-mmio at 0x1000_1000 + n * 0x1000) and the file
/// system of Debian's root file systems.
pub(crate) const ROOTS: &[Root] = &[
    Root {
        config: "CONFIG_VIRTIO_MMIO",
        name: "virtio_mmio",
    },
    Root {
        config: "CONFIG_VIRTIO_BLK",
        name: "virtio_blk",
    },
    Root {
        config: "CONFIG_VIRTIO_NET",
        name: "virtio_net",
    },
    Root {
        config: "CONFIG_VIRTIO_CONSOLE",
        name: "virtio_console",
    },
    // The hw_random core, which virtio_rng registers with (built in on Debian).
    Root {
        config: "CONFIG_HW_RANDOM",
        name: "rng_core",
    },
    Root {
        config: "CONFIG_HW_RANDOM_VIRTIO",
        name: "virtio_rng",
    },
    Root {
        config: "CONFIG_EXT4_FS",
        name: "ext4",
    },
];

/// Largest module we accept, compressed or not (ext4.ko is 7 MB on riscv64).
pub(crate) const MAX_MODULE_SIZE: u64 = 64 << 20;
/// Largest total of the compressed modules read from a package (Debian's: 106 MB).
pub(crate) const MAX_PACKAGED_TOTAL: u64 = 1 << 30;

/// The module name of a file: its name without `.ko` and compression suffix,
/// with `-` as `_` (as the kernel's KBUILD_MODNAME).
pub(crate) fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = strip_compression(file);
    let stem = stem.strip_suffix(".ko").unwrap_or(stem);
    normalize(stem)
}

/// `-` and `_` are the same in module names.
pub(crate) fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn strip_compression(path: &str) -> &str {
    [".xz", ".gz", ".zst"]
        .iter()
        .find_map(|s| path.strip_suffix(s))
        .unwrap_or(path)
}

/// Splits a package path `usr/lib/modules/<version>/<rest>` (or the
/// pre-usrmerge `lib/modules/...`) into the version and the rest.
pub(crate) fn split_modules_path(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("usr/lib/modules/")
        .or_else(|| path.strip_prefix("lib/modules/"))?;
    let (version, rest) = rest.split_once('/')?;
    (!version.is_empty() && !rest.is_empty()).then_some((version, rest))
}

/// A loadable module file in the package: `usr/lib/modules/<v>/kernel/**/*.ko[.xz|.gz|.zst]`.
pub(crate) fn is_module_file(path: &str) -> bool {
    split_modules_path(path).is_some_and(|(_, rest)| {
        rest.starts_with("kernel/") && strip_compression(rest).ends_with(".ko")
    })
}

/// `usr/lib/modules/<v>/modules.builtin`.
pub(crate) fn is_modules_builtin(path: &str) -> bool {
    split_modules_path(path).is_some_and(|(_, rest)| rest == "modules.builtin")
}

/// `usr/lib/modules/<v>/modules.builtin.modinfo`.
pub(crate) fn is_modules_builtin_modinfo(path: &str) -> bool {
    split_modules_path(path).is_some_and(|(_, rest)| rest == "modules.builtin.modinfo")
}

/// `boot/config-<version>`.
pub(crate) fn is_kernel_config(path: &str) -> bool {
    path.strip_prefix("boot/config-")
        .is_some_and(|v| !v.is_empty() && !v.contains('/'))
}

/// Whether `path` is a relative path of plain components (no `.`, `..`, empty
/// parts or NUL), fit to name a file under a directory of ours.
pub(crate) fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Decompresses a module according to the suffix of its package path, with
/// at most `max` bytes of output.
pub(crate) fn decompress(path: &str, data: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let too_big = || format!("{path} decompresses to more than {max} bytes");
    if path.ends_with(".xz") {
        let mut out = Limited {
            buf: Vec::new(),
            max,
            hit: false,
        };
        let mut input = data;
        lzma_rs::xz_decompress(&mut input, &mut out).map_err(|e| {
            if out.hit {
                too_big()
            } else {
                format!("{path} is not valid xz data: {e}")
            }
        })?;
        Ok(out.buf)
    } else if path.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("{path} is not valid gzip data: {e}"))?;
        if out.len() as u64 > max {
            return Err(too_big());
        }
        Ok(out)
    } else if path.ends_with(".zst") {
        Err(format!(
            "{path} is zstd-compressed, which rewind-guest does not decompress (Debian uses xz)"
        ))
    } else {
        Ok(data.to_vec())
    }
}

/// A writer that refuses to grow past `max` bytes.
struct Limited {
    buf: Vec<u8>,
    max: u64,
    /// Whether a write was refused.
    hit: bool,
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.max {
            self.hit = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a module's `.modinfo` section says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ModInfo {
    pub name: String,
    pub vermagic: String,
    pub depends: Vec<String>,
    pub softdep_pre: Vec<String>,
    pub softdep_post: Vec<String>,
    pub aliases: Vec<String>,
}

impl ModInfo {
    /// Parses the NUL-separated `key=value` strings of a `.modinfo` section.
    pub(crate) fn parse(section: &[u8]) -> ModInfo {
        let mut info = ModInfo::default();
        for item in section.split(|&b| b == 0) {
            let item = String::from_utf8_lossy(item);
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            match key {
                "name" => info.name = normalize(value),
                "vermagic" => info.vermagic = value.to_string(),
                "depends" => info.depends.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|d| !d.is_empty())
                        .map(normalize),
                ),
                "alias" => info.aliases.push(value.to_string()),
                // `softdep=pre: a b post: c`; several softdep lines may appear.
                "softdep" => {
                    let mut list = None;
                    for word in value.split_whitespace() {
                        match word {
                            "pre:" => list = Some(&mut info.softdep_pre),
                            "post:" => list = Some(&mut info.softdep_post),
                            w => {
                                if let Some(l) = list.as_mut() {
                                    l.push(w.to_string())
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        info
    }

    /// Reads the `.modinfo` section of a module (a 64-bit little-endian ELF
    /// relocatable file, as on riscv64).
    pub(crate) fn from_elf(elf: &[u8]) -> Result<ModInfo, String> {
        Ok(ModInfo::parse(elf_section(elf, ".modinfo")?))
    }
}

/// The contents of the named section of a 64-bit little-endian ELF file.
/// Every offset is checked: the file is treated as hostile.
pub(crate) fn elf_section<'a>(elf: &'a [u8], wanted: &str) -> Result<&'a [u8], String> {
    let u16_at = |off: usize| -> Option<u16> {
        Some(u16::from_le_bytes(elf.get(off..off + 2)?.try_into().ok()?))
    };
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_le_bytes(elf.get(off..off + 4)?.try_into().ok()?))
    };
    let u64_at = |off: usize| -> Option<u64> {
        Some(u64::from_le_bytes(elf.get(off..off + 8)?.try_into().ok()?))
    };
    if elf.len() < 64 || !elf.starts_with(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let truncated = || "the ELF section headers are truncated or out of range".to_string();
    let shoff = usize::try_from(u64_at(0x28).ok_or_else(truncated)?).map_err(|_| truncated())?;
    let shentsize = usize::from(u16_at(0x3a).ok_or_else(truncated)?);
    let shnum = usize::from(u16_at(0x3c).ok_or_else(truncated)?);
    let shstrndx = usize::from(u16_at(0x3e).ok_or_else(truncated)?);
    if shentsize < 64 || shstrndx >= shnum {
        return Err("the ELF header's section fields are invalid".into());
    }
    let table_end = shnum
        .checked_mul(shentsize)
        .and_then(|n| n.checked_add(shoff));
    if table_end.is_none_or(|end| end > elf.len()) {
        return Err(truncated());
    }
    let header = |i: usize| -> Option<(u32, &'a [u8])> {
        let base = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = u32_at(base)?;
        let sh_type = u32_at(base + 4)?;
        let offset = usize::try_from(u64_at(base + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(base + 0x20)?).ok()?;
        // SHT_NOBITS occupies no space in the file.
        let data = if sh_type == 8 {
            &[][..]
        } else {
            elf.get(offset..offset.checked_add(size)?)?
        };
        Some((name, data))
    };
    let (_, names) = header(shstrndx).ok_or_else(truncated)?;
    for i in 0..shnum {
        let (name_off, data) = header(i).ok_or_else(truncated)?;
        let name = names
            .get(name_off as usize..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .unwrap_or(&[]);
        if name == wanted.as_bytes() {
            return Ok(data);
        }
    }
    Err(format!("the ELF file has no {wanted} section"))
}

/// `CONFIG_X=y` lines of a kernel configuration, as a map (`# CONFIG_X is not set` is left out).
pub(crate) fn parse_kernel_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Module names in a `modules.builtin` (one path per line).
pub(crate) fn parse_module_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

/// The aliases of built-in modules, from `modules.builtin.modinfo`
/// (NUL-separated `module.key=value`).
pub(crate) fn parse_builtin_aliases(data: &[u8]) -> BTreeSet<String> {
    data.split(|&b| b == 0)
        .filter_map(|item| {
            let item = std::str::from_utf8(item).ok()?;
            let (_, rest) = item.split_once('.')?;
            rest.strip_prefix("alias=").map(str::to_string)
        })
        .collect()
}

/// `fnmatch` as modprobe uses it for aliases: `*` and `?` wildcards.
pub(crate) fn alias_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Everything known about the kernel's modules before any is decompressed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    /// `uname -r`: modules' vermagic must start with it.
    pub kernel_version: String,
    /// The kernel configuration (`CONFIG_X` -> `y`, `m`, ...).
    pub config: BTreeMap<String, String>,
    /// Loadable module name -> path relative to `/lib/modules/<version>/`
    /// as it will be stored (uncompressed, e.g. `kernel/fs/ext4/ext4.ko`).
    pub loadable: BTreeMap<String, String>,
    /// Names of built-in modules.
    pub builtin: BTreeSet<String>,
    /// Aliases of built-in modules.
    pub builtin_aliases: BTreeSet<String>,
}

/// One module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub name: String,
    /// Path relative to `/lib/modules/<version>/`, e.g. `kernel/fs/ext4/ext4.ko`.
    pub path: String,
    pub info: ModInfo,
}

/// The outcome of [`select`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Modules in load order: each after everything it depends on.
    pub modules: Vec<Selected>,
    /// Roots that the kernel has built in.
    pub builtin_roots: Vec<String>,
    /// Soft dependencies that could not be resolved (skipped), one sentence each.
    pub notes: Vec<String>,
}

/// Chooses the modules for `roots` and their dependencies and orders them so
/// that each comes after what it depends on (its soft `pre:` dependencies and
/// its `depends=` modules, recursively) and before its `post:` soft
/// dependencies. `info` returns a loadable module's `.modinfo` by name.
///
/// Errors are sentences naming the module concerned.
pub(crate) fn select(
    catalog: &Catalog,
    roots: &[Root],
    info: &mut dyn FnMut(&str) -> Result<ModInfo, String>,
) -> Result<Selection, String> {
    let mut sel = Selection::default();
    let mut state = Walk {
        catalog,
        info,
        infos: BTreeMap::new(),
        done: BTreeSet::new(),
        stack: Vec::new(),
        out: Vec::new(),
        notes: Vec::new(),
    };
    for root in roots {
        let name = normalize(root.name);
        let setting = catalog.config.get(root.config).map(String::as_str);
        match setting {
            Some("y") => sel.builtin_roots.push(name),
            Some("m") if !catalog.loadable.contains_key(&name) => {
                return Err(format!(
                    "the kernel configuration says {}=m, but the package has no module {name}",
                    root.config
                ))
            }
            _ if catalog.loadable.contains_key(&name) => state.visit(&name, false)?,
            _ if catalog.builtin.contains(&name) => sel.builtin_roots.push(name),
            _ => {
                return Err(format!(
                    "Linux {} was built without {} (module {name}), which the default guest needs",
                    catalog.kernel_version, root.config
                ))
            }
        }
    }
    sel.modules = state.out;
    sel.notes = state.notes;
    Ok(sel)
}

struct Walk<'a> {
    catalog: &'a Catalog,
    info: &'a mut dyn FnMut(&str) -> Result<ModInfo, String>,
    infos: BTreeMap<String, ModInfo>,
    done: BTreeSet<String>,
    stack: Vec<String>,
    out: Vec<Selected>,
    notes: Vec<String>,
}

impl Walk<'_> {
    fn info(&mut self, name: &str) -> Result<ModInfo, String> {
        if let Some(i) = self.infos.get(name) {
            return Ok(i.clone());
        }
        let i = (self.info)(name)?;
        if i.name != name {
            return Err(format!(
                "module file for {name} says its name is {:?}",
                i.name
            ));
        }
        let v = &self.catalog.kernel_version;
        if !(i.vermagic == *v || i.vermagic.starts_with(&format!("{v} "))) {
            return Err(format!(
                "module {name} was built for {:?}, not for Linux {v}",
                i.vermagic.split(' ').next().unwrap_or("")
            ));
        }
        self.infos.insert(name.to_string(), i.clone());
        Ok(i)
    }

    /// Post-order depth-first walk. `soft`: reached through a soft
    /// dependency, where a cycle is broken instead of reported.
    fn visit(&mut self, name: &str, soft: bool) -> Result<(), String> {
        if self.done.contains(name) {
            return Ok(());
        }
        if let Some(at) = self.stack.iter().position(|n| n == name) {
            if soft {
                return Ok(());
            }
            let mut cycle = self.stack[at..].to_vec();
            cycle.push(name.to_string());
            return Err(format!(
                "the kernel modules depend on each other in a cycle: {}",
                cycle.join(" -> ")
            ));
        }
        let info = self.info(name)?;
        self.stack.push(name.to_string());
        for dep in &info.softdep_pre {
            for m in self.resolve_soft(name, dep)? {
                self.visit(&m, true)?;
            }
        }
        for dep in &info.depends {
            if self.catalog.loadable.contains_key(dep) {
                self.visit(dep, false)?;
            } else if !self.catalog.builtin.contains(dep) {
                return Err(format!(
                    "module {name} depends on {dep}, which is neither in the package nor built in"
                ));
            }
        }
        self.stack.pop();
        self.done.insert(name.to_string());
        self.out.push(Selected {
            name: name.to_string(),
            path: self.catalog.loadable[name].clone(),
            info: info.clone(),
        });
        for dep in &info.softdep_post {
            for m in self.resolve_soft(name, dep)? {
                self.visit(&m, true)?;
            }
        }
        Ok(())
    }

    /// The loadable modules a soft dependency names (none if it is built in).
    fn resolve_soft(&mut self, of: &str, dep: &str) -> Result<Vec<String>, String> {
        let as_name = normalize(dep);
        if self.catalog.loadable.contains_key(&as_name) {
            return Ok(vec![as_name]);
        }
        if self.catalog.builtin.contains(&as_name)
            || self
                .catalog
                .builtin_aliases
                .iter()
                .any(|a| alias_matches(a, dep))
        {
            return Ok(Vec::new());
        }
        // `crypto-crc32c` -> modules named crc32c or crc32c_*; `fs-ext4` -> ext4*.
        let mut bases = vec![as_name.clone()];
        if let Some((_, rest)) = dep.split_once('-') {
            bases.push(normalize(rest));
        }
        let candidates: Vec<String> = self
            .catalog
            .loadable
            .keys()
            .filter(|n| {
                bases
                    .iter()
                    .any(|b| *n == b || n.starts_with(&format!("{b}_")))
            })
            .cloned()
            .collect();
        let mut found = Vec::new();
        for c in candidates {
            if self.info(&c)?.aliases.iter().any(|a| alias_matches(a, dep)) {
                found.push(c);
            }
        }
        if found.is_empty() {
            self.notes.push(format!(
                "soft dependency {dep} of module {of} matches no module; it is left out"
            ));
        }
        Ok(found)
    }
}

/// `modules.dep` for the selected modules, in depmod's format: each module
/// followed by everything it needs, transitively, listed so that the last
/// must be loaded first (as busybox and kmod `modprobe` read it).
pub(crate) fn modules_dep(selection: &Selection) -> String {
    let index: BTreeMap<&str, usize> = selection
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut out = String::new();
    for m in &selection.modules {
        // Transitive hard dependencies.
        let mut need = BTreeSet::new();
        let mut todo: Vec<&str> = m.info.depends.iter().map(String::as_str).collect();
        while let Some(d) = todo.pop() {
            if let Some(&i) = index.get(d) {
                if need.insert(i) {
                    todo.extend(selection.modules[i].info.depends.iter().map(String::as_str));
                }
            }
        }
        out.push_str(&m.path);
        out.push(':');
        for &i in need.iter().rev() {
            out.push(' ');
            out.push_str(&selection.modules[i].path);
        }
        out.push('\n');
    }
    out
}

/// `modules.alias` for the selected modules: `alias <pattern> <module>`.
pub(crate) fn modules_alias(selection: &Selection) -> String {
    let mut out = String::from("# Aliases extracted from modules themselves.\n");
    for m in &selection.modules {
        for a in &m.info.aliases {
            // A line is split on whitespace; an alias containing some is unusable.
            if !a.is_empty() && !a.contains(char::is_whitespace) {
                out.push_str(&format!("alias {a} {}\n", m.name));
            }
        }
    }
    out
}

/// A module file from the package, still compressed.
#[derive(Debug)]
pub(crate) struct Packaged {
    /// Its path in the package, which tells its compression.
    pub package_path: String,
    pub data: Vec<u8>,
}

/// The modules chosen from a package, decompressed, with the index files.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub selection: Selection,
    /// `(path relative to /lib/modules/<version>/, contents)`: the modules in
    /// load order, then `modules.dep` and `modules.alias`.
    pub modules: Vec<(String, Vec<u8>)>,
    pub index_files: Vec<(String, Vec<u8>)>,
}

/// Chooses, decompresses and orders the default guest's modules from the
/// files of a kernel package. Errors are sentences.
pub(crate) fn prepare(
    kernel_version: &str,
    config: &str,
    builtin: &str,
    builtin_modinfo: Option<&[u8]>,
    packaged: Vec<Packaged>,
) -> Result<Prepared, String> {
    let mut catalog = Catalog {
        kernel_version: kernel_version.to_string(),
        config: parse_kernel_config(config),
        builtin: parse_module_list(builtin),
        builtin_aliases: builtin_modinfo
            .map(parse_builtin_aliases)
            .unwrap_or_default(),
        loadable: BTreeMap::new(),
    };
    // Module name -> package file; sorted, so a duplicate name resolves the same way every time.
    let mut files: BTreeMap<String, Packaged> = BTreeMap::new();
    let mut packaged = packaged;
    packaged.sort_by(|a, b| a.package_path.cmp(&b.package_path));
    for p in packaged {
        let Some((version, rest)) = split_modules_path(&p.package_path) else {
            continue;
        };
        if version != kernel_version {
            return Err(format!(
                "{} belongs to kernel {version}, but the kernel is {kernel_version}",
                p.package_path
            ));
        }
        let stored = strip_compression(rest).to_string();
        if !is_safe_relative_path(&stored) {
            return Err(format!("{} is not a plain relative path", p.package_path));
        }
        let name = module_name(rest);
        if catalog.loadable.contains_key(&name) {
            continue;
        }
        catalog.loadable.insert(name.clone(), stored);
        files.insert(name, p);
    }
    let mut decompressed: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let selection = select(&catalog, ROOTS, &mut |name| {
        let p = &files[name];
        let elf = decompress(&p.package_path, &p.data, MAX_MODULE_SIZE)?;
        let info =
            ModInfo::from_elf(&elf).map_err(|e| format!("module {}: {e}", p.package_path))?;
        decompressed.insert(name.to_string(), elf);
        Ok(info)
    })?;
    let modules = selection
        .modules
        .iter()
        .map(|m| {
            (
                m.path.clone(),
                decompressed.remove(&m.name).unwrap_or_default(),
            )
        })
        .collect();
    let index_files = vec![
        (
            "modules.dep".to_string(),
            modules_dep(&selection).into_bytes(),
        ),
        (
            "modules.alias".to_string(),
            modules_alias(&selection).into_bytes(),
        ),
    ];
    Ok(Prepared {
        selection,
        modules,
        index_files,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `modules.dep` of trixie's linux-image-6.12.107+deb13-riscv64 as depmod
    /// writes it on an installed system (the lines that matter here, plus some
    /// that must not be chosen), with the soft dependencies and aliases that
    /// the modules' `.modinfo` declare.
    const SAMPLE_MODULES_DEP: &str = "\
kernel/drivers/virtio/virtio_mmio.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
kernel/net/core/failover.ko.xz:
kernel/drivers/char/hw_random/virtio-rng.ko.xz:
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/crypto/crc32c_generic.ko.xz:
kernel/lib/libcrc32c.ko.xz:
kernel/drivers/block/loop.ko.xz:
kernel/fs/btrfs/btrfs.ko.xz: kernel/lib/raid6/raid6_pq.ko.xz kernel/crypto/xor.ko.xz kernel/lib/libcrc32c.ko.xz
kernel/lib/raid6/raid6_pq.ko.xz:
kernel/crypto/xor.ko.xz:
";
    const SAMPLE_SOFTDEPS: &[(&str, &str)] = &[
        ("ext4", "pre: crypto-crc32c"),
        ("jbd2", "pre: crypto-crc32c"),
        ("libcrc32c", "pre: crc32c"),
    ];
    const SAMPLE_ALIASES: &[(&str, &str)] = &[
        ("crc32c_generic", "crypto-crc32c-generic"),
        ("crc32c_generic", "crc32c-generic"),
        ("crc32c_generic", "crypto-crc32c"),
        ("crc32c_generic", "crc32c"),
        ("virtio_blk", "virtio:d00000002v*"),
        ("virtio_net", "virtio:d00000001v*"),
        ("virtio_rng", "virtio:d00000004v*"),
        ("ext4", "fs-ext4"),
    ];
    pub(crate) const SAMPLE_CONFIG: &str = "\
CONFIG_VIRTIO=y
CONFIG_VIRTIO_MMIO=m
CONFIG_VIRTIO_BLK=m
CONFIG_VIRTIO_NET=m
CONFIG_VIRTIO_CONSOLE=y
CONFIG_HW_RANDOM=y
CONFIG_HW_RANDOM_VIRTIO=m
CONFIG_EXT4_FS=m
# CONFIG_EXT2_FS is not set
";
    const SAMPLE_BUILTIN: &str = "\
kernel/drivers/virtio/virtio.ko
kernel/drivers/char/virtio_console.ko
kernel/drivers/char/hw_random/rng-core.ko
kernel/lib/crc32.ko
";

    /// A catalog and `.modinfo` table from a modules.dep text (paths without
    /// the compression suffix, vermagic of `version`).
    pub(crate) fn sample(version: &str) -> (Catalog, BTreeMap<String, ModInfo>) {
        let mut catalog = Catalog {
            kernel_version: version.into(),
            config: parse_kernel_config(SAMPLE_CONFIG),
            builtin: parse_module_list(SAMPLE_BUILTIN),
            ..Catalog::default()
        };
        let mut infos = BTreeMap::new();
        for line in SAMPLE_MODULES_DEP.lines() {
            let (path, deps) = line.split_once(':').unwrap();
            let name = module_name(path);
            catalog
                .loadable
                .insert(name.clone(), strip_compression(path).to_string());
            let mut info = ModInfo {
                name: name.clone(),
                vermagic: format!("{version} SMP mod_unload modversions riscv"),
                // modules.dep lists transitive needs, the last to be loaded
                // first; .modinfo lists direct ones. Keeping them all is
                // harmless for the walk.
                depends: deps.split_whitespace().rev().map(module_name).collect(),
                ..ModInfo::default()
            };
            for (m, s) in SAMPLE_SOFTDEPS {
                if *m == name {
                    info = ModInfo {
                        softdep_pre: s
                            .trim_start_matches("pre: ")
                            .split(' ')
                            .map(String::from)
                            .collect(),
                        ..info
                    };
                }
            }
            info.aliases = SAMPLE_ALIASES
                .iter()
                .filter(|(m, _)| *m == name)
                .map(|(_, a)| a.to_string())
                .collect();
            infos.insert(name, info);
        }
        (catalog, infos)
    }

    fn names(sel: &Selection) -> Vec<&str> {
        sel.modules.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn selects_the_roots_and_their_dependencies_in_load_order() {
        let (catalog, infos) = sample("6.12-test");
        let mut asked = Vec::new();
        let sel = select(&catalog, ROOTS, &mut |n| {
            asked.push(n.to_string());
            Ok(infos[n].clone())
        })
        .unwrap();
        assert_eq!(
            names(&sel),
            [
                "virtio_mmio",
                "virtio_blk",
                "failover",
                "net_failover",
                "virtio_net",
                "virtio_rng",
                "crc32c_generic",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4",
            ]
        );
        assert_eq!(sel.builtin_roots, ["virtio_console", "rng_core"]);
        assert!(sel.notes.is_empty(), "{:?}", sel.notes);
        // Nothing unrelated is even decompressed (loop, btrfs, libcrc32c ...).
        assert!(!asked
            .iter()
            .any(|n| n == "btrfs" || n == "loop" || n == "libcrc32c"));
        assert_eq!(sel.modules[0].path, "kernel/drivers/virtio/virtio_mmio.ko");
        assert_eq!(
            sel.modules[5].path,
            "kernel/drivers/char/hw_random/virtio-rng.ko"
        );
    }

    #[test]
    fn every_module_comes_after_what_it_needs() {
        let (catalog, infos) = sample("v");
        let roots = [Root {
            config: "CONFIG_BTRFS_FS",
            name: "btrfs",
        }];
        let sel = select(&catalog, &roots, &mut |n| Ok(infos[n].clone())).unwrap();
        let pos = |n: &str| names(&sel).iter().position(|m| *m == n).unwrap();
        for m in &sel.modules {
            for d in m.info.depends.iter().chain(&m.info.softdep_pre) {
                let d = if d == "crc32c" { "crc32c_generic" } else { d };
                assert!(pos(d) < pos(&m.name), "{d} before {}", m.name);
            }
        }
        assert_eq!(
            names(&sel),
            ["crc32c_generic", "libcrc32c", "xor", "raid6_pq", "btrfs"]
        );
    }

    #[test]
    fn built_in_roots_are_skipped_and_missing_ones_are_errors() {
        let (mut catalog, infos) = sample("v");
        // A kernel with ext4 built in needs none of its modules.
        catalog.config.insert("CONFIG_EXT4_FS".into(), "y".into());
        let sel = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap();
        assert!(sel.builtin_roots.contains(&"ext4".to_string()));
        assert!(!names(&sel).contains(&"jbd2"));
        // =m but absent from the package.
        catalog.loadable.remove("virtio_blk");
        let err = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap_err();
        assert_eq!(
            err,
            "the kernel configuration says CONFIG_VIRTIO_BLK=m, but the package has no module virtio_blk"
        );
        // Not configured at all.
        catalog.config.remove("CONFIG_VIRTIO_BLK");
        let err = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap_err();
        assert!(err.contains("built without CONFIG_VIRTIO_BLK"), "{err}");
    }

    #[test]
    fn soft_dependencies_resolve_through_built_in_aliases_or_are_noted() {
        let (mut catalog, mut infos) = sample("v");
        // crc32c built in (as on kernels with CONFIG_CRYPTO_CRC32C=y).
        catalog.loadable.remove("crc32c_generic");
        catalog.builtin_aliases.insert("crypto-crc32c".into());
        let sel = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap();
        assert!(!names(&sel).contains(&"crc32c_generic"));
        assert!(sel.notes.is_empty());
        // Neither loadable nor built in: noted, not fatal.
        catalog.builtin_aliases.clear();
        infos.get_mut("virtio_blk").unwrap().softdep_post = vec!["nothing-here".into()];
        let sel = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap();
        assert_eq!(
            sel.notes,
            [
                "soft dependency nothing-here of module virtio_blk matches no module; it is left out",
                "soft dependency crypto-crc32c of module ext4 matches no module; it is left out",
                "soft dependency crypto-crc32c of module jbd2 matches no module; it is left out",
            ]
        );
    }

    #[test]
    fn wrong_kernel_missing_dependencies_and_cycles_are_errors() {
        let (catalog, mut infos) = sample("v");
        infos.get_mut("virtio_blk").unwrap().vermagic = "6.1.0 SMP".into();
        let err = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap_err();
        assert_eq!(
            err,
            "module virtio_blk was built for \"6.1.0\", not for Linux v"
        );
        let (catalog, mut infos) = sample("v");
        infos.get_mut("failover").unwrap().depends = vec!["virtio_net".into()];
        let err = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap_err();
        assert_eq!(
            err,
            "the kernel modules depend on each other in a cycle: virtio_net -> failover -> virtio_net"
        );
        let (catalog, mut infos) = sample("v");
        infos.get_mut("mbcache").unwrap().depends = vec!["nowhere".into()];
        let err = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap_err();
        assert!(err.contains("mbcache depends on nowhere"), "{err}");
    }

    #[test]
    fn writes_modules_dep_and_alias_as_depmod_does() {
        let (catalog, infos) = sample("v");
        let mut infos = infos;
        // .modinfo lists direct dependencies only.
        infos.get_mut("virtio_net").unwrap().depends = vec!["net_failover".into()];
        let sel = select(&catalog, ROOTS, &mut |n| Ok(infos[n].clone())).unwrap();
        let dep = modules_dep(&sel);
        assert!(dep.contains(
            "\nkernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"
        ), "{dep}");
        assert!(dep.contains(
            "\nkernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n"
        ), "{dep}");
        assert!(dep.starts_with("kernel/drivers/virtio/virtio_mmio.ko:\n"));
        assert_eq!(dep.lines().count(), sel.modules.len());
        let alias = modules_alias(&sel);
        assert!(
            alias.contains("\nalias crypto-crc32c crc32c_generic\n"),
            "{alias}"
        );
        assert!(alias.contains("\nalias virtio:d00000002v* virtio_blk\n"));
    }

    #[test]
    fn parses_modinfo_config_and_builtin_lists() {
        let section = b"softdep=pre: crypto-crc32c\0license=GPL\0alias=fs-ext4\0alias=ext3\0\
depends=jbd2,mbcache,crc16\0intree=Y\0name=ext4\0vermagic=6.12.107+deb13-riscv64 SMP mod_unload modversions riscv\0";
        let info = ModInfo::parse(section);
        assert_eq!(info.name, "ext4");
        assert_eq!(info.depends, ["jbd2", "mbcache", "crc16"]);
        assert_eq!(info.softdep_pre, ["crypto-crc32c"]);
        assert_eq!(info.aliases, ["fs-ext4", "ext3"]);
        assert!(info.vermagic.starts_with("6.12.107+deb13-riscv64 "));
        let both = ModInfo::parse(b"softdep=pre: a b post: c\0depends=\0name=x-y\0");
        assert_eq!((both.softdep_pre.len(), both.softdep_post.len()), (2, 1));
        assert!(both.depends.is_empty());
        assert_eq!(both.name, "x_y");

        let config = parse_kernel_config(SAMPLE_CONFIG);
        assert_eq!(config["CONFIG_VIRTIO_MMIO"], "m");
        assert!(!config.contains_key("CONFIG_EXT2_FS"));
        assert!(parse_module_list(SAMPLE_BUILTIN).contains("rng_core"));
        let aliases = parse_builtin_aliases(
            b"rng_core.license=GPL\0crc32c_generic.alias=crypto-crc32c\0crc32c_generic.alias=crc32c\0",
        );
        assert_eq!(
            aliases.into_iter().collect::<Vec<_>>(),
            ["crc32c", "crypto-crc32c"]
        );
        assert!(alias_matches(
            "virtio:d00000002v*",
            "virtio:d00000002v00001AF4"
        ));
        assert!(!alias_matches(
            "virtio:d00000002v*",
            "virtio:d00000001v00001AF4"
        ));
        assert!(alias_matches("a?c", "abc") && !alias_matches("a?c", "ac"));
    }

    #[test]
    fn recognises_package_paths() {
        let v = "6.12.107+deb13-riscv64";
        assert!(is_module_file(&format!(
            "usr/lib/modules/{v}/kernel/fs/ext4/ext4.ko.xz"
        )));
        assert!(is_module_file("lib/modules/6.1.0-9-riscv64/kernel/a/b.ko"));
        assert!(!is_module_file(&format!(
            "usr/lib/modules/{v}/modules.order"
        )));
        assert!(!is_module_file(&format!(
            "usr/lib/modules/{v}/kernel/x.txt"
        )));
        assert!(is_modules_builtin(&format!(
            "usr/lib/modules/{v}/modules.builtin"
        )));
        assert!(is_modules_builtin_modinfo(&format!(
            "usr/lib/modules/{v}/modules.builtin.modinfo"
        )));
        assert!(is_kernel_config(&format!("boot/config-{v}")));
        assert!(!is_kernel_config("boot/config-"));
        assert_eq!(
            module_name("kernel/drivers/char/hw_random/virtio-rng.ko.xz"),
            "virtio_rng"
        );
        assert!(is_safe_relative_path("kernel/fs/ext4/ext4.ko"));
        for bad in ["", "/etc/x", "kernel/../x", "a//b", "./a", "a\\b"] {
            assert!(!is_safe_relative_path(bad), "{bad}");
        }
    }

    /// A minimal ELF64 relocatable with a `.modinfo` section.
    pub(crate) fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let modinfo_off = elf.len();
        elf.extend_from_slice(modinfo);
        let shstr_off = elf.len();
        elf.extend_from_slice(shstrtab);
        while !elf.len().is_multiple_of(8) {
            elf.push(0);
        }
        let shoff = elf.len();
        let mut section = |name: u32, sh_type: u32, off: usize, size: usize| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&sh_type.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        section(0, 0, 0, 0);
        section(1, 1, modinfo_off, modinfo.len());
        section(10, 3, shstr_off, shstrtab.len());
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        elf
    }

    pub(crate) fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &data[..], &mut out).unwrap();
        out
    }

    #[test]
    fn reads_modinfo_from_elf_and_rejects_broken_files() {
        let elf = fake_module(b"name=virtio_blk\0depends=\0alias=virtio:d00000002v*\0");
        let info = ModInfo::from_elf(&elf).unwrap();
        assert_eq!(info.name, "virtio_blk");
        assert_eq!(info.aliases, ["virtio:d00000002v*"]);
        assert_eq!(
            elf_section(&elf, ".text").unwrap_err(),
            "the ELF file has no .text section"
        );
        assert_eq!(ModInfo::from_elf(b"hello").unwrap_err(), "not an ELF file");
        // Section headers pointing past the end, at every possible truncation.
        for cut in 64..elf.len() {
            assert!(ModInfo::from_elf(&elf[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = elf.clone();
        huge[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(ModInfo::from_elf(&huge).is_err());
    }

    #[test]
    fn decompresses_xz_and_gzip_within_a_limit() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(decompress("a.ko.xz", &xz(&data), 1 << 20).unwrap(), data);
        let err = decompress("a.ko.xz", &xz(&data), 1000).unwrap_err();
        assert_eq!(err, "a.ko.xz decompresses to more than 1000 bytes");
        assert!(decompress("a.ko.xz", b"not xz", 1000)
            .unwrap_err()
            .starts_with("a.ko.xz is not valid xz data"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress("a.ko.gz", &gz, 1 << 20).unwrap(), data);
        assert!(decompress("a.ko.gz", &gz, 10).is_err());
        assert!(decompress("a.ko.zst", b"", 10)
            .unwrap_err()
            .contains("zstd"));
        assert_eq!(decompress("a.ko", b"plain", 10).unwrap(), b"plain");
    }

    #[test]
    fn prepares_modules_from_packaged_files() {
        let v = "6.12-test";
        let (_, infos) = sample(v);
        let (catalog, _) = sample(v);
        let mut packaged = Vec::new();
        for (name, path) in &catalog.loadable {
            let i = &infos[name];
            let mut modinfo = format!(
                "name={}\0vermagic={}\0depends={}\0",
                i.name,
                i.vermagic,
                i.depends.join(",")
            );
            if !i.softdep_pre.is_empty() {
                modinfo.push_str(&format!("softdep=pre: {}\0", i.softdep_pre.join(" ")));
            }
            for a in &i.aliases {
                modinfo.push_str(&format!("alias={a}\0"));
            }
            packaged.push(Packaged {
                package_path: format!("usr/lib/modules/{v}/{path}.xz"),
                data: xz(&fake_module(modinfo.as_bytes())),
            });
        }
        let prepared = prepare(v, SAMPLE_CONFIG, SAMPLE_BUILTIN, None, packaged).unwrap();
        let paths: Vec<&str> = prepared.modules.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths.len(), 11);
        assert_eq!(paths[0], "kernel/drivers/virtio/virtio_mmio.ko");
        assert_eq!(paths[10], "kernel/fs/ext4/ext4.ko");
        assert!(prepared.modules[10].1.starts_with(b"\x7fELF"));
        assert_eq!(
            ModInfo::from_elf(&prepared.modules[10].1).unwrap().name,
            "ext4"
        );
        assert_eq!(prepared.index_files[0].0, "modules.dep");

        let other = vec![Packaged {
            package_path: "usr/lib/modules/6.1/kernel/a.ko".into(),
            data: Vec::new(),
        }];
        let err = prepare(v, SAMPLE_CONFIG, SAMPLE_BUILTIN, None, other).unwrap_err();
        assert_eq!(
            err,
            "usr/lib/modules/6.1/kernel/a.ko belongs to kernel 6.1, but the kernel is 6.12-test"
        );
    }
}
