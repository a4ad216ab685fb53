//! The default Rewind guest: Debian's riscv64 kernel, busybox-static and
//! OpenSBI, fetched with apt and packed into an initramfs by our own code.
//!
//! [`default_guest`] is what `rewind run` with no arguments boots. It
//! 1. takes the Debian archive URI from the host's apt sources (never from
//!    code; `REWIND_DEBIAN_MIRROR` overrides it),
//! 2. runs `apt-get update` and `apt-get download` with private state under the
//!    cache directory (suite trixie, architecture riscv64, signatures checked
//!    against the host's `debian-archive-keyring`; see `src/apt.rs` for how),
//! 3. takes the kernel, busybox and `fw_dynamic.bin` out of the packages, and
//!    the kernel modules for the virtio devices and ext4 with everything they
//!    depend on (see `src/modules.rs`), decompressed,
//! 4. builds the initramfs ([`modules_initramfs`]) and returns the paths.
//!
//! The result is cached: once `manifest.txt` is in place, no network is used.
//!
//! Cache layout, under `<cache_dir>/debian-trixie-riscv64/`:
//!
//! | file | what |
//! |---|---|
//! | `Image-<version>` | the kernel, an uncompressed RISC-V Image (`vmlinux-<version>` if it were ELF) |
//! | `fw_dynamic.bin` | OpenSBI, generic platform, dynamic-info firmware |
//! | `busybox` | busybox-static for riscv64 |
//! | `modules/` | the kernel modules, uncompressed, as under `/lib/modules/<version>/` (`kernel/fs/ext4/ext4.ko`, ...), with the `modules.dep` and `modules.alias` we write for them |
//! | `initramfs.cpio` | rebuilt from `busybox`, `modules/` and [`DEFAULT_INIT`] on every call, rewritten only if it changed |
//! | `manifest.txt` | written last: versions, sizes, SHA-256 of the packages, the modules in load order; its presence means complete |
//! | `lock` | held while fetching, so concurrent runs wait instead of racing |
//! | `work/` | private apt state and downloaded packages while fetching; removed afterwards |
//!
//! Every file is written under a temporary name and renamed into place, so
//! an interrupted fetch never leaves a file that looks complete. A cache of an
//! older format (a `manifest.txt` with another `format=`) is fetched again.
//!
//! What the guest expects of the machine, for its modules to find devices:
//! a device tree with `virtio,mmio` nodes (QEMU `virt` layout: `reg` at
//! 0x1000_1000 + n * 0x1000, size 0x1000, `interrupts` 1 + n on the PLIC);
//! transports with device ID 0 are skipped by the driver. The guest then sees
//! a virtio-blk disk as `/dev/vda`, virtio-net as `eth0`, virtio-rng as
//! `/dev/hwrng` and virtio-console as `/dev/hvc0` (the last built in).
//! `root=/dev/vda` on the kernel command line boots an ext4 root file system
//! from the disk (see [`DEFAULT_INIT`]).

// This crate holds no guest state: it fetches files on the host (the
// environment says where the cache and the archive are), and what it makes
// reaches a machine only as files that recordings name by content hash.
#![allow(clippy::disallowed_methods)]

mod apt;
mod cpio;
mod deb;
mod error;
mod init;
mod kernel;
mod modules;
mod sources;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process;

pub use cpio::Initramfs;
pub use error::GuestError;
pub use init::{
    busybox_initramfs, default_initramfs, modules_initramfs, parse_exit_status, KernelModules,
    DEFAULT_CMDLINE, DEFAULT_INIT, EXIT_STATUS_PREFIX, MODULES_PARAM, MODULE_LIST_PATH,
    READY_MARKER, ROOT_FAILED_MARKER, RUN_PARAM, SWITCH_ROOT_MARKER,
};
pub use kernel::{bootable_kernel, detect_kernel_format, ImageHeader, KernelFormat};
pub use sources::{
    debian_archive_uri, host_debian_archive_uri, parse_deb822_sources, parse_one_line_sources,
    AptSource,
};

/// The Debian suite the default guest comes from.
pub const SUITE: &str = "trixie";
/// The keyring that authenticates the Debian archive (from `debian-archive-keyring`).
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// Environment variable that overrides the archive URI taken from the host's apt sources.
pub const MIRROR_ENV: &str = "REWIND_DEBIAN_MIRROR";

