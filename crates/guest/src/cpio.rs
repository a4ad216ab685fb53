//! A writer for the `newc` cpio format that the Linux kernel unpacks as its
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Our own code rather than a crate: the format is a 110-byte ASCII header,
//! a name and the data, each padded to four bytes, so the writer is shorter
//! than the glue around the `cpio` crate (whose builder takes `Read + Seek`
//! inputs and leaves inode numbering, parent directories and duplicate paths to
//! the caller). Above all the output must be a pure function of what was added,
//! because the initrd's content hash is part of the machine configuration:
//! every timestamp is 0, owners are root, inode numbers count up from 1 in
//! archive order, and nothing is read from the host.

use std::collections::BTreeMap;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// One archive member.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    /// File type and permission bits, as in `st_mode`.
    mode: u32,
    data: Vec<u8>,
    rdev_major: u32,
    rdev_minor: u32,
}

/// An initramfs under construction: a set of directories, regular files,
/// symbolic links and character devices, written out as a `newc` cpio archive.
///
/// Paths are given with or without a leading `/` and are stored relative to
/// the root. Missing parent directories are added (mode 0755) automatically.
/// Adding a path that is already present replaces the earlier entry in place,
/// so a test can, for example, swap in its own `/init`.
///
/// # Panics
/// The `add_*` methods panic on a path that is empty or the root, contains a
/// NUL byte, or has a `.` or `..` component, and on a file larger than 4 GiB
/// (the format's size field is 32 bits). These are programming errors: the
/// contents of an initramfs come from code, not from untrusted input.
#[derive(Debug, Clone, Default)]
pub struct Initramfs {
    entries: Vec<Entry>,
    index: BTreeMap<String, usize>,
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory with the given permission bits (e.g. `0o755`).
    pub fn add_dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.insert(path, S_IFDIR | (mode & 0o7777), Vec::new(), 0, 0)
    }

    /// Adds a regular file with the given permission bits (e.g. `0o755`).
    pub fn add_file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.insert(path, S_IFREG | (mode & 0o7777), data.to_vec(), 0, 0)
    }

    /// Adds a symbolic link at `path` pointing to `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> &mut Self {
        assert!(
            !target.is_empty() && !target.contains('\0'),
            "invalid symlink target {target:?}"
        );
        self.insert(path, S_IFLNK | 0o777, target.as_bytes().to_vec(), 0, 0)
    }

    /// Adds a character device node, e.g. `/dev/console` as 5:1 with mode 0o600.
    pub fn add_char_device(&mut self, path: &str, major: u32, minor: u32, mode: u32) -> &mut Self {
        self.insert(path, S_IFCHR | (mode & 0o7777), Vec::new(), major, minor)
    }

    /// Whether `path` has been added (explicitly or as a parent directory).
    pub fn contains(&self, path: &str) -> bool {
        self.index.contains_key(&normalize(path))
    }

    /// Writes the archive: every entry in the order it was first added,
    /// then the `TRAILER!!!` record.
    pub fn finish(&self) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|e| 120 + e.path.len() + e.data.len() + 8)
            .sum();
        let mut out = Vec::with_capacity(size + 128);
        for (i, e) in self.entries.iter().enumerate() {
            let nlink = if e.mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
            // Inode 0 is avoided: some tools treat it as "no inode".
            let ino = u32::try_from(i + 1).expect("fewer than 2^32 entries");
            write_record(
                &mut out,
                &e.path,
                ino,
                e.mode,
                nlink,
                &e.data,
                e.rdev_major,
                e.rdev_minor,
            );
        }
        write_record(&mut out, "TRAILER!!!", 0, 0, 1, &[], 0, 0);
        out
    }

    fn insert(
        &mut self,
        path: &str,
        mode: u32,
        data: Vec<u8>,
        rdev_major: u32,
        rdev_minor: u32,
    ) -> &mut Self {
        let path = normalize(path);
        assert!(
            u32::try_from(data.len()).is_ok(),
            "initramfs file {path} is larger than the cpio format's 4 GiB limit"
        );
        // Parents first, so that the kernel can create each entry when it meets it.
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for c in &components[..components.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            if !self.index.contains_key(&parent) {
                self.push(Entry {
                    path: parent.clone(),
                    mode: S_IFDIR | 0o755,
                    data: Vec::new(),
                    rdev_major: 0,
                    rdev_minor: 0,
                });
            }
        }
        let entry = Entry {
            path: path.clone(),
            mode,
            data,
            rdev_major,
            rdev_minor,
        };
        match self.index.get(&path) {
            Some(&i) => self.entries[i] = entry,
            None => self.push(entry),
        }
        self
    }

    fn push(&mut self, entry: Entry) {
        self.index.insert(entry.path.clone(), self.entries.len());
        self.entries.push(entry);
    }
}

/// `/a//b/` -> `a/b`. Panics on the empty path, NUL bytes, `.` and `..`.
fn normalize(path: &str) -> String {
    assert!(
        !path.contains('\0'),
        "initramfs path {path:?} contains a NUL byte"
    );
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    assert!(
        !parts.is_empty(),
        "initramfs path {path:?} names the root, which always exists"
    );
    assert!(
        parts.iter().all(|c| *c != "." && *c != ".."),
        "initramfs path {path:?} has a `.` or `..` component"
    );
    parts.join("/")
}

