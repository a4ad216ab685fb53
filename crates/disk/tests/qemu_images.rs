//! Images made by `qemu-img` and written by `qemu-io` (Debian's qemu-utils)
//! read back exactly as QEMU reads them (`qemu-img convert -O raw`), and the
//! overlay, persist and damage rules hold on real files.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rewind_disk::{Disk, DiskError, DiskSpec, Format, Image, NoBackingFiles};

/// A scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rewind-disk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install qemu-utils): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn qemu_img(s: &Scratch, args: &[&str]) {
    run("qemu-img", args, &s.0);
}

fn qemu_io(s: &Scratch, image: &str, commands: &[&str]) {
    let mut args = vec!["-f", "qcow2"];
    for c in commands {
        args.extend(["-c", c]);
    }
    args.push(image);
    run("qemu-io", &args, &s.0);
}

/// A deterministic generator (xorshift64*), for content and offsets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Disk-like content: random, zero and repetitive 4 KiB stretches, so that
/// qemu-img leaves some clusters out, compresses some and stores some.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = vec![0u8; len];
    for chunk in out.chunks_mut(4096) {
        match rng.below(4) {
            0 => {}
            1 => chunk.fill(rng.next() as u8),
            2 => {
                let phrase = format!("sector {} of a very compressible disk. ", rng.next());
                for (i, b) in chunk.iter_mut().enumerate() {
                    *b = phrase.as_bytes()[i % phrase.len()];
                }
            }
            _ => chunk.iter_mut().for_each(|b| *b = rng.next() as u8),
        }
    }
    out
}