/// The kernel metapackage; it depends on the current versioned kernel package.
const KERNEL_META: &str = "linux-image-riscv64";
const BUSYBOX_PACKAGE: &str = "busybox-static";
const OPENSBI_PACKAGE: &str = "opensbi";
/// Bump when the cache's contents or layout change, so old caches are refetched.
/// 2: kernel modules under `modules/`, listed as `module=` and `module_index=` lines.
const MANIFEST_FORMAT: &str = "2";
/// The cache's directory of kernel modules.
const MODULES_DIR: &str = "modules";

/// The files of a prepared guest. The initramfs carries the kernel modules
/// for the virtio devices and ext4, loaded at boot, and switches to a root
/// file system given with `root=` (see [`DEFAULT_INIT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFiles {
    /// The kernel: an uncompressed RISC-V Image (Debian's) or an ELF vmlinux.
    pub kernel: PathBuf,
    /// The initramfs (newc cpio, uncompressed).
    pub initrd: PathBuf,
    /// OpenSBI `fw_dynamic.bin`, to be loaded at the start of RAM.
    pub firmware: PathBuf,
    /// The kernel's `uname -r`, e.g. `6.12.107+deb13-riscv64`.
    pub kernel_version: String,
}

/// The cache directory: `$REWIND_CACHE`, else `$XDG_CACHE_HOME/rewind`, else
/// `$HOME/.cache/rewind` (and, with no `HOME`, `rewind-cache` in the temporary directory).
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(|name| std::env::var_os(name))
}

fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let var = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("REWIND_CACHE") {
        return dir;
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(dir) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return dir.join("rewind");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("rewind");
    }
    std::env::temp_dir().join("rewind-cache")
}

