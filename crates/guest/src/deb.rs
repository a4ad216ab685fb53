//! Taking single files out of a Debian package.
//!
//! `dpkg-deb --fsys-tarfile` (present on every host that has apt) turns the
//! package's data member into a plain tar stream whatever its compression (xz
//! in Debian, zstd in Ubuntu, gzip or bzip2 in older packages), and the `tar`
//! crate reads that stream, keeping only the files asked for. Nothing is
//! unpacked to disk, so the kernel package's 3,100 modules (106 MB, 1 GB once
//! decompressed) never land in the cache, and paths from the archive are
//! never used to name host files. The kernel modules are read in one pass
//! into memory, compressed: the package lists `modules.builtin` after them,
//! and which modules are needed is known only from the modules themselves
//! (see `modules.rs`). Doing the `ar` and decompression steps in Rust instead
//! would need C-backed xz and zstd crates for no gain.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use crate::GuestError;

/// A file wanted from a package.
pub(crate) struct Wanted {
    /// Human name for errors ("the kernel (/boot/vmlinux-*)").
    pub what: &'static str,
    /// Whether an archive path (without leading `./` or `/`) is the wanted file.
    pub matches: fn(&str) -> bool,
    /// Largest acceptable size in bytes.
    pub max_size: u64,
}

/// A file taken out of a package: its path in the package and its contents.
#[derive(Debug)]
pub(crate) struct Extracted {
    pub path: String,
    pub data: Vec<u8>,
}

/// Files of one kind wanted from a package, every one of them (the kernel
/// modules). They are kept in memory, so the total is bounded too.
pub(crate) struct WantedAll {
    /// Human name for errors ("kernel modules").
    pub what: &'static str,
    /// Whether an archive path (without leading `./` or `/`) is wanted.
    pub matches: fn(&str) -> bool,
    /// Largest acceptable size of one file.
    pub max_size: u64,
    /// Largest acceptable total size.
    pub max_total: u64,
}

/// Reads `deb` and returns, for each entry of `wanted`, the first regular file
/// that matches it. Every wanted file must be present.
pub(crate) fn extract(
    deb: &Path,
    package: &str,
    wanted: &[Wanted],
) -> Result<Vec<Extracted>, GuestError> {
    let (found, _) = extract_with(deb, wanted, None)?;
    found
        .into_iter()
        .zip(wanted)
        .map(|(f, w)| {
            f.ok_or_else(|| GuestError::MissingInPackage {
                package: package.into(),
                what: w.what.into(),
            })
        })
        .collect()
}

/// Reads `deb` once and returns, for each entry of `wanted`, the first regular
/// file that matches it (or `None`), and every regular file that `all`
/// matches (among those not taken for `wanted`), in archive order.
pub(crate) fn extract_with(
    deb: &Path,
    wanted: &[Wanted],
    all: Option<&WantedAll>,
) -> Result<(Vec<Option<Extracted>>, Vec<Extracted>), GuestError> {
    let bad = |detail: String| GuestError::BadDeb {
        path: deb.to_path_buf(),
        detail,
    };
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                GuestError::ToolMissing { tool: "dpkg-deb" }
            } else {
                GuestError::io("run", Path::new("dpkg-deb"), e)
            }
        })?;
    let mut stderr = child.stderr.take().expect("piped");
    let stderr_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = child.stdout.take().expect("piped");

    let mut found: Vec<Option<Extracted>> = wanted.iter().map(|_| None).collect();
    let mut many: Vec<Extracted> = Vec::new();
    let mut many_total: u64 = 0;
    let mut archive = tar::Archive::new(stdout);
    let scan: Result<(), String> = (|| {
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let raw = entry
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .into_owned();
            let path = raw
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string();
            // Symbolic links (dpkg-deb puts them last), directories and hard
            // links are not what we want even where the name matches.
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let size = entry.size();
            let slot = wanted
                .iter()
                .enumerate()
                .position(|(i, w)| found[i].is_none() && (w.matches)(&path));
            let max = match (slot, all) {
                (Some(i), _) => wanted[i].max_size,
                (None, Some(a)) if (a.matches)(&path) => {
                    many_total = many_total.saturating_add(size);
                    if many_total > a.max_total {
                        return Err(format!(
                            "its {} add up to more than the {} bytes allowed",
                            a.what, a.max_total
                        ));
                    }
                    a.max_size
                }
                _ => continue,
            };
            if size > max {
                return Err(format!(
                    "{path} is {size} bytes, more than the {max} allowed"
                ));
            }
            let mut data = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut data)
                .map_err(|e| format!("reading {path}: {e}"))?;
            let file = Extracted { path, data };
            match slot {
                Some(i) => found[i] = Some(file),
                None => many.push(file),
            }
        }
        Ok(())
    })();
    // Drain what is left so dpkg-deb finishes normally instead of on a broken pipe.
    let mut rest = archive.into_inner();
    let _ = io::copy(&mut rest, &mut io::sink());
    drop(rest);
    let status = child
        .wait()
        .map_err(|e| GuestError::io("run", Path::new("dpkg-deb"), e))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(bad(format!(
            "dpkg-deb --fsys-tarfile failed ({status}): {}",
            stderr.trim()
        )));
    }
    scan.map_err(bad)?;
    Ok((found, many))
}