fn open(path: &Path) -> Disk {
    Disk::open(&DiskSpec::parse(path.to_str().unwrap()).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn open_err(path: &Path) -> String {
    let e = Disk::open(&DiskSpec::parse(path.to_str().unwrap()).unwrap()).unwrap_err();
    e.to_string()
}

fn read_all(disk: &mut Disk) -> Vec<u8> {
    let mut all = vec![0u8; disk.size() as usize];
    disk.read_at(0, &mut all).unwrap();
    all
}

/// QEMU's own reading of an image.
fn flat(s: &Scratch, image: &str) -> Vec<u8> {
    let out = format!("{image}.flat");
    qemu_img(s, &["convert", "-O", "raw", image, &out]);
    let bytes = fs::read(s.path(&out)).unwrap();
    fs::remove_file(s.path(&out)).unwrap();
    bytes
}

/// The disk reads `expect` whole and in unaligned pieces.
fn assert_reads(disk: &mut Disk, expect: &[u8], what: &str) {
    assert_eq!(disk.size(), expect.len() as u64, "{what}: size");
    let all = read_all(disk);
    if let Some(i) = all.iter().zip(expect).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i:#x}");
    }
    let mut rng = Rng(expect.len() as u64);
    for _ in 0..200 {
        let len = rng.below(70_000) as usize;
        let len = len.min(expect.len());
        let offset = rng.below((expect.len() - len) as u64 + 1) as usize;
        let mut buf = vec![0u8; len];
        disk.read_at(offset as u64, &mut buf).unwrap();
        assert!(
            buf == expect[offset..offset + len],
            "{what}: {len} bytes at {offset:#x}"
        );
    }
}

/// The percentage of allocated clusters that are compressed, per `qemu-img check`.
fn compressed_share(s: &Scratch, image: &str) -> f64 {
    let out = Command::new("qemu-img")
        .args(["check", image])
        .current_dir(&s.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let end = text
        .find("% compressed clusters")
        .unwrap_or_else(|| panic!("qemu-img check says {text:?}"));
    let share = text[..end].rsplit(' ').next().unwrap_or_default();
    share.parse().unwrap()
}

fn file_hash(path: &Path) -> blake3::Hash {
    blake3::hash(&fs::read(path).unwrap())
}

#[test]
fn raw_images_read_back_byte_for_byte() {
    let s = Scratch::new("raw");
    let bytes = content(1, 1_000_003);
    fs::write(s.path("a.img"), &bytes).unwrap();
    let mut disk = open(&s.path("a.img"));
    assert_eq!(disk.format(), Format::Raw);
    assert_reads(&mut disk, &bytes, "raw");
    assert_eq!(
        disk.base_content_hash().unwrap(),
        *blake3::hash(&bytes).as_bytes()
    );
}

#[test]
fn qcow2_v2_and_v3_at_every_cluster_size_match_the_raw_source() {
    let s = Scratch::new("clusters");
    let bytes = content(2, (3 << 20) + 1536);
    fs::write(s.path("src.raw"), &bytes).unwrap();
    for compat in ["0.10", "1.1"] {
        for cluster in ["512", "4096", "65536", "2M"] {
            let name = format!("img-{compat}-{cluster}.qcow2");
            let opts = format!("compat={compat},cluster_size={cluster}");
            qemu_img(
                &s,
                &[
                    "convert", "-f", "raw", "-O", "qcow2", "-o", &opts, "src.raw", &name,
                ],
            );
            let mut disk = open(&s.path(&name));
            assert_eq!(disk.format(), Format::Qcow2);
            let header = disk.image().qcow2_header().unwrap();
            assert_eq!(header.version, if compat == "0.10" { 2 } else { 3 });
            assert_reads(&mut disk, &bytes, &name);
            assert_eq!(
                disk.base_content_hash().unwrap(),
                *blake3::hash(&bytes).as_bytes()
            );
        }
    }
}

#[test]
fn compressed_qcow2_matches_the_raw_source_and_qemu() {
    let s = Scratch::new("compressed");
    let bytes = content(3, 5 << 20);
    fs::write(s.path("src.raw"), &bytes).unwrap();
    for (compat, cluster) in [
        ("0.10", "4096"),
        ("1.1", "512"),
        ("1.1", "65536"),
        ("1.1", "2M"),
    ] {
        let name = format!("c-{compat}-{cluster}.qcow2");
        let opts = format!("compat={compat},cluster_size={cluster}");
        qemu_img(
            &s,
            &[
                "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", &opts, "src.raw", &name,
            ],
        );
        assert!(
            compressed_share(&s, &name) > 30.0,
            "{name} is not compressed"
        );
        let mut disk = open(&s.path(&name));
        assert_reads(&mut disk, &bytes, &name);
        assert_eq!(flat(&s, &name), bytes);
    }
}

#[test]
fn qemu_io_writes_and_zero_clusters_read_as_qemu_reads_them() {
    let s = Scratch::new("qemu-io");
    fs::write(s.path("base.raw"), content(4, 1 << 20)).unwrap();
    for (compat, cluster) in [("1.1", "65536"), ("1.1", "4096"), ("0.10", "65536")] {
        let name = format!("w-{compat}-{cluster}.qcow2");
        let opts = format!("compat={compat},cluster_size={cluster}");
        qemu_img(
            &s,
            &[
                "create", "-f", "qcow2", "-o", &opts, "-b", "base.raw", "-F", "raw", &name, "2M",
            ],
        );
        qemu_io(
            &s,
            &name,
            &[
                "write -P 0xab 0 64k",
                "write -P 0x11 100000 3000",
                "write -z 200k 128k",
                "write -P 0x22 1500k 513",
                "write -z 1900k 4k",
                "write -P 0x33 2047k 1k",
            ],
        );
        let expect = flat(&s, &name);
        assert_eq!(&expect[..4], &[0xab; 4]);
        assert!(expect[200 << 10..328 << 10].iter().all(|&b| b == 0));
        let mut disk = open(&s.path(&name));
        assert_reads(&mut disk, &expect, &name);
    }
}

#[test]
fn a_backing_chain_qcow2_qcow2_raw_reads_as_qemu_reads_it() {
    let s = Scratch::new("chain");
    fs::create_dir_all(s.path("sub")).unwrap();
    // The base is smaller than the images above it: past its end is zeros.
    fs::write(s.path("sub/base.raw"), content(5, (1 << 20) + 4096)).unwrap();
    qemu_img(
        &s,
        &[
            "create",
            "-f",
            "qcow2",
            "-o",
            "compat=0.10,cluster_size=4096",
            "-b",
            "base.raw",
            "-F",
            "raw",
            "sub/mid.qcow2",
            "3M",
        ],
    );
    qemu_io(
        &s,
        "sub/mid.qcow2",
        &[
            "write -P 0x44 8k 20k",
            "write -P 0x55 1000k 100k",
            "write -P 0x66 2M 4k",
        ],
    );
    qemu_img(
        &s,
        &[
            "create",
            "-f",
            "qcow2",
            "-o",
            "cluster_size=65536",
            "-b",
            "sub/mid.qcow2",
            "-F",
            "qcow2",
            "top.qcow2",
            "4M",
        ],
    );
    qemu_io(
        &s,
        "top.qcow2",
        &[
            "write -P 0x77 16k 4k",
            "write -z 1020k 8k",
            "write -P 0x88 3M 100",
        ],
    );
    let expect = flat(&s, "top.qcow2");
    let mut disk = open(&s.path("top.qcow2"));
    let chain: Vec<(PathBuf, Format)> = std::iter::successors(Some(disk.image()), |i| i.backing())
        .map(|i| (i.path().to_owned(), i.format()))
        .collect();
    assert_eq!(
        chain,
        [
            (s.path("top.qcow2"), Format::Qcow2),
            (s.path("sub/mid.qcow2"), Format::Qcow2),
            (s.path("sub/base.raw"), Format::Raw),
        ]
    );
    assert_reads(&mut disk, &expect, "top.qcow2");
    // An absolute backing name works too.
    let abs = s.path("sub/mid.qcow2");
    qemu_img(
        &s,
        &[
            "create",
            "-f",
            "qcow2",
            "-b",
            abs.to_str().unwrap(),
            "-F",
            "qcow2",
            "abs.qcow2",
            "3M",
        ],
    );
    let expect = flat(&s, "abs.qcow2");
    assert_reads(&mut open(&s.path("abs.qcow2")), &expect, "abs.qcow2");
}

#[test]
fn preallocated_resized_and_snapshotted_images_read_as_qemu_reads_them() {
    let s = Scratch::new("shapes");
    let writes = [
        "write -P 0x21 0 100k",
        "write -P 0x22 1000k 3k",
        "write -z 40k 20k",
    ];
    for prealloc in ["metadata", "falloc", "full"] {
        let name = format!("{prealloc}.qcow2");
        let opts = format!("preallocation={prealloc}");
        qemu_img(&s, &["create", "-f", "qcow2", "-o", &opts, &name, "2M"]);
        qemu_io(&s, &name, &writes);
        let expect = flat(&s, &name);
        assert_reads(&mut open(&s.path(&name)), &expect, &name);
    }
    // Grown, then shrunk: the L1 table is larger than the size needs.
    qemu_img(
        &s,
        &[
            "create",
            "-f",
            "qcow2",
            "-o",
            "cluster_size=512",
            "r.qcow2",
            "1M",
        ],
    );
    qemu_io(&s, "r.qcow2", &writes);
    qemu_img(&s, &["resize", "r.qcow2", "3M"]);
    qemu_io(&s, "r.qcow2", &["write -P 0x23 3000k 72k"]);
    qemu_img(&s, &["resize", "--shrink", "r.qcow2", "3001k"]);
    let expect = flat(&s, "r.qcow2");
    assert_eq!(expect.len(), 3001 << 10);
    assert_reads(&mut open(&s.path("r.qcow2")), &expect, "r.qcow2");
    // An internal snapshot: the active state is what reads.
    qemu_img(&s, &["create", "-f", "qcow2", "snap.qcow2", "1M"]);
    qemu_io(&s, "snap.qcow2", &["write -P 0x31 0 128k"]);
    qemu_img(&s, &["snapshot", "-c", "before", "snap.qcow2"]);
    qemu_io(&s, "snap.qcow2", &["write -P 0x32 64k 128k"]);
    let expect = flat(&s, "snap.qcow2");
    assert_eq!(expect[64 << 10], 0x32);
    assert_reads(&mut open(&s.path("snap.qcow2")), &expect, "snap.qcow2");
}

#[test]
fn the_overlay_takes_writes_and_leaves_the_image_file_unchanged() {
    let s = Scratch::new("overlay");
    let bytes = content(6, 2 << 20);
    fs::write(s.path("a.raw"), &bytes).unwrap();
    qemu_img(&s, &["convert", "-c", "-O", "qcow2", "a.raw", "a.qcow2"]);
    for name in ["a.raw", "a.qcow2"] {
        let path = s.path(name);
        let before = file_hash(&path);
        let mut disk = open(&path);
        assert!(!disk.persist() && !disk.read_only());
        let mut expect = bytes.clone();
        let mut rng = Rng(7);
        for _ in 0..100 {
            let len = rng.below(20_000) as usize + 1;
            let offset = rng.below((bytes.len() - len) as u64) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            disk.write_at(offset as u64, &data).unwrap();
            expect[offset..offset + len].copy_from_slice(&data);
        }
        disk.flush().unwrap();
        assert_reads(&mut disk, &expect, name);
        drop(disk);
        assert_eq!(file_hash(&path), before, "{name} changed on disk");
        assert_reads(&mut open(&path), &bytes, name);
    }
}

#[test]
fn persist_writes_into_a_raw_file_and_is_refused_for_qcow2() {
    let s = Scratch::new("persist");
    let bytes = content(8, 1 << 20);
    fs::write(s.path("a.raw"), &bytes).unwrap();
    let arg = format!("{},persist", s.path("a.raw").display());
    let mut disk = Disk::open(&DiskSpec::parse(&arg).unwrap()).unwrap();
    assert!(disk.persist() && disk.overlay().is_none());
    disk.write_at(5000, &[0xee; 10_000]).unwrap();
    disk.flush().unwrap();
    assert_eq!(
        disk.take_written_blocks().into_iter().collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let mut expect = bytes.clone();
    expect[5000..15_000].fill(0xee);
    assert_eq!(fs::read(s.path("a.raw")).unwrap(), expect);
    assert_reads(&mut disk, &expect, "persisted");
    assert!(matches!(
        disk.save_overlay(&s.path("o")),
        Err(DiskError::NoOverlay { .. })
    ));

    // A guest may not give the raw file a qcow2 header (with, say, a host
    // file as its backing file).
    let e = disk
        .write_at(0, b"QFI\xfb\0\0\0\x03")
        .unwrap_err()
        .to_string();
    assert!(e.contains("look like a qcow2 image"), "{e}");
    disk.write_at(0, b"QFI").unwrap();
    let e = disk.write_at(3, b"\xfb").unwrap_err().to_string();
    assert!(e.contains("look like a qcow2 image"), "{e}");
    assert_eq!(Image::open(&s.path("a.raw")).unwrap().format(), Format::Raw);

    qemu_img(&s, &["convert", "-O", "qcow2", "a.raw", "a.qcow2"]);
    let arg = format!("{},persist", s.path("a.qcow2").display());
    let e = Disk::open(&DiskSpec::parse(&arg).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("use a raw image or the default overlay"), "{e}");
}

#[test]
fn read_only_disks_refuse_writes() {
    let s = Scratch::new("ro");
    fs::write(s.path("a.raw"), content(9, 65536)).unwrap();
    let arg = format!("{},ro", s.path("a.raw").display());
    let mut disk = Disk::open(&DiskSpec::parse(&arg).unwrap()).unwrap();
    assert!(disk.read_only());
    let e = disk.write_at(0, &[1]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "cannot write to {}: the disk is read-only",
            s.path("a.raw").display()
        )
    );
}

#[test]
fn a_saved_overlay_loads_back_onto_its_base_only() {
    let s = Scratch::new("save");
    let bytes = content(10, (1 << 20) + 512);
    fs::write(s.path("a.raw"), &bytes).unwrap();
    qemu_img(
        &s,
        &[
            "convert",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=4096",
            "a.raw",
            "a.qcow2",
        ],
    );
    let mut disk = open(&s.path("a.qcow2"));
    disk.write_at(100, &[1; 5000]).unwrap();
    disk.write_at((1 << 20) + 500, &[2; 12]).unwrap();
    let written = read_all(&mut disk);
    let saved = s.path("a.overlay");
    disk.save_overlay(&saved).unwrap();
    assert!(!s.path("a.overlay.tmp").exists());

    // Onto the same content (through another format, even), it loads.
    let mut again = open(&s.path("a.raw"));
    again.load_overlay(&saved).unwrap();
    assert_eq!(read_all(&mut again), written);
    // Saved again, it is the same file.
    again.save_overlay(&s.path("b.overlay")).unwrap();
    assert_eq!(
        fs::read(&saved).unwrap(),
        fs::read(s.path("b.overlay")).unwrap()
    );

    // Onto another base, it does not.
    let mut other = bytes.clone();
    other[1 << 19] ^= 1;
    fs::write(s.path("other.raw"), &other).unwrap();
    let e = open(&s.path("other.raw"))
        .load_overlay(&saved)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("different base image") && e.contains("content hash"),
        "{e}"
    );

    // Damaged, it is refused and the disk keeps its overlay.
    let mut damaged = fs::read(&saved).unwrap();
    damaged[200] ^= 0x10;
    fs::write(s.path("damaged.overlay"), &damaged).unwrap();
    let e = again
        .load_overlay(&s.path("damaged.overlay"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("checksum") && e.contains("damaged.overlay"),
        "{e}"
    );
    fs::write(s.path("short.overlay"), &damaged[..1000]).unwrap();
    let e = again
        .load_overlay(&s.path("short.overlay"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match its length"), "{e}");
    assert_eq!(read_all(&mut again), written);
    let e = again
        .load_overlay(&s.path("missing"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot open overlay file"), "{e}");
}

/// Patches big-endian bytes into a copy of `from`, saved as `to`.
fn patched(s: &Scratch, from: &str, to: &str, at: usize, bytes: &[u8]) -> PathBuf {
    let mut img = fs::read(s.path(from)).unwrap();
    img[at..at + bytes.len()].copy_from_slice(bytes);
    fs::write(s.path(to), img).unwrap();
    s.path(to)
}

#[test]
fn damaged_and_hostile_images_are_one_sentence_each() {
    let s = Scratch::new("damaged");
    fs::write(s.path("base.raw"), content(11, 1 << 20)).unwrap();
    qemu_img(&s, &["convert", "-O", "qcow2", "base.raw", "good.qcow2"]);
    let good = fs::read(s.path("good.qcow2")).unwrap();

    fs::write(s.path("short.qcow2"), &good[..50]).unwrap();
    let e = open_err(&s.path("short.qcow2"));
    assert!(e.contains("short.qcow2") && e.contains("truncated"), "{e}");

    let p = patched(
        &s,
        "good.qcow2",
        "l1.qcow2",
        40,
        &(1u64 << 40).to_be_bytes(),
    );
    let e = open_err(&p);
    assert!(
        e.contains("L1 table") && e.contains("past the end") && e.contains("0x28"),
        "{e}"
    );

    let l1 = u64::from_be_bytes(good[40..48].try_into().unwrap()) as usize;
    let p = patched(
        &s,
        "good.qcow2",
        "l2.qcow2",
        l1,
        &(1u64 << 40).to_be_bytes(),
    );
    let e = open_err(&p);
    assert!(
        e.contains("L1 entry 0") && e.contains("past the end"),
        "{e}"
    );

    let p = patched(&s, "good.qcow2", "size.qcow2", 24, &u64::MAX.to_be_bytes());
    let e = open_err(&p);
    assert!(e.contains("virtual size"), "{e}");
    let p = patched(&s, "good.qcow2", "cluster.qcow2", 20, &63u32.to_be_bytes());
    assert!(open_err(&p).contains("cluster_bits is 63"));
    let p = patched(
        &s,
        "good.qcow2",
        "l1size.qcow2",
        36,
        &u32::MAX.to_be_bytes(),
    );
    assert!(open_err(&p).contains("more than QEMU allows"));

    let p = patched(
        &s,
        "good.qcow2",
        "feature.qcow2",
        72,
        &(1u64 << 20).to_be_bytes(),
    );
    let e = open_err(&p);
    assert!(e.contains("unknown incompatible features (bit 20)"), "{e}");

    // An L2 entry pointing past the end of the file: found when read.
    let l2 = u64::from_be_bytes(good[l1..l1 + 8].try_into().unwrap()) & 0x00ff_ffff_ffff_fe00;
    let p = patched(
        &s,
        "good.qcow2",
        "data.qcow2",
        l2 as usize + 8,
        &(1u64 << 45).to_be_bytes(),
    );
    let mut disk = open(&p);
    let mut buf = vec![0u8; 1 << 20];
    let e = disk.read_at(0, &mut buf).unwrap_err().to_string();
    assert!(
        e.contains("L2 entry for guest offset 0x10000") && e.contains(&format!("{:#x}", l2 + 8)),
        "{e}"
    );

    // Features qemu-img makes that Rewind refuses.
    for (name, opts, what) in [
        ("zstd.qcow2", "compression_type=zstd", "zstd compression"),
        ("extl2.qcow2", "extended_l2=on", "extended L2 entries"),
        (
            "data.qcow2",
            "data_file=data-file.raw",
            "external data file",
        ),
    ] {
        qemu_img(&s, &["create", "-f", "qcow2", "-o", opts, name, "1M"]);
        let e = open_err(&s.path(name));
        assert!(e.contains(what) && e.contains(name), "{e}");
    }
    // qemu-img times PBKDF2 on the host's CPU to choose the LUKS iteration
    // count, and on a heavily loaded host that measurement can fail ("Unable
    // to get accurate CPU usage"). The header field our reader refuses is
    // the same either way, so then a plain qcow2 with crypt_method set to 2
    // (LUKS) stands in for it.
    let luks = Command::new("qemu-img")
        .args([
            "create",
            "-f",
            "qcow2",
            "--object",
            "secret,id=sec0,data=secret",
            "-o",
            "encrypt.format=luks,encrypt.key-secret=sec0",
            "luks.qcow2",
            "1M",
        ])
        .current_dir(&s.0)
        .output()
        .expect("qemu-img runs");
    if !luks.status.success() {
        eprintln!(
            "qemu-img could not make a LUKS image ({}); patching a plain one",
            String::from_utf8_lossy(&luks.stderr).trim()
        );
        qemu_img(&s, &["create", "-f", "qcow2", "luks.qcow2", "1M"]);
        let mut bytes = fs::read(s.path("luks.qcow2")).unwrap();
        bytes[32..36].copy_from_slice(&2u32.to_be_bytes());
        fs::write(s.path("luks.qcow2"), bytes).unwrap();
    }
    assert!(open_err(&s.path("luks.qcow2")).contains("LUKS encryption"));

    // Backing chains: missing, looping, self-referencing, too deep.
    qemu_img(
        &s,
        &[
            "create",
            "-f",
            "qcow2",
            "-b",
            "gone.raw",
            "-F",
            "raw",
            "-u",
            "missing.qcow2",
            "1M",
        ],
    );
    let e = open_err(&s.path("missing.qcow2"));
    assert!(
        e.contains("gone.raw, the backing file of") && e.contains("missing.qcow2"),
        "{e}"
    );
    qemu_img(&s, &["create", "-f", "qcow2", "a.qcow2", "1M"]);
    qemu_img(
        &s,
        &[
            "create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2", "1M",
        ],
    );
    qemu_img(
        &s,
        &["rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", "a.qcow2"],
    );
    let e = open_err(&s.path("b.qcow2"));
    assert!(e.contains("loops") && e.contains("a.qcow2 -> "), "{e}");
    qemu_img(&s, &["create", "-f", "qcow2", "self.qcow2", "1M"]);
    qemu_img(
        &s,
        &[
            "rebase",
            "-u",
            "-b",
            "self.qcow2",
            "-F",
            "qcow2",
            "self.qcow2",
        ],
    );
    assert!(open_err(&s.path("self.qcow2")).contains("loops"));
    qemu_img(&s, &["create", "-f", "qcow2", "d0.qcow2", "1M"]);
    for i in 1..=rewind_disk::MAX_CHAIN_DEPTH {
        let (b, t) = (format!("d{}.qcow2", i - 1), format!("d{i}.qcow2"));
        qemu_img(
            &s,
            &["create", "-f", "qcow2", "-b", &b, "-F", "qcow2", &t, "1M"],
        );
    }
    let deepest_ok = format!("d{}.qcow2", rewind_disk::MAX_CHAIN_DEPTH - 1);
    open(&s.path(&deepest_ok));
    let too_deep = format!("d{}.qcow2", rewind_disk::MAX_CHAIN_DEPTH);
    assert!(open_err(&s.path(&too_deep)).contains("longer than"));
}

#[test]
fn mutated_images_give_errors_never_panics() {
    let s = Scratch::new("mutate");
    fs::write(s.path("base.raw"), content(12, 256 << 10)).unwrap();
    qemu_img(
        &s,
        &[
            "convert",
            "-c",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=512",
            "base.raw",
            "c.qcow2",
        ],
    );
    qemu_img(
        &s,
        &[
            "convert",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=4096,compat=0.10",
            "base.raw",
            "v2.qcow2",
        ],
    );
    let mut rng = Rng(13);
    for name in ["c.qcow2", "v2.qcow2"] {
        let good = fs::read(s.path(name)).unwrap();
        for _ in 0..400 {
            let mut img = good.clone();
            for _ in 0..1 + rng.below(4) {
                // Mostly the metadata at the front.
                let at = if rng.below(2) == 0 {
                    rng.below(good.len().min(16 << 10) as u64)
                } else {
                    rng.below(good.len() as u64)
                } as usize;
                img[at] = rng.next() as u8;
            }
            if rng.below(8) == 0 {
                img.truncate(rng.below(img.len() as u64) as usize);
            }
            let Ok(image) = Image::from_source(Path::new(name), Box::new(img), &mut NoBackingFiles)
            else {
                continue;
            };
            let mut disk =
                Disk::from_image(image, false).expect("an overlay in the temporary directory");
            let size = disk.size().min(1 << 20);
            let mut buf = vec![0u8; size as usize];
            let _ = disk.read_at(0, &mut buf);
            let _ = disk.write_at(0, &buf[..size.min(5000) as usize]);
        }
    }
}