/// Fetches (unless cached) and prepares the default guest under `cache_dir`.
/// `progress` receives one-line human messages while fetching; a cache hit
/// reports nothing.
pub fn default_guest(
    cache_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<GuestFiles, GuestError> {
    let (root, manifest) = prepare(cache_dir, progress)?;
    let initrd = root.join("initramfs.cpio");
    let image = manifest_initramfs(&root, &manifest, &[])?;
    if fs::read(&initrd).ok().as_deref() != Some(&image[..]) {
        write_atomic(&initrd, &image)?;
    }
    Ok(GuestFiles {
        kernel: root.join(&manifest.kernel),
        initrd,
        firmware: root.join(&manifest.firmware),
        kernel_version: manifest.kernel_version,
    })
}

/// An initramfs like the default guest's (busybox, the kernel modules,
/// [`DEFAULT_INIT`]) with `extra` files added as in [`default_initramfs`],
/// fetching the guest first unless it is cached. For tests that run their own
/// programs in the default guest.
pub fn default_guest_initramfs(
    cache_dir: &Path,
    extra: &[(String, Vec<u8>, u32)],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<u8>, GuestError> {
    let (root, manifest) = prepare(cache_dir, progress)?;
    manifest_initramfs(&root, &manifest, extra)
}

/// The kernel modules of the default guest, as [`modules_initramfs`] takes
/// them, fetching the guest first unless it is cached.
pub fn default_guest_modules(
    cache_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<KernelModules, GuestError> {
    let (root, manifest) = prepare(cache_dir, progress)?;
    manifest.read_modules(&root)
}

/// Fetches unless cached; returns the cache root and its manifest.
fn prepare(
    cache_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(PathBuf, Manifest), GuestError> {
    let root = cache_dir.join(format!("debian-{SUITE}-{}", apt::ARCH));
    mkdir(&root)?;
    let manifest = match Manifest::load(&root)? {
        Some(m) => m,
        None => {
            let lock_path = root.join("lock");
            let lock = fs::File::create(&lock_path)
                .map_err(|e| GuestError::io("create", &lock_path, e))?;
            if lock.try_lock().is_err() {
                progress(&format!(
                    "waiting for another rewind to finish fetching into {} ...",
                    root.display()
                ));
                lock.lock()
                    .map_err(|e| GuestError::io("lock", &lock_path, e))?;
            }
            // Another process may have completed the fetch while we waited.
            match Manifest::load(&root)? {
                Some(m) => m,
                None => fetch(&root, progress)?,
            }
            // The lock is released when `lock` is dropped here.
        }
    };
    Ok((root, manifest))
}

/// The initramfs from the cache's busybox and modules, plus `extra`.
fn manifest_initramfs(
    root: &Path,
    manifest: &Manifest,
    extra: &[(String, Vec<u8>, u32)],
) -> Result<Vec<u8>, GuestError> {
    let busybox_path = root.join(&manifest.busybox);
    let busybox = fs::read(&busybox_path).map_err(|e| GuestError::io("read", &busybox_path, e))?;
    let modules = manifest.read_modules(root)?;
    Ok(modules_initramfs(&busybox, &modules, extra))
}

/// What the cache holds; `manifest.txt` as `key=value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Manifest {
    kernel: String,
    kernel_version: String,
    firmware: String,
    busybox: String,
    /// Kernel modules in load order: path under `modules/` and size.
    modules: Vec<(String, u64)>,
    /// `modules.dep` and `modules.alias`: path under `modules/` and size.
    module_index: Vec<(String, u64)>,
    /// All lines, for writing and for the sizes of the files above.
    lines: Vec<(String, String)>,
}

impl Manifest {
    fn get<'a>(lines: &'a [(String, String)], key: &str) -> Option<&'a str> {
        lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn parse(text: &str) -> Option<Manifest> {
        let lines: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        if Self::get(&lines, "format")? != MANIFEST_FORMAT {
            return None;
        }
        let name = |key: &str| {
            let v = Self::get(&lines, key)?;
            // Plain file names in the cache directory only.
            (!v.is_empty() && !v.contains('/') && v != "." && v != "..").then(|| v.to_string())
        };
        // `module=<path> <size>`: a relative path of plain components.
        let files = |key: &str| -> Option<Vec<(String, u64)>> {
            lines
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| {
                    let (path, size) = v.rsplit_once(' ')?;
                    let path = path.trim();
                    modules::is_safe_relative_path(path)
                        .then(|| Some((path.to_string(), size.parse().ok()?)))?
                })
                .collect()
        };
        let kernel_version = Self::get(&lines, "kernel_version")?.to_string();
        let modules = files("module")?;
        // The version names a directory in the initramfs.
        if !modules.is_empty() && !modules::is_safe_relative_path(&kernel_version) {
            return None;
        }
        Some(Manifest {
            kernel: name("kernel")?,
            kernel_version,
            firmware: name("firmware")?,
            busybox: name("busybox")?,
            modules,
            module_index: files("module_index")?,
            lines,
        })
    }

    /// The cache's kernel modules.
    fn read_modules(&self, root: &Path) -> Result<KernelModules, GuestError> {
        let dir = root.join(MODULES_DIR);
        let read = |list: &[(String, u64)]| -> Result<Vec<(String, Vec<u8>)>, GuestError> {
            list.iter()
                .map(|(path, _)| {
                    let p = dir.join(path);
                    let data = fs::read(&p).map_err(|e| GuestError::io("read", &p, e))?;
                    Ok((path.clone(), data))
                })
                .collect()
        };
        Ok(KernelModules {
            kernel_version: self.kernel_version.clone(),
            modules: read(&self.modules)?,
            index_files: read(&self.module_index)?,
        })
    }

    /// The manifest in `root` if present, current and matching the files; `None` to fetch.
    fn load(root: &Path) -> Result<Option<Manifest>, GuestError> {
        let path = root.join("manifest.txt");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(GuestError::io("read", &path, e)),
        };
        let Some(m) = Manifest::parse(&text) else {
            return Ok(None);
        };
        let mut files: Vec<(PathBuf, String, Option<String>)> = [
            (&m.kernel, "kernel_size"),
            (&m.firmware, "firmware_size"),
            (&m.busybox, "busybox_size"),
        ]
        .into_iter()
        .map(|(file, size_key)| {
            let want = Self::get(&m.lines, size_key).map(str::to_string);
            (root.join(file), file.clone(), want)
        })
        .collect();
        for (path, size) in m.modules.iter().chain(&m.module_index) {
            files.push((
                root.join(MODULES_DIR).join(path),
                format!("{MODULES_DIR}/{path}"),
                Some(size.to_string()),
            ));
        }
        for (p, file, want) in files {
            let want = want.as_deref();
            let have = fs::metadata(&p).ok().map(|md| md.len().to_string());
            if have.is_none() {
                return Ok(None); // deleted by hand: fetch again
            }
            if want != have.as_deref() {
                return Err(GuestError::CorruptCache {
                    path: root.to_path_buf(),
                    detail: format!(
                        "{file} is {} bytes, the manifest says {}",
                        have.unwrap_or_default(),
                        want.unwrap_or("nothing")
                    ),
                });
            }
        }
        Ok(Some(m))
    }
}