/// `boot/vmlinux-<version>` (Debian's name, though it holds an Image),
/// `boot/vmlinuz-<version>` or `boot/Image-<version>`.
pub(crate) fn is_kernel(path: &str) -> bool {
    kernel_version_from_path(path).is_some()
}

/// The `uname -r` version in a kernel's file name.
pub(crate) fn kernel_version_from_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix("boot/")?;
    ["vmlinux-", "vmlinuz-", "Image-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .filter(|v| !v.is_empty() && !v.contains('/'))
}

/// busybox-static installs `/usr/bin/busybox` (trixie) or `/bin/busybox` (before usrmerge).
pub(crate) fn is_busybox(path: &str) -> bool {
    path == "usr/bin/busybox" || path == "bin/busybox"
}

/// OpenSBI's generic-platform `fw_dynamic.bin` for RV64:
/// `usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin` in Debian;
/// `usr/share/opensbi/lp64/generic/firmware/fw_dynamic.bin` in Ubuntu.
pub(crate) fn is_opensbi_fw_dynamic(path: &str) -> bool {
    path.ends_with("/fw_dynamic.bin")
        && path.contains("/generic/")
        && (path.contains("riscv64") || path.contains("/lp64/"))
        && path.starts_with("usr/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_paths_debian_uses() {
        assert!(is_kernel("boot/vmlinux-6.12.107+deb13-riscv64"));
        assert_eq!(
            kernel_version_from_path("boot/vmlinux-6.12.107+deb13-riscv64"),
            Some("6.12.107+deb13-riscv64")
        );
        assert!(is_kernel("boot/vmlinuz-6.1.0-9-riscv64"));
        assert!(!is_kernel("boot/config-6.12.107+deb13-riscv64"));
        assert!(!is_kernel("boot/System.map-6.12.107+deb13-riscv64"));
        assert!(!is_kernel(
            "usr/lib/linux-image-6.12.107+deb13-riscv64/sifive/hifive-unmatched-a00.dtb"
        ));
        assert!(is_busybox("usr/bin/busybox"));
        assert!(!is_busybox("usr/share/doc/busybox-static/copyright"));
        assert!(is_opensbi_fw_dynamic(
            "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"
        ));
        assert!(is_opensbi_fw_dynamic(
            "usr/share/opensbi/lp64/generic/firmware/fw_dynamic.bin"
        ));
        assert!(!is_opensbi_fw_dynamic(
            "usr/lib/riscv32-linux-gnu/opensbi/generic/fw_dynamic.bin"
        ));
        assert!(!is_opensbi_fw_dynamic(
            "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.elf"
        ));
        assert!(!is_opensbi_fw_dynamic(
            "usr/share/opensbi/ilp32/generic/firmware/fw_dynamic.bin"
        ));
    }

    /// Builds a .deb from `files` with `dpkg-deb --build`; `None` without dpkg-deb.
    fn build_deb(
        dir: &Path,
        files: &[(&str, &[u8])],
        symlinks: &[(&str, &str)],
    ) -> Option<std::path::PathBuf> {
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            "Package: fake\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@invalid>\nDescription: test package\n",
        )
        .unwrap();
        for (path, data) in files {
            let p = tree.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        for (path, target) in symlinks {
            let p = tree.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        }
        let deb = dir.join("fake.deb");
        let out = Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&tree)
            .arg(&deb)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(deb)
    }

    #[test]
    fn extracts_only_the_wanted_files_from_a_real_deb() {
        let dir = std::env::temp_dir().join(format!("rewind-guest-deb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files: &[(&str, &[u8])] = &[
            ("boot/config-1.0-test", b"CONFIG_X=y"),
            ("boot/vmlinux-1.0-test", b"KERNEL"),
            ("usr/bin/busybox", b"BUSYBOX"),
            ("usr/lib/modules/1.0-test/big.ko", &[0u8; 100_000]),
            ("usr/lib/modules/1.0-test/small.ko", b"KO"),
        ];
        let Some(deb) = build_deb(&dir, files, &[("bin/busybox", "../usr/bin/busybox")]) else {
            eprintln!("dpkg-deb is not installed; skipping");
            return;
        };
        let kernel = Wanted {
            what: "a kernel",
            matches: is_kernel,
            max_size: 1 << 20,
        };
        // Only the symbolic link is at /bin/busybox: it is not taken for the file.
        let only_bin = Wanted {
            what: "/bin/busybox",
            matches: |p| p == "bin/busybox",
            max_size: 1 << 20,
        };
        let err = extract(&deb, "fake", &[only_bin]).unwrap_err().to_string();
        assert_eq!(err, "package fake does not contain /bin/busybox");
        let missing = Wanted {
            what: "fw_dynamic.bin",
            matches: is_opensbi_fw_dynamic,
            max_size: 1 << 20,
        };
        let err = extract(&deb, "fake", &[missing]).unwrap_err().to_string();
        assert_eq!(err, "package fake does not contain fw_dynamic.bin");
        let busybox = Wanted {
            what: "busybox",
            matches: is_busybox,
            max_size: 1 << 20,
        };
        let got = extract(&deb, "fake", &[kernel, busybox]).unwrap();
        assert_eq!(
            (got[0].path.as_str(), &got[0].data[..]),
            ("boot/vmlinux-1.0-test", &b"KERNEL"[..])
        );
        assert_eq!(
            (got[1].path.as_str(), &got[1].data[..]),
            ("usr/bin/busybox", &b"BUSYBOX"[..])
        );
        let too_small = Wanted {
            what: "a kernel",
            matches: is_kernel,
            max_size: 3,
        };
        assert!(extract(&deb, "fake", &[too_small])
            .unwrap_err()
            .to_string()
            .contains("more than the 3 allowed"));
        // Every file of a kind, besides single files, with bounded sizes.
        let modules = WantedAll {
            what: "kernel modules",
            matches: |p| p.ends_with(".ko"),
            max_size: 200_000,
            max_total: 200_000,
        };
        let config = Wanted {
            what: "config",
            matches: |p| p.starts_with("boot/config-"),
            max_size: 100,
        };
        let absent = Wanted {
            what: "absent",
            matches: |p| p == "nothing",
            max_size: 100,
        };
        let (found, many) = extract_with(&deb, &[config, absent], Some(&modules)).unwrap();
        assert_eq!(found[0].as_ref().unwrap().data, b"CONFIG_X=y");
        assert!(found[1].is_none());
        let names: Vec<&str> = many.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "usr/lib/modules/1.0-test/big.ko",
                "usr/lib/modules/1.0-test/small.ko"
            ]
        );
        let tight = WantedAll {
            max_total: 100_001,
            ..modules
        };
        let err = extract_with(&deb, &[], Some(&tight))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("its kernel modules add up to more than the 100001 bytes"),
            "{err}"
        );
        std::fs::write(dir.join("broken.deb"), b"!<arch>\nnot really").unwrap();
        let err = extract(
            &dir.join("broken.deb"),
            "broken",
            &[Wanted {
                what: "x",
                matches: is_kernel,
                max_size: 1,
            }],
        );
        assert!(matches!(err, Err(GuestError::BadDeb { .. })), "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