#[allow(clippy::too_many_arguments)]
fn write_record(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    data: &[u8],
    rmaj: u32,
    rmin: u32,
) {
    let filesize = u32::try_from(data.len()).expect("checked when added");
    let namesize = u32::try_from(name.len() + 1).expect("path shorter than 4 GiB");
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
    // rdevmajor, rdevminor, namesize, check: 8 hex digits each after the magic.
    let fields = [
        ino, mode, 0, 0, nlink, 0, filesize, 0, 0, rmaj, rmin, namesize, 0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A minimal, strict newc reader for tests, independent of the writer.
#[cfg(test)]
pub(crate) mod testing {
    /// One member as read back: (name, mode, rdev major, rdev minor, ino, nlink, data).
    pub(crate) type Member = (String, u32, u32, u32, u32, u32, Vec<u8>);

    /// A minimal, strict newc reader, independent of the writer above.
    pub(crate) fn parse(mut buf: &[u8]) -> Vec<Member> {
        let total = buf.len();
        let mut out = Vec::new();
        loop {
            let offset = total - buf.len();
            assert_eq!(offset % 4, 0, "record at unaligned offset {offset}");
            assert_eq!(&buf[..6], b"070701", "bad magic at offset {offset}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (ino, mode, uid, gid, nlink, mtime, filesize) = (
                field(0),
                field(1),
                field(2),
                field(3),
                field(4),
                field(5),
                field(6),
            );
            let (rmaj, rmin, namesize, check) = (field(9), field(10), field(11), field(12));
            assert_eq!((uid, gid, mtime, check), (0, 0, 0, 0));
            let name_end = 110 + namesize as usize;
            assert_eq!(buf[name_end - 1], 0, "name not NUL-terminated");
            let name = std::str::from_utf8(&buf[110..name_end - 1])
                .unwrap()
                .to_string();
            let data_start = name_end.next_multiple_of(4);
            let data_end = data_start + filesize as usize;
            let data = buf[data_start..data_end].to_vec();
            buf = &buf[data_end.next_multiple_of(4)..];
            if name == "TRAILER!!!" {
                assert!(buf.is_empty(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode, rmaj, rmin, ino, nlink, data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::parse;
    use super::*;

    #[test]
    fn round_trips_every_entry_kind() {
        let mut fs = Initramfs::new();
        fs.add_dir("/dev", 0o755)
            .add_char_device("/dev/console", 5, 1, 0o600)
            .add_file("/bin/busybox", b"\x7fELF-not-really", 0o755)
            .add_symlink("/bin/sh", "busybox")
            .add_file("init", b"#!/bin/sh\n", 0o755)
            .add_dir("tmp", 0o1777);
        let members = parse(&fs.finish());
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "bin",
                "bin/busybox",
                "bin/sh",
                "init",
                "tmp"
            ]
        );
        assert_eq!(members[0].1, 0o040_755);
        assert_eq!(members[0].5, 2, "directories have two links");
        assert_eq!(
            (members[1].1, members[1].2, members[1].3),
            (0o020_600, 5, 1)
        );
        assert_eq!(
            members[2].1, 0o040_755,
            "parent directory added automatically"
        );
        assert_eq!(
            (members[3].1, &members[3].6[..]),
            (0o100_755, &b"\x7fELF-not-really"[..])
        );
        assert_eq!(
            (members[4].1, &members[4].6[..]),
            (0o120_777, &b"busybox"[..])
        );
        assert_eq!(members[6].1, 0o041_777, "sticky bit kept");
        let inos: Vec<u32> = members.iter().map(|m| m.4).collect();
        assert_eq!(
            inos,
            [1, 2, 3, 4, 5, 6, 7],
            "distinct inodes so the kernel makes no hard links"
        );
    }

    #[test]
    fn pads_names_and_data_of_every_length() {
        // Name lengths 1..8 and data lengths 0..8 cover every padding case.
        let mut fs = Initramfs::new();
        for n in 1..=8usize {
            let name = "abcdefgh"[..n].to_string();
            fs.add_file(&format!("d{n}/{name}"), &vec![n as u8; n - 1], 0o644);
        }
        let members = parse(&fs.finish());
        assert_eq!(members.len(), 16);
        for n in 1..=8usize {
            assert_eq!(members[2 * n - 1].6, vec![n as u8; n - 1]);
        }
    }

    #[test]
    fn adding_a_path_again_replaces_it_in_place() {
        let mut fs = Initramfs::new();
        fs.add_file("/init", b"old", 0o755)
            .add_file("/etc/x", b"x", 0o644)
            .add_file("//init/", b"new", 0o700);
        let members = parse(&fs.finish());
        assert_eq!(members.len(), 3);
        assert_eq!(
            (members[0].0.as_str(), members[0].1, &members[0].6[..]),
            ("init", 0o100_700, &b"new"[..])
        );
    }

    #[test]
    fn output_is_a_pure_function_of_the_contents() {
        let build = || {
            let mut fs = Initramfs::new();
            fs.add_file("a/b/c", b"data", 0o644)
                .add_symlink("a/l", "b/c");
            fs.finish()
        };
        assert_eq!(build(), build());
    }

    #[test]
    fn empty_archive_is_just_the_trailer() {
        let bytes = Initramfs::new().finish();
        assert!(parse(&bytes).is_empty());
        assert_eq!(bytes.len(), 124); // 110 + "TRAILER!!!\0" (11) padded to 124
    }

    #[test]
    #[should_panic(expected = "`.` or `..`")]
    fn rejects_parent_components() {
        Initramfs::new().add_file("../etc/passwd", b"", 0o644);
    }

    #[test]
    fn host_cpio_lists_the_archive_when_installed() {
        let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("cpio is not installed; skipping the cross-check with GNU cpio");
            return;
        };
        let mut fs = Initramfs::new();
        fs.add_char_device("dev/console", 5, 1, 0o600)
            .add_file("bin/busybox", b"x", 0o755)
            .add_symlink("bin/sh", "busybox");
        let bytes = fs.finish();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &bytes).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "dev\ndev/console\nbin\nbin/busybox\nbin/sh\n"
        );
    }
}