/// Finds `program` on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn mkdir(dir: &Path) -> Result<(), GuestError> {
    fs::create_dir_all(dir).map_err(|e| GuestError::io("create directory", dir, e))
}

/// Writes `data` to `path` through a temporary file in the same directory and
/// a rename, so that `path` is either absent, the old file, or complete.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), GuestError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        GuestError::io("write", path, e)
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Checks that `bytes` is a RISC-V ELF executable (for busybox).
fn is_riscv_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && bytes.starts_with(b"\x7fELF")
        && u16::from_le_bytes([bytes[18], bytes[19]]) == 243
}

/// The whole fetch: apt, extraction, cache files, manifest.
fn fetch(root: &Path, progress: &mut dyn FnMut(&str)) -> Result<Manifest, GuestError> {
    for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
        if !on_path(tool) {
            return Err(GuestError::ToolMissing { tool });
        }
    }
    let uri = match std::env::var(MIRROR_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(uri) => uri.trim().to_string(),
        None => host_debian_archive_uri(Path::new("/etc/apt"))?,
    };
    let keyring = PathBuf::from(DEBIAN_KEYRING);
    if !keyring.is_file() {
        return Err(GuestError::KeyringMissing { path: keyring });
    }

    let work = root.join("work");
    let apt = apt::PrivateApt::create(&work.join("apt"), &uri, SUITE, &keyring)?;
    progress(&format!(
        "fetching the Debian {SUITE} {} package index with apt from {uri} ...",
        apt::ARCH
    ));
    apt.update()?;

    let meta = apt.show(KERNEL_META)?;
    let kernel_name =
        apt::kernel_package_from_depends(KERNEL_META, &meta.depends).ok_or_else(|| {
            GuestError::PackageNotFound {
                package: format!("the kernel package {KERNEL_META} depends on"),
                suite: SUITE.into(),
                uri: uri.clone(),
            }
        })?;
    let packages = [
        apt.show(&kernel_name)?,
        apt.show(BUSYBOX_PACKAGE)?,
        apt.show(OPENSBI_PACKAGE)?,
    ];
    let total: u64 = packages.iter().map(|p| p.size).sum();
    let list: Vec<String> = packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    progress(&format!(
        "downloading {} ({}) ...",
        list.join(", "),
        mib(total)
    ));

    // A fresh download directory: whatever an interrupted run left is discarded.
    let debs = work.join("debs");
    let _ = fs::remove_dir_all(&debs);
    mkdir(&debs)?;
    apt.download(&packages, &debs)?;
    let deb_of = |name: &str| -> Result<PathBuf, GuestError> {
        let prefix = format!("{name}_");
        let entries =
            fs::read_dir(&debs).map_err(|e| GuestError::io("read directory", &debs, e))?;
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with(&prefix) && n.ends_with(".deb")
                })
            })
            .ok_or_else(|| GuestError::AptFailed {
                command: "apt-get download".into(),
                status: "exit status 0".into(),
                detail: format!("no {name}_*.deb was downloaded into {}", debs.display()),
            })
    };

    progress("extracting the kernel, its modules, busybox and OpenSBI ...");
    let kernel_deb = deb_of(&packages[0].name)?;
    let (kernel, prepared) = extract_kernel(&kernel_deb, &packages[0].name)?;
    let busybox_deb = deb_of(&packages[1].name)?;
    let [busybox] = take(deb::extract(
        &busybox_deb,
        &packages[1].name,
        &[deb::Wanted {
            what: "/usr/bin/busybox",
            matches: deb::is_busybox,
            max_size: 64 << 20,
        }],
    )?);
    let opensbi_deb = deb_of(&packages[2].name)?;
    let [firmware] = take(deb::extract(
        &opensbi_deb,
        &packages[2].name,
        &[deb::Wanted {
            what: "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin",
            matches: deb::is_opensbi_fw_dynamic,
            max_size: 16 << 20,
        }],
    )?);

    let kernel_version = deb::kernel_version_from_path(&kernel.path)
        .unwrap_or_default()
        .to_string();
    let (kernel_bytes, format) = bootable_kernel(kernel.data)?;
    let kernel_file = match format {
        KernelFormat::Elf => format!("vmlinux-{kernel_version}"),
        _ => format!("Image-{kernel_version}"),
    };
    if !is_riscv_elf(&busybox.data) {
        return Err(GuestError::BadDeb {
            path: busybox_deb,
            detail: format!("{} is not a RISC-V ELF executable", busybox.path),
        });
    }

    // Files first, manifest last: the manifest is the mark of a complete cache.
    write_atomic(&root.join(&kernel_file), &kernel_bytes)?;
    write_atomic(&root.join("fw_dynamic.bin"), &firmware.data)?;
    write_atomic(&root.join("busybox"), &busybox.data)?;
    // No manifest names the old modules directory (there is none, or it is
    // of another format), so it can go.
    let modules_dir = root.join(MODULES_DIR);
    if modules_dir.exists() {
        fs::remove_dir_all(&modules_dir).map_err(|e| GuestError::io("remove", &modules_dir, e))?;
    }
    for (path, data) in prepared.modules.iter().chain(&prepared.index_files) {
        let p = modules_dir.join(path);
        if let Some(parent) = p.parent() {
            mkdir(parent)?;
        }
        write_atomic(&p, data)?;
    }
    let mut text = format!(
        "# The default Rewind guest. Delete this directory to fetch it again.\n\
         format={MANIFEST_FORMAT}\nsuite={SUITE}\narch={}\narchive={uri}\n\
         kernel={kernel_file}\nkernel_size={}\nkernel_version={kernel_version}\nkernel_format={}\nkernel_source=/{}\n\
         firmware=fw_dynamic.bin\nfirmware_size={}\nfirmware_source=/{}\n\
         busybox=busybox\nbusybox_size={}\nbusybox_source=/{}\n",
        apt::ARCH,
        kernel_bytes.len(),
        format.describe(),
        kernel.path,
        firmware.data.len(),
        firmware.path,
        busybox.data.len(),
        busybox.path,
    );
    for p in &packages {
        text.push_str(&format!(
            "package={} {} {} sha256:{}\n",
            p.name, p.version, p.size, p.sha256
        ));
    }
    text.push_str(
        "# Kernel modules under modules/, loaded by /init in this order; module_index: modules.dep, modules.alias.\n",
    );
    for (path, data) in &prepared.modules {
        text.push_str(&format!("module={path} {}\n", data.len()));
    }
    for (path, data) in &prepared.index_files {
        text.push_str(&format!("module_index={path} {}\n", data.len()));
    }
    let builtin = &prepared.selection.builtin_roots;
    text.push_str(&format!("modules_builtin={}\n", builtin.join(" ")));
    write_atomic(&root.join("manifest.txt"), text.as_bytes())?;
    let _ = fs::remove_dir_all(&work);
    for note in &prepared.selection.notes {
        progress(note);
    }
    let names: Vec<&str> = prepared
        .selection
        .modules
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    progress(&format!(
        "default guest ready in {}: Linux {kernel_version} ({}) with modules {} ({}), busybox {}, OpenSBI {}",
        root.display(),
        format.describe(),
        names.join(" "),
        mib(prepared.modules.iter().map(|(_, d)| d.len() as u64).sum()),
        packages[1].version,
        packages[2].version
    ));
    Manifest::parse(&text).ok_or_else(|| GuestError::CorruptCache {
        path: root.into(),
        detail: "the manifest just written does not parse".into(),
    })
}

