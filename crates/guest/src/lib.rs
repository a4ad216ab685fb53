//! The default Rewind guest: Debian's riscv64 kernel, busybox-static and
//! OpenSBI, fetched with apt and packed into an initramfs by our own code.
//!
//! [`default_guest`] is what `rewind run` with no arguments boots. It
//! 1. takes the Debian archive URI from the host's apt sources (never from
//!    code; `REWIND_DEBIAN_MIRROR` overrides it),
//! 2. runs `apt-get update` and `apt-get download` with private state under the
//!    cache directory (suite trixie, architecture riscv64, signatures checked
//!    against the host's `debian-archive-keyring`; see `src/apt.rs` for how),
//! 3. takes the kernel, busybox and `fw_dynamic.bin` out of the packages,
//! 4. builds the initramfs ([`default_initramfs`]) and returns the paths.
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
//! | `initramfs.cpio` | rebuilt from `busybox` and [`DEFAULT_INIT`] on every call, rewritten only if it changed |
//! | `manifest.txt` | written last: versions, sizes, SHA-256 of the packages; its presence means complete |
//! | `lock` | held while fetching, so concurrent runs wait instead of racing |
//! | `work/` | private apt state and downloaded packages while fetching; removed afterwards |
//!
//! Every file is written under a temporary name and renamed into place, so
//! an interrupted fetch never leaves a file that looks complete.

mod apt;
mod cpio;
mod deb;
mod error;
mod init;
mod kernel;
mod sources;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process;

pub use cpio::Initramfs;
pub use error::GuestError;
pub use init::{
    busybox_initramfs, default_initramfs, parse_exit_status, DEFAULT_CMDLINE, DEFAULT_INIT,
    EXIT_STATUS_PREFIX, READY_MARKER, RUN_PARAM,
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
const MANIFEST_FORMAT: &str = "1";

/// The files of a prepared guest.
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
    let busybox_path = root.join(&manifest.busybox);
    let busybox = fs::read(&busybox_path).map_err(|e| GuestError::io("read", &busybox_path, e))?;
    let initrd = root.join("initramfs.cpio");
    let image = default_initramfs(&busybox, &[]);
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

/// What the cache holds; `manifest.txt` as `key=value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Manifest {
    kernel: String,
    kernel_version: String,
    firmware: String,
    busybox: String,
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
        Some(Manifest {
            kernel: name("kernel")?,
            kernel_version: Self::get(&lines, "kernel_version")?.to_string(),
            firmware: name("firmware")?,
            busybox: name("busybox")?,
            lines,
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
        for (file, size_key) in [
            (&m.kernel, "kernel_size"),
            (&m.firmware, "firmware_size"),
            (&m.busybox, "busybox_size"),
        ] {
            let p = root.join(file);
            let want = Self::get(&m.lines, size_key);
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

    progress("extracting the kernel, busybox and OpenSBI ...");
    let kernel_deb = deb_of(&packages[0].name)?;
    let [kernel] = take(deb::extract(
        &kernel_deb,
        &packages[0].name,
        &[deb::Wanted {
            what: "a kernel (/boot/vmlinux-*)",
            matches: deb::is_kernel,
            max_size: 512 << 20,
        }],
    )?);
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
    write_atomic(&root.join("manifest.txt"), text.as_bytes())?;
    let _ = fs::remove_dir_all(&work);
    progress(&format!(
        "default guest ready in {}: Linux {kernel_version} ({}), busybox {}, OpenSBI {}",
        root.display(),
        format.describe(),
        packages[1].version,
        packages[2].version
    ));
    Manifest::parse(&text).ok_or_else(|| GuestError::CorruptCache {
        path: root.into(),
        detail: "the manifest just written does not parse".into(),
    })
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
        let text = "format=1\nkernel=Image-6.12\nkernel_version=6.12\nfirmware=fw_dynamic.bin\nbusybox=busybox\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(
            (m.kernel.as_str(), m.kernel_version.as_str()),
            ("Image-6.12", "6.12")
        );
        assert!(Manifest::parse(&text.replace("format=1", "format=0")).is_none());
        assert!(
            Manifest::parse(&text.replace("busybox=busybox", "busybox=../../etc/passwd")).is_none()
        );
    }

    #[test]
    fn cache_is_used_without_apt_and_initramfs_follows_the_init_script() {
        let root_parent =
            std::env::temp_dir().join(format!("rewind-guest-cache-{}", process::id()));
        let root = root_parent.join("debian-trixie-riscv64");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("Image-6.12-test"), b"kernel").unwrap();
        fs::write(root.join("fw_dynamic.bin"), b"sbi").unwrap();
        fs::write(root.join("busybox"), b"bb").unwrap();
        fs::write(
            root.join("manifest.txt"),
            "format=1\nkernel=Image-6.12-test\nkernel_size=6\nkernel_version=6.12-test\n\
             firmware=fw_dynamic.bin\nfirmware_size=3\nbusybox=busybox\nbusybox_size=2\n",
        )
        .unwrap();
        fs::write(root.join("initramfs.cpio"), b"stale").unwrap();
        let mut messages = Vec::new();
        let files = default_guest(&root_parent, &mut |m| messages.push(m.to_string())).unwrap();
        assert!(messages.is_empty(), "a cache hit is silent: {messages:?}");
        assert_eq!(files.kernel, root.join("Image-6.12-test"));
        assert_eq!(files.kernel_version, "6.12-test");
        assert_eq!(
            fs::read(&files.initrd).unwrap(),
            default_initramfs(b"bb", &[])
        );

        // A truncated file is reported, not silently booted.
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