/// Takes the kernel and the modules the default guest needs out of the
/// kernel package, in one pass over it.
fn extract_kernel(
    deb: &Path,
    package: &str,
) -> Result<(deb::Extracted, modules::Prepared), GuestError> {
    let wanted = [
        deb::Wanted {
            what: "a kernel (/boot/vmlinux-*)",
            matches: deb::is_kernel,
            max_size: 512 << 20,
        },
        deb::Wanted {
            what: "the kernel configuration (/boot/config-*)",
            matches: modules::is_kernel_config,
            max_size: 4 << 20,
        },
        deb::Wanted {
            what: "the list of built-in modules (/usr/lib/modules/*/modules.builtin)",
            matches: modules::is_modules_builtin,
            max_size: 4 << 20,
        },
        deb::Wanted {
            what: "modules.builtin.modinfo",
            matches: modules::is_modules_builtin_modinfo,
            max_size: 16 << 20,
        },
    ];
    let all = deb::WantedAll {
        what: "kernel modules",
        matches: modules::is_module_file,
        max_size: modules::MAX_MODULE_SIZE,
        max_total: modules::MAX_PACKAGED_TOTAL,
    };
    let (found, packaged) = deb::extract_with(deb, &wanted, Some(&all))?;
    let [kernel, config, builtin, builtin_modinfo] = <[Option<deb::Extracted>; 4]>::try_from(found)
        .unwrap_or_else(|v| panic!("one result per wanted file, got {}", v.len()));
    let missing = |i: usize| GuestError::MissingInPackage {
        package: package.into(),
        what: wanted[i].what.into(),
    };
    let kernel = kernel.ok_or_else(|| missing(0))?;
    let config = config.ok_or_else(|| missing(1))?;
    let builtin = builtin.ok_or_else(|| missing(2))?;
    let version = deb::kernel_version_from_path(&kernel.path).unwrap_or_default();
    let bad = |detail: String| GuestError::BadDeb {
        path: deb.to_path_buf(),
        detail,
    };
    if config.path != format!("boot/config-{version}") {
        return Err(bad(format!(
            "its kernel configuration {} is not for the kernel {}",
            config.path, kernel.path
        )));
    }
    if packaged.is_empty() {
        return Err(GuestError::MissingInPackage {
            package: package.into(),
            what: "kernel modules (/usr/lib/modules/*/kernel/**/*.ko*)".into(),
        });
    }
    let prepared = modules::prepare(
        version,
        &String::from_utf8_lossy(&config.data),
        &String::from_utf8_lossy(&builtin.data),
        builtin_modinfo.as_ref().map(|f| &f.data[..]),
        packaged
            .into_iter()
            .map(|f| modules::Packaged {
                package_path: f.path,
                data: f.data,
            })
            .collect(),
    )
    .map_err(bad)?;
    Ok((kernel, prepared))
}

/// Turns a vector of known length into an array.
fn take<const N: usize>(v: Vec<deb::Extracted>) -> [deb::Extracted; N] {
    v.try_into().unwrap_or_else(|v: Vec<_>| {
        panic!("extract returns one file per wanted entry, got {}", v.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_other_formats_and_paths() {
        let text = "format=2\nkernel=Image-6.12\nkernel_version=6.12\nfirmware=fw_dynamic.bin\nbusybox=busybox\n\
                    module=kernel/fs/jbd2/jbd2.ko 4\nmodule=kernel/fs/ext4/ext4.ko 12\nmodule_index=modules.dep 3\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(
            (m.kernel.as_str(), m.kernel_version.as_str()),
            ("Image-6.12", "6.12")
        );
        assert_eq!(
            m.modules,
            [
                ("kernel/fs/jbd2/jbd2.ko".to_string(), 4),
                ("kernel/fs/ext4/ext4.ko".to_string(), 12)
            ]
        );
        assert_eq!(m.module_index, [("modules.dep".to_string(), 3)]);
        // Format 1 caches (no modules) are fetched again.
        assert!(Manifest::parse(&text.replace("format=2", "format=1")).is_none());
        assert!(
            Manifest::parse(&text.replace("busybox=busybox", "busybox=../../etc/passwd")).is_none()
        );
        for bad in [
            "module=../../../etc/passwd 4",
            "module=/etc/passwd 4",
            "module=kernel/a.ko",
            "module=kernel/a.ko x",
        ] {
            let t = text.replace("module=kernel/fs/jbd2/jbd2.ko 4", bad);
            assert!(Manifest::parse(&t).is_none(), "{bad}");
        }
        let t = text.replace("kernel_version=6.12", "kernel_version=../6.12");
        assert!(Manifest::parse(&t).is_none());
    }

    #[test]
    fn cache_is_used_without_apt_and_initramfs_follows_the_init_script() {
        let root_parent =
            std::env::temp_dir().join(format!("rewind-guest-cache-{}", process::id()));
        let root = root_parent.join("debian-trixie-riscv64");
        fs::create_dir_all(root.join("modules/kernel/fs/ext4")).unwrap();
        fs::write(root.join("Image-6.12-test"), b"kernel").unwrap();
        fs::write(root.join("fw_dynamic.bin"), b"sbi").unwrap();
        fs::write(root.join("busybox"), b"bb").unwrap();
        fs::write(root.join("modules/kernel/fs/ext4/ext4.ko"), b"EXT4").unwrap();
        fs::write(
            root.join("modules/modules.dep"),
            b"kernel/fs/ext4/ext4.ko:\n",
        )
        .unwrap();
        fs::write(
            root.join("manifest.txt"),
            "format=2\nkernel=Image-6.12-test\nkernel_size=6\nkernel_version=6.12-test\n\
             firmware=fw_dynamic.bin\nfirmware_size=3\nbusybox=busybox\nbusybox_size=2\n\
             module=kernel/fs/ext4/ext4.ko 4\nmodule_index=modules.dep 24\n",
        )
        .unwrap();
        fs::write(root.join("initramfs.cpio"), b"stale").unwrap();
        let mut messages = Vec::new();
        let files = default_guest(&root_parent, &mut |m| messages.push(m.to_string())).unwrap();
        assert!(messages.is_empty(), "a cache hit is silent: {messages:?}");
        assert_eq!(files.kernel, root.join("Image-6.12-test"));
        assert_eq!(files.kernel_version, "6.12-test");
        let modules = KernelModules {
            kernel_version: "6.12-test".into(),
            modules: vec![("kernel/fs/ext4/ext4.ko".into(), b"EXT4".to_vec())],
            index_files: vec![("modules.dep".into(), b"kernel/fs/ext4/ext4.ko:\n".to_vec())],
        };
        assert_eq!(
            fs::read(&files.initrd).unwrap(),
            modules_initramfs(b"bb", &modules, &[])
        );
        assert_eq!(
            default_guest_modules(&root_parent, &mut |_| {}).unwrap(),
            modules
        );
        let extra = [("/opt/x".to_string(), b"x".to_vec(), 0o755)];
        assert_eq!(
            default_guest_initramfs(&root_parent, &extra, &mut |_| {}).unwrap(),
            modules_initramfs(b"bb", &modules, &extra)
        );

        // A truncated file is reported, not silently booted.
        fs::write(root.join("modules/kernel/fs/ext4/ext4.ko"), b"EXT").unwrap();
        let err = default_guest(&root_parent, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("modules/kernel/fs/ext4/ext4.ko is 3 bytes, the manifest says 4"),
            "{err}"
        );
        fs::write(root.join("modules/kernel/fs/ext4/ext4.ko"), b"EXT4").unwrap();
        fs::write(root.join("fw_dynamic.bin"), b"s").unwrap();
        let err = default_guest(&root_parent, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("fw_dynamic.bin is 1 bytes"), "{err}");
        fs::remove_dir_all(&root_parent).unwrap();
    }

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let dir = std::env::temp_dir().join(format!("rewind-guest-atomic-{}", process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_atomic(&dir.join("f"), b"one").unwrap();
        write_atomic(&dir.join("f"), b"two").unwrap();
        assert_eq!(fs::read(dir.join("f")).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cache_dir_prefers_rewind_cache_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        const ALL: &[(&str, &str)] = &[
            ("REWIND_CACHE", "/r"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir_from(env(ALL)), PathBuf::from("/r"));
        assert_eq!(
            cache_dir_from(env(&[
                ("REWIND_CACHE", ""),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ])),
            PathBuf::from("/x/rewind")
        );
        assert_eq!(
            cache_dir_from(env(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/h")])),
            PathBuf::from("/h/.cache/rewind")
        );
        assert_eq!(
            cache_dir_from(env(&[])),
            std::env::temp_dir().join("rewind-cache")
        );
    }
}
